"""Write path under kill -9: a collector killed inside a write transaction neither loses nor duplicates.

The child process lands simulated scrapes (a GPU node and a vLLM engine of the simulated
fleet, rendered for fixed times) through the real parser, adapters and single writer, a few
batches per transaction like the engine's flushes. With ``CRASH_AT`` set it stops inside the
transaction of that flush, after every row is inserted and before the commit, and the test
kills it with SIGKILL. A restart re-sends everything from the start, as a collector does with
the batches it could not confirm; the store must then equal, table for table, one written by
a process that never crashed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from .conftest import dump_store

CHILD = textwrap.dedent("""
    import os, sys, time
    from gpufleet.collectors.column_writer import ColumnWriter
    from gpufleet.collectors.exposition import parse
    from gpufleet.collectors.ingest import Scrape, to_batch
    from gpufleet.collectors.normalize import Trace, normalize
    from gpufleet.collectors.repeat import build_plan, replay
    from gpufleet.collectors.target import Target
    from gpufleet.core.simfleet import FleetConfig, SimulatedFleet
    from gpufleet.core.store import StoreWriter

    crash_at = int(os.environ.get("CRASH_AT", "-1"))
    column = os.environ.get("ROAD") == "column"  # the engine's road: replayed scrapes, ColumnWriter
    plans = {}

    def batch_of(target, t, text):
        if not column:
            return to_batch(Scrape(target, t, text, 15.0))
        plan = plans.get(target.name)
        replayed = replay(plan, text, target.name, t, 15.0) if plan is not None else None
        if replayed is not None:
            return replayed
        result, trace = parse(text), Trace()
        batch = normalize(result, target, t, interval_hint_s=15.0, trace=trace)
        plans[target.name] = build_plan(text, result, batch, trace)
        return batch

    class Writer(ColumnWriter if column else StoreWriter):
        flushes = 0

        def _insert(self, *args):
            super()._insert(*args)
            if self.flushes == crash_at:
                print("inside", flush=True)
                time.sleep(600)

    fleet = SimulatedFleet(FleetConfig(nodes=2, seed=5))
    targets = [next(t for t in fleet.targets() if t.kind == kind) for kind in ("node", "engine")]
    writer = Writer(sys.argv[1])
    t = fleet.cfg.start + 10 * 3600
    for flush in range(6):
        batches = []
        for _ in range(3):
            t += 15
            fleet.advance(t)
            batches += [batch_of(Target(x.name, {"job": x.kind}), t, fleet.render(x)) for x in targets]
        report = writer.write(batches)
        print("flush", flush, report.landed, report.skipped, flush=True)
        Writer.flushes += 1
    writer.close()
""")


def _run(db: Path, crash_at: int | None = None, road: str = "plain") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRASH_AT": str(crash_at if crash_at is not None else -1), "ROAD": road}
    return subprocess.run([sys.executable, "-c", CHILD, str(db)], env=env, capture_output=True, text=True,
                          timeout=180)




@pytest.mark.parametrize("road", ["plain", "column"])
def test_kill_9_inside_a_write_then_restart_loses_and_duplicates_nothing(tmp_path: Path, road: str) -> None:
    """``plain``: full parses through StoreWriter; ``column``: replayed scrapes through ColumnWriter."""
    clean = _run(tmp_path / "clean.duckdb", road=road)
    assert clean.returncode == 0, clean.stderr
    expected = dump_store(tmp_path / "clean.duckdb")
    assert len(expected["batches"]) == 6 * 3 * 2  # six flushes of three scrapes of two targets

    crashed = tmp_path / "crashed.duckdb"
    env = {**os.environ, "CRASH_AT": "3", "ROAD": road}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(crashed)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line.strip())
        if line.strip() == "inside" or not line:
            break
    assert lines[-1] == "inside", (lines, proc.stderr.read() if proc.stderr else "")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert lines[:-1] == [f"flush {i} 6 0" for i in range(3)]

    after_crash = dump_store(crashed)  # the WAL replays the three committed flushes, nothing of the fourth
    by_time = sorted(expected["batches"], key=lambda b: (b[1], b[0]))
    assert sorted(after_crash["batches"], key=lambda b: (b[1], b[0])) == by_time[:9 * 2]
    assert len(after_crash["gauges"]) < len(expected["gauges"])

    restarted = _run(crashed, road=road)
    assert restarted.returncode == 0, restarted.stderr
    # the first three flushes are recognised as landed; the fourth (killed) and later ones land now
    assert restarted.stdout.split("\n")[:6] == [f"flush {i} 0 6" for i in range(3)] + [
        f"flush {i} 6 0" for i in range(3, 6)]
    assert dump_store(crashed) == expected
    if road == "column":  # and the replayed road lands what the plain one does
        plain = _run(tmp_path / "plain.duckdb")
        assert plain.returncode == 0, plain.stderr
        assert dump_store(tmp_path / "plain.duckdb") == expected


def test_kill_9_of_gpufleet_collect_then_restart_keeps_every_scrape_once(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    count = [0]
    lock = threading.Lock()  # a timed-out scrape's handler can overlap the next one's

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            with lock:
                count[0] += 1
                n = count[0]
            body = (f"# TYPE gpu_energy_joules_total counter\ngpu_energy_joules_total{{gpu=\"0\"}} "
                    f"{100 * n}\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            """Quiet."""

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    db = tmp_path / "fleet.duckdb"
    cfg = tmp_path / "collect.yaml"
    cfg.write_text(f"store: {db}\ndefaults: {{interval: 200ms, timeout: 200ms}}\nflush_interval: 100ms\n"
                   f"jobs:\n  - name: gpu\n    static: [{{targets: ['127.0.0.1:{srv.server_address[1]}']}}]\n")
    try:
        first = subprocess.Popen(["gpufleet", "collect", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while count[0] < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        before = count[0]
        second = subprocess.run(["gpufleet", "collect", "--config", str(cfg), "--duration", "1.5"],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
    finally:
        srv.shutdown()
    con = duckdb.connect(str(db), read_only=True)
    try:
        batches = con.execute("SELECT count(*), count(DISTINCT scrape_ts) FROM batches").fetchone()
        rows = con.execute("SELECT c.value, c.delta FROM counters c JOIN series s USING (series_id) "
                           "WHERE s.metric = 'gpu_energy_joules_total' ORDER BY c.ts").fetchall()
        ups = con.execute("SELECT count(*) FROM gauges g JOIN series s USING (series_id) "
                          "WHERE s.metric = 'up' AND g.value = 1").fetchone()
    finally:
        con.close()
    assert batches is not None and batches[0] == batches[1], batches  # no scrape time twice
    values = [v for v, _ in rows]
    assert ups is not None
    assert len(values) == len(set(values)) == ups[0], (values, ups)  # each successful scrape once
    assert values == sorted(values), values
    assert values[-1] > before * 100, (values, before)  # the restarted collector landed new scrapes
    # each delta is the rise since the previous stored value: nothing double counted across the crash
    assert [d for _, d in rows][1:] == [b - a for a, b in zip(values, values[1:], strict=False)]
