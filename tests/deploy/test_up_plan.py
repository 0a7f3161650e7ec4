"""The pure parts of ``gpufleet up``: options, backend choice, the collector config, the snapshot, supervision."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from gpufleet.collectors.config import load_config
from gpufleet.collectors.ingest import Scrape, to_batch
from gpufleet.collectors.target import Target
from gpufleet.core.store import StoreWriter
from gpufleet.deploy_cli import (
    Child,
    Supervisor,
    build_plan,
    collector_config,
    detect_backend,
    parse_listen,
    publish_snapshot,
    publishing_writer,
    snapshot_path,
)


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:9400", ("127.0.0.1", 9400)),
    ("0.0.0.0:1", ("0.0.0.0", 1)),
    ("[::1]:8501", ("::1", 8501)),
    ("localhost:65535", ("localhost", 65535)),
])
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9400", ":9400", "host:", "host:0", "host:70000", "host:http"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--listen .* must be host:port"):
        parse_listen(text)


@pytest.mark.parametrize("db, snap", [
    ("/data/fleet.duckdb", "/data/fleet.snapshot.duckdb"),
    ("/data/fleet.db", "/data/fleet.snapshot.db"),
    ("/data/fleet", "/data/fleet.snapshot.duckdb"),
])
def test_snapshot_path(db: str, snap: str) -> None:
    assert snapshot_path(Path(db)) == Path(snap)


def _no_gpu() -> int:
    raise RuntimeError("NVML Shared Library Not Found")


@pytest.mark.parametrize("requested, probe, expected", [
    ("sim", _no_gpu, "sim"),
    ("auto", _no_gpu, "sim"),
    ("auto", lambda: 0, "sim"),
])
def test_detect_backend(requested: str, probe, expected: str) -> None:
    kind, why = detect_backend(requested, probe)
    assert kind == expected
    assert why


def test_detect_backend_nvml_without_gpu_is_an_error() -> None:
    with pytest.raises(ValueError, match="--backend nvml: NVML unavailable .*NVML Shared Library Not Found"):
        detect_backend("nvml", _no_gpu)
    with pytest.raises(ValueError, match="--backend 'cuda' must be auto, nvml or sim"):
        detect_backend("cuda", _no_gpu)


def test_plan_and_collector_config_validate(tmp_path: Path) -> None:
    plan, why = build_plan(tmp_path / "f.duckdb", "auto", "127.0.0.1:19400", 2, 7, 15.0, 15.0,
                           "127.0.0.1:18501", probe=_no_gpu)
    assert plan.backend == "sim" and "simulated fleet" in why
    # 2 nodes, 2 kube-state-metrics (one per cluster), a training job and 2 engines on consecutive ports
    assert [hp for hp, _ in plan.targets] == [f"127.0.0.1:{19400 + i}" for i in range(7)]
    assert [labels["kind"] for _, labels in plan.targets] == ["node", "node", "kube", "kube", "training", "engine",
                                                               "engine"]
    assert plan.snapshot == tmp_path / "f.snapshot.duckdb"
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(collector_config(plan)))
    cfg = load_config(path)
    assert cfg.store == tmp_path / "f.duckdb"
    assert sorted(j.name for j in cfg.jobs) == ["up-engine", "up-kube", "up-node", "up-training"]
    node_job = next(j for j in cfg.jobs if j.name == "up-node")
    assert cfg.timing(node_job) == (15.0, 10.0)
    assert [g.labels for g in node_job.static] == [{"cluster": "us-east-prod"}, {"cluster": "eu-west-prod"}]


def test_build_plan_names_the_bad_option(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--dashboard 'nope' must be host:port"):
        build_plan(tmp_path / "f.duckdb", "sim", "127.0.0.1:19400", 1, 7, 15.0, 15.0, "nope")
    with pytest.raises(ValueError, match="needs 7 ports from 65530, past 65535"):
        build_plan(tmp_path / "f.duckdb", "sim", "127.0.0.1:65530", 2, 7, 15.0, 15.0, None)
    with pytest.raises(ValueError, match="folder .*missing does not exist"):
        build_plan(tmp_path / "missing" / "f.duckdb", "sim", "127.0.0.1:19400", 1, 7, 15.0, 15.0, None)


def _scrape(writer: StoreWriter, t: float) -> None:
    text = "# TYPE up gauge\nup 1\n# TYPE x_total counter\nx_total 5\n"
    writer.write([to_batch(Scrape(Target("n:1", {}), t, text, 15.0))])


def test_snapshot_is_readable_while_the_writer_holds_the_store(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    snap = snapshot_path(db)
    writer = StoreWriter(db)
    try:
        _scrape(writer, 1_800_000_000.0)
        publish_snapshot(writer.con, db, snap)
        with pytest.raises(duckdb.Error):  # the store itself is locked by the writer
            duckdb.connect(str(db), read_only=True)
        reader = duckdb.connect(str(snap), read_only=True)
        assert reader.execute("SELECT count(*) FROM batches").fetchone() == (1,)
        _scrape(writer, 1_800_000_015.0)
        publish_snapshot(writer.con, db, snap)
        # the open reader keeps its file; a new open sees the new snapshot
        assert reader.execute("SELECT count(*) FROM batches").fetchone() == (1,)
        reader.close()
        with duckdb.connect(str(snap), read_only=True) as fresh:
            assert fresh.execute("SELECT count(*) FROM batches").fetchone() == (2,)
    finally:
        writer.close()
    assert not list(tmp_path.glob(".*.tmp"))


def test_publishing_writer_publishes_after_a_write_once_due(tmp_path: Path) -> None:
    now = [100.0]
    db = tmp_path / "p.duckdb"
    writer = publishing_writer(db, 10.0, clock=lambda: now[0])
    try:
        writer.publish()
        assert writer.published == 1 and _batches(snapshot_path(db)) == 0
        _scrape(writer, 1_800_000_000.0)
        now[0] = 109.9
        _scrape(writer, 1_800_000_015.0)
        assert writer.published == 1 and _batches(snapshot_path(db)) == 0  # not due yet
        now[0] = 110.0
        _scrape(writer, 1_800_000_030.0)
        assert writer.published == 2 and _batches(snapshot_path(db)) == 3
    finally:
        writer.close()


def _batches(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM batches").fetchone()
    return int(row[0]) if row else -1


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_supervisor_restarts_a_failing_child_then_gives_up(tmp_path: Path) -> None:
    said: list[str] = []
    crash = Child("crash", _py("import sys; print('boom'); sys.exit(3)"), tmp_path / "crash.log")
    steady = Child("steady", _py("import time; time.sleep(60)"), tmp_path / "steady.log", stop_timeout_s=5)
    sup = Supervisor([steady, crash], say=said.append, poll_s=0.05)
    assert sup.run() == 1
    assert sum("crash exited with code 3; restarting" in s for s in said) == 3
    assert sup.failed is not None and "giving up" in sup.failed and "boom" in sup.failed
    assert steady.proc is not None and steady.proc.returncode is not None  # stopped on the way out
    assert [s for s in said if s.startswith("stopped")][-1].startswith("stopped steady")


def test_supervisor_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = Child("stubborn", _py("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                     "print('ready', flush=True); time.sleep(60)"),
                     tmp_path / "stubborn.log", stop_timeout_s=0.5)
    said: list[str] = []

    def ready(child: Child) -> bool:
        return "ready" in child.tail()

    sup = Supervisor([stubborn], say=said.append, ready=ready, poll_s=0.05)
    threading.Timer(1.0, sup.request_stop).start()
    assert sup.run() == 0
    assert stubborn.proc is not None and stubborn.proc.returncode == -9
    assert said[-1] == "stopped stubborn (exit code -9)"


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its new parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    """SIGKILL to the supervisor (no chance to clean up): the kernel still ends its children."""
    code = ("import sys, time; from pathlib import Path; from gpufleet.deploy_cli import Child; "
            f"c = Child('sleeper', [sys.executable, '-c', 'import time; time.sleep(120)'], Path({str(tmp_path)!r}) / "
            "'s.log'); c.start(); print(c.proc.pid, flush=True); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert Path(f"/proc/{child}").exists()
        parent.kill()
        parent.wait(30)
        for _ in range(100):
            if not _running(child):
                break
            time.sleep(0.1)
        assert not _running(child), "child outlived its killed supervisor"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_stop_during_start_up_stops_what_started(tmp_path: Path) -> None:
    first = Child("first", _py("import time; time.sleep(60)"), tmp_path / "first.log", stop_timeout_s=5)
    never = Child("never", _py("import time; time.sleep(60)"), tmp_path / "never.log", stop_timeout_s=5)
    said: list[str] = []
    sup = Supervisor([first, never], say=said.append, ready=lambda c: c.name != "never", poll_s=0.05)
    threading.Timer(1.0, sup.request_stop).start()
    assert sup.run() == 0
    assert "all running; Ctrl-C stops" not in said
    assert first.proc is not None and first.proc.returncode == -15
    assert never.proc is not None and never.proc.returncode == -15
    assert [s for s in said if s.startswith("stopped")] == ["stopped never (exit code -15)",
                                                            "stopped first (exit code -15)"]
