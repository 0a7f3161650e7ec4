"""Loopback helpers for the collectors' tests: simulated targets that log who fetched what, a real Prometheus."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, params: dict[str, str] | None = None) -> Any:
    """GET ``url`` (with query ``params``) and decode its JSON body."""
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


class VersionedTargets:
    """One loopback HTTP server per target; every body belongs to a numbered version.

    The test switches versions with :meth:`publish`. Every body ends with a gauge
    ``sim_version`` naming its version, so each stored scrape says which body it came from;
    every request is logged as (scraper, target, version), the scraper told apart by its
    User-Agent, so a test can wait until each scraper has fetched a version.
    """

    def __init__(self, bodies: dict[str, str]) -> None:
        self.lock = threading.Lock()
        self.version = 0
        self.bodies = self._encode(bodies, 0)
        self.log: list[tuple[str, str, int]] = []
        self.servers: dict[str, ThreadingHTTPServer] = {}
        for name in bodies:
            srv = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(name))
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            self.servers[name] = srv

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.servers[name].server_address[1]}"

    def publish(self, bodies: dict[str, str]) -> int:
        """Serve ``bodies`` from now on, as the next version; returns its number."""
        with self.lock:
            self.version += 1
            self.bodies = self._encode(bodies, self.version)
            return self.version

    @staticmethod
    def _encode(bodies: dict[str, str], version: int) -> dict[str, bytes]:
        tag = f"# TYPE sim_version gauge\nsim_version {version}\n"
        return {k: (v + tag).encode() for k, v in bodies.items()}

    def versions(self, scraper: str, name: str) -> list[int]:
        """Versions ``scraper`` fetched from ``name``, in order."""
        with self.lock:
            return [v for s, n, v in self.log if s == scraper and n == name]

    def seen_by(self, scraper: str, version: int, times: int = 1) -> bool:
        """Whether ``scraper`` fetched every target at ``version``, at least ``times`` times each."""
        with self.lock:
            got = [n for s, n, v in self.log if s == scraper and v == version]
        return all(got.count(n) >= times for n in self.servers)

    def _handler(self, name: str) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                agent = self.headers.get("User-Agent", "")
                scraper = "prometheus" if agent.startswith("Prometheus") else "gpufleet" \
                    if agent.startswith("gpufleet") else agent
                with outer.lock:
                    body = outer.bodies[name]
                    outer.log.append((scraper, name, outer.version))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        return Handler

    def close(self) -> None:
        for srv in self.servers.values():
            srv.shutdown()
            srv.server_close()


@contextmanager
def prometheus(tmp: Path, scrape_configs: list[dict[str, Any]], *, interval: str = "500ms",
               extra_args: tuple[str, ...] = ()) -> Iterator[str]:
    """Run Debian's ``prometheus`` on loopback with tmp storage; yield its base URL."""
    port = free_port()
    cfg = tmp / "prometheus.yml"
    cfg.write_text(json.dumps({"global": {"scrape_interval": interval, "scrape_timeout": interval,
                                          "evaluation_interval": "10s"},
                               "scrape_configs": scrape_configs}))
    data = tmp / "prom-data"
    data.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", *extra_args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "prometheus exited")
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready in 60 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def start_prometheus() -> Any:
    """The ``prometheus(tmp, scrape_configs)`` context manager."""
    return prometheus


@pytest.fixture()
def versioned_targets() -> Iterator[Callable[[dict[str, str]], VersionedTargets]]:
    """Build :class:`VersionedTargets`; all are closed after the test."""
    made: list[VersionedTargets] = []

    def make(bodies: dict[str, str]) -> VersionedTargets:
        t = VersionedTargets(bodies)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


@pytest.fixture()
def http_json() -> Callable[..., Any]:
    """``get_json(url, params)``."""
    return get_json


@pytest.fixture()
def poll() -> Callable[[Callable[[], bool], float, str], None]:
    """``wait_until(check, timeout, what)``."""
    return wait_until


# What two stores must agree on, table by table, when two write paths land the same scrapes.
STORE_TABLES = {
    "batches": "SELECT target, epoch_us(scrape_ts), samples, rejected FROM batches",
    "series": "SELECT series_id, metric, kind, target, labels, epoch_us(first_ts) FROM series",
    "series_state": "SELECT series_id, le, epoch_us(ts), value FROM series_state",
    "gauges": "SELECT series_id, epoch_us(ts), value FROM gauges",
    "counters": "SELECT series_id, epoch_us(ts), value, delta FROM counters",
    "histogram_buckets": "SELECT series_id, epoch_us(ts), le, value, delta FROM histogram_buckets",
    "gpu_allocations": "SELECT epoch_us(ts), gpu_uuid, pod, share, interval_s FROM gpu_allocations",
    "events": "SELECT epoch_us(ts), target, kind, gpu_uuid, code, count FROM events",
}


def dump_store(db: Path, tables: dict[str, str] = STORE_TABLES) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables`` (name -> query) in the store ``db``, sorted, for comparing two stores."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {name: sorted(con.execute(sql).fetchall(), key=repr) for name, sql in tables.items()}
    finally:
        con.close()
