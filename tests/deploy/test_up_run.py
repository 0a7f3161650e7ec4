"""``gpufleet up`` end to end on loopback: simulated fleet -> collector -> store -> snapshot -> dashboard.

Started as a real subprocess; stopped with SIGINT (Ctrl-C) and then SIGTERM; every child must be gone,
the store closed (no write-ahead log left) and a second run must append to the first run's store.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest
import yaml

from gpufleet.deploy_cli import Supervisor, _ready, build_plan, children, collector_config, snapshot_path

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "deploy"
TARGETS = 7  # --nodes 2: 2 nodes, 2 kube-state-metrics, 1 training job, 2 engines


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_range(count: int) -> int:
    """A base port with ``count`` free ports from it."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count < 65000 and all(_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port range on loopback")


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` now (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - out
        out |= frontier
    return out


def _child_running(pid: int, marker: str) -> int:
    """The pid of the descendant of ``pid`` whose command line contains ``marker``."""
    for kid in _children(pid):
        try:
            if marker in Path(f"/proc/{kid}/cmdline").read_bytes().decode(errors="replace") and _alive(kid):
                return kid
        except OSError:
            continue
    raise AssertionError(f"no child running {marker}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except OSError:
        return 0


def _batches(path: Path) -> int:
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            row = con.execute("SELECT count(*) FROM batches").fetchone()
    except duckdb.Error:
        return 0
    return int(row[0]) if row else 0


def _start(db: Path, base: int, dash: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "gpufleet", "up", "--db", str(db), "--backend", "auto", "--nodes", "2",
           "--listen", f"127.0.0.1:{base}", "--dashboard", f"127.0.0.1:{dash}", "--interval", "1",
           "--publish-every", "1"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)


def _wait(proc: subprocess.Popen[bytes], log: Path, what: str, check, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert proc.poll() is None, f"gpufleet up exited early ({proc.returncode}):\n{log.read_text()}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}:\n{log.read_text()}"
        time.sleep(0.5)


def _fleet_page_shows(browser, url: str, gpus: str) -> None:
    """Headless Chromium (Debian's) on the dashboard's Fleet page: it renders the snapshot's GPUs."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{url}/?range=all", wait_until="domcontentloaded")  # Fleet is the first page
        label = page.locator('[data-testid="stMetric"]', has_text="GPUs").first
        label.wait_for(timeout=90_000)
        assert label.locator('[data-testid="stMetricValue"]').inner_text().strip() == gpus
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                               timeout=90_000)
        assert page.get_by_text("Page not found").count() == 0
        assert page.locator('[data-testid="stException"]').count() == 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "up-fleet.png"), full_page=True)
    finally:
        page.close()


def _run_once(db: Path, log: Path, stop: signal.Signals, more_than: int,
              browser=None) -> tuple[int, set[int]]:
    base = _free_range(TARGETS + 1)
    dash = base + TARGETS
    proc = _start(db, base, dash, log)
    snap = snapshot_path(db)
    try:
        _wait(proc, log, "samples in the snapshot", lambda: _batches(snap) > more_than + 2 * TARGETS)
        _wait(proc, log, "the dashboard", lambda: _status(f"http://127.0.0.1:{dash}/") == 200)
        assert _status(f"http://127.0.0.1:{dash}/_stcore/health") == 200
        assert _status(f"http://127.0.0.1:{base}/metrics") == 200
        # readers use the snapshot while the collector holds the store
        report = subprocess.run([sys.executable, "-m", "gpufleet", "report", "summary", "--db", str(snap), "--json"],
                                capture_output=True, text=True, timeout=120)
        assert report.returncode == 0, report.stdout + report.stderr
        facts = json.loads(report.stdout)
        assert facts["gpus"] == 16 and facts["nodes"] == 2 and facts["batches"] > more_than
        if browser is not None:
            _fleet_page_shows(browser, f"http://127.0.0.1:{dash}", gpus="16")
        else:  # supervision: the fleet killed outright is restarted and scraping goes on
            fleet = _child_running(proc.pid, "up-fleet")
            os.kill(fleet, signal.SIGKILL)
            _wait(proc, log, "the fleet's restart", lambda: "fleet exited with code -9; restarting" in log.read_text())
            _wait(proc, log, "the restarted fleet", lambda: _status(f"http://127.0.0.1:{base}/metrics") == 200)
            assert _child_running(proc.pid, "up-fleet") != fleet
            after = _batches(snap)
            _wait(proc, log, "scrapes after the restart", lambda: _batches(snap) > after + TARGETS)
        kids = _children(proc.pid)
        assert len(kids) >= 3  # fleet, collector, dashboard
        proc.send_signal(stop)
        assert proc.wait(90) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return _batches(db), kids


def test_up_runs_stops_cleanly_and_appends_on_restart(tmp_path: Path, browser) -> None:
    db = tmp_path / "fleet.duckdb"
    first, kids = _run_once(db, tmp_path / "up1.log", signal.SIGINT, 0, browser=browser)
    out = (tmp_path / "up1.log").read_text()
    assert "simulated fleet" in out and "stopped collector (exit code 0)" in out
    assert not [k for k in kids if _alive(k)], "children left behind"
    assert not Path(f"{db}.wal").exists()  # the writer checkpointed and closed the store
    assert first >= 2 * TARGETS
    with duckdb.connect(str(db)) as con:  # no lock left behind: a writer can open it
        targets = {r[0] for r in con.execute("SELECT DISTINCT target FROM batches").fetchall()}
        gpus = con.execute("SELECT count(*) FROM gpus").fetchone()
        last = con.execute("SELECT max(scrape_ts) FROM batches").fetchone()[0]
    assert len(targets) == TARGETS
    assert gpus == (16,)
    assert "collector stopped; store closed" in (tmp_path / "fleet.duckdb.up" / "collector.log").read_text()
    assert (tmp_path / "fleet.duckdb.up" / ".gitignore").read_text().endswith("*\n")

    second, kids = _run_once(db, tmp_path / "up2.log", signal.SIGTERM, first)
    assert not [k for k in kids if _alive(k)], "children left behind"
    assert second > first + 2 * TARGETS
    with duckdb.connect(str(db), read_only=True) as con:
        kept = con.execute("SELECT count(*) FROM batches WHERE scrape_ts <= ?", [last]).fetchone()
    assert kept == (first,)  # the first run's scrapes are all still there


def test_nvml_plan_runs_the_exporter_and_the_collector(tmp_path: Path) -> None:
    """Where NVML sees GPUs, ``up`` runs the exporter; no GPU on CI, so the same child runs on the sim backend."""
    port = _free_range(1)
    plan, why = build_plan(tmp_path / "gpu.duckdb", "auto", f"127.0.0.1:{port}", 1, 7, 1.0, 1.0, None,
                           probe=lambda: 8)
    assert plan.backend == "nvml" and why == "NVML sees 8 GPU(s)"
    assert plan.targets == ((f"127.0.0.1:{port}", {"kind": "node"}),)
    procs = children(plan)
    assert [c.name for c in procs] == ["exporter", "collector"]
    exporter = procs[0]
    assert exporter.argv[1:] == ["-m", "gpufleet.exporters", "--backend", "nvml", "--listen", f"127.0.0.1:{port}"]
    exporter.argv[exporter.argv.index("nvml")] = "sim"
    plan.runtime.mkdir()
    (plan.runtime / "collector.yaml").write_text(yaml.safe_dump(collector_config(plan)))
    said: list[str] = []
    sup = Supervisor(procs, say=said.append, ready=_ready(plan))
    runner = threading.Thread(target=lambda: said.append(f"code {sup.run()}"))
    runner.start()
    try:
        deadline = time.monotonic() + 90
        while _batches(plan.snapshot) < 3 and time.monotonic() < deadline and runner.is_alive():
            time.sleep(0.5)
    finally:
        sup.request_stop()
        runner.join(90)
    assert said[-1] == "code 0", said
    with duckdb.connect(str(plan.db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM gpus").fetchone() == (8,)
        assert con.execute("SELECT count(DISTINCT target) FROM batches").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM batches").fetchone()[0] >= 3
    assert not Path(f"{plan.db}.wal").exists()


def _up_fails(args: list[str]) -> str:
    result = subprocess.run([sys.executable, "-m", "gpufleet", "up", "--no-dashboard", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    return " ".join((result.stdout + result.stderr).split())


def test_up_refuses_a_store_held_by_another_writer(tmp_path: Path) -> None:
    from gpufleet.core.store import StoreWriter

    db = tmp_path / "held.duckdb"
    base = _free_range(TARGETS)
    with StoreWriter(db):
        out = _up_fails(["--db", str(db), "--backend", "sim", "--listen", f"127.0.0.1:{base}"])
    assert f"--db {db} is in use by another process" in out
    assert not (tmp_path / "held.duckdb.up").exists()  # nothing was started


def test_up_refuses_busy_ports_and_bad_options(tmp_path: Path) -> None:
    base = _free_range(TARGETS)
    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 3))
        s.listen()
        out = _up_fails(["--db", str(tmp_path / "f.duckdb"), "--backend", "sim", "--listen", f"127.0.0.1:{base}"])
    assert f"port(s) in use: 127.0.0.1:{base + 3}" in out
    out = _up_fails(["--db", str(tmp_path / "f.duckdb"), "--backend", "sim", "--listen", "localhost"])
    assert "--listen 'localhost' must be host:port" in out
    out = _up_fails(["--db", str(tmp_path / "f.duckdb"), "--backend", "cuda"])
    assert "--backend 'cuda' must be auto, nvml or sim" in out
