"""Scrape engine against real loopback HTTP servers and a real DuckDB store."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gpufleet.collectors.config import CollectorConfig
from gpufleet.collectors.scrape import ScrapeEngine, TargetState
from gpufleet.core.store import StoreWriter

BODY = (
    "# TYPE gpu_temp_celsius gauge\n"
    'gpu_temp_celsius{gpu="0"} 41\n'
    'gpu_temp_celsius{gpu="1"} 43\n'
    "# TYPE gpu_energy_joules_total counter\n"
    'gpu_energy_joules_total{gpu="0"} 1000\n'
)


class _Handler(BaseHTTPRequestHandler):
    body = BODY
    auth: str | None = None

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.auth is not None and self.headers.get("Authorization") != self.auth:
            self.send_response(401)
            self.end_headers()
            return
        data = self.server.body.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        """Quiet."""


def _serve(body: str = BODY, auth: str | None = None) -> ThreadingHTTPServer:
    handler = type("H", (_Handler,), {"auth": auth})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.body = body  # type: ignore[attr-defined]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture()
def server() -> Iterator[ThreadingHTTPServer]:
    srv = _serve()
    yield srv
    srv.shutdown()


def _addr(srv: ThreadingHTTPServer) -> str:
    return f"127.0.0.1:{srv.server_address[1]}"


def _cfg(tmp_path: Path, job: dict[str, object], limits: dict[str, int] | None = None) -> CollectorConfig:
    return CollectorConfig.model_validate({
        "store": str(tmp_path / "fleet.duckdb"),
        "defaults": {"interval": "1s", "timeout": "1s"},
        "limits": limits or {},
        "flush_interval": "200ms",
        "jobs": [job],
    })


def _scrape_once(cfg: CollectorConfig) -> ScrapeEngine:
    writer = StoreWriter(cfg.store)
    engine = ScrapeEngine(cfg, writer)

    async def go() -> None:
        for spec in engine.discover():
            interval, timeout = cfg.timing(cfg.jobs[0])
            state = TargetState(spec, interval, timeout)
            engine.targets[spec.key] = state
            engine._queue.append(await engine.scrape(state))
        await engine.flush()
        for c in engine._clients.values():
            await c.aclose()

    asyncio.run(go())
    writer.close()
    return engine


def test_static_target_records_up_duration_and_samples(tmp_path: Path, server: ThreadingHTTPServer) -> None:
    cfg = _cfg(tmp_path, {"name": "gpu", "static": [{"targets": [_addr(server)], "labels": {"cluster": "a"}}]})
    engine = _scrape_once(cfg)
    (state,) = engine.targets.values()
    assert state.up is True
    assert state.last_samples == 3
    assert state.last_error == ""
    assert state.last_duration > 0
    assert engine.stats.written.landed == 1


def test_file_discovery_and_staleness_when_target_vanishes(tmp_path: Path, server: ThreadingHTTPServer) -> None:
    sd = tmp_path / "targets.json"
    sd.write_text(json.dumps([{"targets": [_addr(server)], "labels": {"team": "x"}}]))
    cfg = _cfg(tmp_path, {"name": "file", "file_sd": [str(sd)]})
    writer = StoreWriter(cfg.store)
    engine = ScrapeEngine(cfg, writer)

    async def go() -> list[str]:
        added, _ = engine.apply(engine.discover())
        assert [s.spec.name for s in added] == [_addr(server)]
        state = added[0]
        if state.task is not None:
            state.task.cancel()
        engine._queue.append(await engine.scrape(state))
        sd.write_text("[]")
        _, removed = engine.apply(engine.discover())
        stale = [b for b in engine._queue if any(
            s.metric == "gpufleet_target_stale" for s in b.series.values())]
        await engine.flush()
        for c in engine._clients.values():
            await c.aclose()
        return [s.spec.name for s in removed] + [str(len(stale))]

    out = asyncio.run(go())
    writer.close()
    assert out == [_addr(server), "1"]
    assert engine.targets == {}


@pytest.mark.parametrize(("limits", "body", "error"), [
    ({"body_bytes": 50}, BODY, "exceeds the limit of 50 bytes"),
    ({"samples": 2}, BODY, "3 samples exceed the limit of 2"),
])
def test_limits_fail_the_scrape_with_a_per_target_error(tmp_path: Path, limits: dict[str, int], body: str,
                                                        error: str) -> None:
    srv = _serve(body)
    try:
        cfg = _cfg(tmp_path, {"name": "gpu", "static": [{"targets": [_addr(srv)]}]}, limits)
        engine = _scrape_once(cfg)
    finally:
        srv.shutdown()
    (state,) = engine.targets.values()
    assert state.up is False
    assert error in state.last_error


def test_label_limits_reject_the_series_alone(tmp_path: Path) -> None:
    body = BODY + '# TYPE wide gauge\nwide{a="1",b="2",c="3",d="4",e="5",f="6"} 1\n# TYPE long gauge\nlong{a="' + "x" * 40 + '"} 1\n'
    srv = _serve(body)
    try:
        cfg = _cfg(tmp_path, {"name": "gpu", "static": [{"targets": [_addr(srv)]}]},
                   {"labels": 4, "label_value_length": 20})
        engine = _scrape_once(cfg)
    finally:
        srv.shutdown()
    (state,) = engine.targets.values()
    assert state.up is True
    assert "wide" in state.last_error and "long" in state.last_error


@pytest.mark.parametrize(("job_auth", "header"), [
    ({"basic_auth": {"username": "u", "password": "p"}}, "Basic " + base64.b64encode(b"u:p").decode()),
    ({"bearer_token": "tok"}, "Bearer tok"),
])
def test_auth_to_target(tmp_path: Path, job_auth: dict[str, object], header: str) -> None:
    srv = _serve(auth=header)
    try:
        (tmp_path / "ok").mkdir()
        (tmp_path / "bad").mkdir()
        job = {"name": "gpu", "static": [{"targets": [_addr(srv)]}]}
        ok = _scrape_once(_cfg(tmp_path / "ok", {**job, **job_auth}))
        bad = _scrape_once(_cfg(tmp_path / "bad", job))
    finally:
        srv.shutdown()
    assert next(iter(ok.targets.values())).up is True
    bad_state = next(iter(bad.targets.values()))
    assert bad_state.up is False
    assert "HTTP 401" in bad_state.last_error


def test_a_retried_flush_after_restart_neither_loses_nor_duplicates(tmp_path: Path,
                                                                    server: ThreadingHTTPServer) -> None:
    cfg = _cfg(tmp_path, {"name": "gpu", "static": [{"targets": [_addr(server)]}]})
    writer = StoreWriter(cfg.store)
    engine = ScrapeEngine(cfg, writer, clock=lambda: 1_700_000_000.0)

    async def one() -> list:
        (spec,) = engine.discover()
        state = TargetState(spec, 1.0, 1.0)
        batch = await engine.scrape(state)
        for c in engine._clients.values():
            await c.aclose()
        return [batch]

    batches = asyncio.run(one())
    first = writer.write(batches)
    writer.close()
    again = StoreWriter(cfg.store)  # a restarted collector re-sends the batch it could not confirm
    second = again.write(batches)
    again.close()
    assert (first.landed, first.skipped) == (1, 0)
    assert (second.landed, second.skipped) == (0, 1)


def test_collect_cli_scrapes_a_static_target_into_the_store(tmp_path: Path, server: ThreadingHTTPServer) -> None:
    import subprocess

    import duckdb

    cfg = tmp_path / "collect.yaml"
    cfg.write_text(f"store: {tmp_path / 'fleet.duckdb'}\ndefaults: {{interval: 1s, timeout: 1s}}\n"
                   f"flush_interval: 200ms\njobs:\n  - name: gpu\n    static: [{{targets: ['{_addr(server)}']}}]\n")
    proc = subprocess.run(["gpufleet", "collect", "--config", str(cfg), "--duration", "2.5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    con = duckdb.connect(str(tmp_path / "fleet.duckdb"), read_only=True)
    batches = con.execute("select count(*) from batches").fetchone()
    metrics = {r[0] for r in con.execute("select metric from series").fetchall()}
    con.close()
    assert batches is not None and batches[0] >= 2
    assert {"up", "scrape_duration_seconds", "scrape_samples_scraped"} <= metrics


def test_every_scrape_reaches_the_store_when_flushes_happen_during_fetches(tmp_path: Path) -> None:
    import time as _time

    import duckdb

    class Slow(_Handler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            _time.sleep(0.15)  # flushes (every 50 ms) fall inside the fetch
            super().do_GET()

    servers = []
    for _ in range(4):  # one target's batch waits in the queue while another's fetch is under way
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
        srv.body = BODY  # type: ignore[attr-defined]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    try:
        cfg = CollectorConfig.model_validate({
            "store": str(tmp_path / "fleet.duckdb"), "defaults": {"interval": "300ms", "timeout": "300ms"},
            "flush_interval": "50ms",
            "jobs": [{"name": "gpu", "static": [{"targets": [_addr(s) for s in servers]}]}]})
        writer = StoreWriter(cfg.store)
        engine = ScrapeEngine(cfg, writer)
        stats = asyncio.run(engine.run(2.0))
        writer.close()
    finally:
        for srv in servers:
            srv.shutdown()
    con = duckdb.connect(str(cfg.store), read_only=True)
    landed = con.execute("SELECT count(*) FROM batches").fetchone()
    con.close()
    assert stats.scrapes >= 16
    assert landed is not None and landed[0] == stats.scrapes == stats.written.landed


def test_engine_replays_repeat_bodies_through_the_column_writer_and_restores_the_gc(tmp_path: Path) -> None:
    import gc

    import duckdb

    from gpufleet.collectors.column_writer import ColumnWriter

    hits = [0]
    lock = threading.Lock()

    class Counting(_Handler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            with lock:
                hits[0] += 1
                n = hits[0]
            self.server.body = (  # type: ignore[attr-defined]
                f'# TYPE gpu_temp_celsius gauge\ngpu_temp_celsius{{gpu="0"}} {40 + n % 3}\n'
                f'gpu_temp_celsius{{gpu="1"}} 43\n# TYPE gpu_energy_joules_total counter\n'
                f'gpu_energy_joules_total{{gpu="0"}} {1000 + 10 * n}\n')
            super().do_GET()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    srv.body = BODY  # type: ignore[attr-defined]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    thresholds = gc.get_threshold()
    try:
        cfg = CollectorConfig.model_validate({
            "store": str(tmp_path / "fleet.duckdb"), "defaults": {"interval": "200ms", "timeout": "200ms"},
            "flush_interval": "150ms", "jobs": [{"name": "gpu", "static": [{"targets": [_addr(srv)]}]}]})
        writer = ColumnWriter(cfg.store)
        engine = ScrapeEngine(cfg, writer)
        stats = asyncio.run(engine.run(2.0))
        writer.close()
    finally:
        srv.shutdown()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
    ok = stats.scrapes - stats.failures  # a fetch timed out on a busy machine lands only its synthetic samples
    assert ok >= 6
    assert stats.replayed == ok - 1  # every body after the first repeats the first's lines
    con = duckdb.connect(str(cfg.store), read_only=True)
    rows = con.execute("""SELECT c.value, c.delta FROM counters c JOIN series s USING (series_id)
                          WHERE s.source_metric = 'gpu_energy_joules_total' ORDER BY c.ts""").fetchall()
    con.close()
    assert len(rows) == ok
    # the first value is the baseline; each later delta is the rise since the previous stored value
    assert rows[0][1] == 0 and all(d == v - p > 0 for (p, _), (v, d) in zip(rows, rows[1:], strict=False))
