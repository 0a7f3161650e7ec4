"""``gpufleet up`` end to end on loopback: simulated fleet -> collector -> store -> snapshot -> dashboard.

Started as a real subprocess; stopped with SIGINT (Ctrl-C) and then SIGTERM; every child must be gone,
the store closed (no write-ahead log left) and a second run must append to the first run's store.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from gpufleet.deploy_cli import snapshot_path

pytestmark = pytest.mark.integration

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


def _run_once(db: Path, log: Path, stop: signal.Signals, more_than: int) -> tuple[int, set[int]]:
    base = _free_range(TARGETS)
    dash = _free_range(1)
    proc = _start(db, base, dash, log)
    snap = snapshot_path(db)
    try:
        _wait(proc, log, "samples in the snapshot", lambda: _batches(snap) > more_than + 2 * TARGETS)
        _wait(proc, log, "the dashboard", lambda: _status(f"http://127.0.0.1:{dash}/") == 200)
        assert _status(f"http://127.0.0.1:{dash}/_stcore/health") == 200
        assert _status(f"http://127.0.0.1:{base}/metrics") == 200
        kids = _children(proc.pid)
        assert len(kids) >= 3  # fleet, collector, dashboard
        proc.send_signal(stop)
        assert proc.wait(90) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return _batches(db), kids


def test_up_runs_stops_cleanly_and_appends_on_restart(tmp_path: Path) -> None:
    db = tmp_path / "fleet.duckdb"
    first, kids = _run_once(db, tmp_path / "up1.log", signal.SIGINT, 0)
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

    second, kids = _run_once(db, tmp_path / "up2.log", signal.SIGTERM, first)
    assert not [k for k in kids if _alive(k)], "children left behind"
    assert second > first + 2 * TARGETS
    with duckdb.connect(str(db), read_only=True) as con:
        kept = con.execute("SELECT count(*) FROM batches WHERE scrape_ts <= ?", [last]).fetchone()
    assert kept == (first,)  # the first run's scrapes are all still there


def test_exporter_child_serves_gpu_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The child ``up`` runs where NVML works, here on the simulated GPU backend (no GPU on CI)."""
    port = _free_range(1)
    log = tmp_path / "exporter.log"
    proc = subprocess.Popen([sys.executable, "-m", "gpufleet", "up-exporter", "--gpu-backend", "sim",
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait(proc, log, "the exporter", lambda: _status(f"http://127.0.0.1:{port}/metrics") == 200, 60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        gpus = {line.split('gpu_uuid="', 1)[1].split('"', 1)[0] for line in body.splitlines()
                if line.startswith("gpufleet_gpu_energy_joules_total{")}
        assert len(gpus) == 8
        assert "DCGM_FI_DEV_GPU_TEMP{" in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
