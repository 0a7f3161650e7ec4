"""``gpufleet up``: the exporter (or the simulated fleet), the collector and the dashboard, supervised.

One command runs the main job on the embedded default:

* **targets**: on a machine where NVML works, the real exporter (``python -m gpufleet.exporters``) on
  ``--listen``; otherwise the simulated fleet, each of its targets (nodes, kube-state-metrics, engines,
  training jobs) on its own loopback port from ``--listen`` up, so every target keeps its own name in the store;
* **collector**: the scrape engine writing every target into the DuckDB store (the one writer);
* **dashboard**: the Streamlit app reading a read-only snapshot of the store.

DuckDB lets one process write a file and refuses read-only openers of another process while it does.
So the collector, the only writer, publishes a snapshot: after a write, once ``--publish-every`` seconds
have passed, in the writer's worker thread (scraping goes on meanwhile), it brings rollups up to date,
checkpoints (the write-ahead log folds into the file), copies the file next to it
and renames the copy over ``<store>.snapshot.duckdb`` (an atomic rename: a reader sees the old or the
new file, never half of one). The dashboard and reports read the snapshot; the store is never opened by
two processes. Children run in their own sessions (Ctrl-C reaches the supervisor, which stops them in
order: dashboard, collector with a last flush and a clean close of the store, targets) and get SIGTERM
from the kernel if the supervisor dies. A child that exits on its own is restarted, at most
``MAX_RESTARTS`` times a minute; past that ``up`` stops everything and exits 1.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Annotated, Any

import typer
import yaml

__all__ = [
    "register", "UpPlan", "detect_backend", "parse_listen", "snapshot_path", "collector_config", "publish_snapshot",
    "Child", "Supervisor", "MAX_RESTARTS", "build_plan", "children", "publishing_writer",
]

MAX_RESTARTS = 3  # per child per minute before ``up`` gives up
_PR_SET_PDEATHSIG = 1


# -- the plan: pure values ---------------------------------------------------------------------------


def parse_listen(text: str, what: str = "--listen") -> tuple[str, int]:
    """``host:port`` -> (host, port); a clear error naming ``what`` otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what} {text!r} must be host:port with a port from 1 to 65535, e.g. 127.0.0.1:9400")
    return host.strip("[]"), int(port)


def snapshot_path(db: Path) -> Path:
    """Where the read-only snapshot of ``db`` is published: ``fleet.duckdb`` -> ``fleet.snapshot.duckdb``."""
    return db.with_name(f"{db.stem}.snapshot{db.suffix or '.duckdb'}")


@dataclass(frozen=True)
class UpPlan:
    """Everything ``up`` runs, decided before anything starts."""

    db: Path
    backend: str  # nvml | sim
    host: str
    base_port: int
    nodes: int
    seed: int
    interval_s: float
    publish_every_s: float
    dashboard: tuple[str, int] | None
    targets: tuple[tuple[str, dict[str, str]], ...] = field(default=())  # (host:port, target labels)

    @property
    def snapshot(self) -> Path:
        return snapshot_path(self.db)

    @property
    def runtime(self) -> Path:
        """Generated config and child logs: ``<store>.up/``."""
        return self.db.with_name(f"{self.db.name}.up")


def sim_targets(nodes: int, seed: int, host: str, base_port: int) -> tuple[tuple[str, dict[str, str]], ...]:
    """The simulated fleet's targets, one loopback port each from ``base_port``, with their target labels."""
    from gpufleet.core.simfleet import FleetConfig, SimulatedFleet

    fleet = SimulatedFleet(FleetConfig(nodes=nodes, seed=seed))
    out = []
    for i, t in enumerate(fleet.targets()):
        out.append((f"{host}:{base_port + i}", {**t.labels, "sim_target": t.name, "kind": t.kind}))
    return tuple(out)


def collector_config(plan: UpPlan) -> dict[str, Any]:
    """The collector YAML config (``gpufleet collect`` format) for the plan's targets."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for hostport, labels in plan.targets:
        kind = labels.get("kind", "node")
        target_labels = {k: v for k, v in labels.items() if k not in ("kind", "sim_target")}
        groups.setdefault(kind, []).append({"targets": [hostport], "labels": target_labels})
    interval = f"{plan.interval_s:g}s"
    timeout = f"{min(plan.interval_s, 10.0):g}s"
    jobs = [{"name": f"up-{kind}", "static": static, "interval": interval, "timeout": timeout}
            for kind, static in groups.items()]
    return {"store": str(plan.db), "flush_interval": f"{min(plan.interval_s, 1.0):g}s", "jobs": jobs}


def nvml_works(probe: Callable[[], int] | None = None) -> tuple[bool, str]:
    """Whether NVML initialises and sees at least one GPU, and why not."""
    def default() -> int:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()

    try:
        count = (probe or default)()
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable NVML here
        return False, f"NVML unavailable ({type(exc).__name__}: {exc})"
    if count < 1:
        return False, "NVML sees no GPU"
    if importlib.util.find_spec("gpufleet.exporters.nvml") is None:
        return False, "NVML works but this installation has no NVML backend (gpufleet.exporters.nvml)"
    return True, f"NVML sees {count} GPU(s)"


def detect_backend(requested: str, probe: Callable[[], int] | None = None) -> tuple[str, str]:
    """``auto|nvml|sim`` -> (``nvml`` or ``sim``, reason); ``nvml`` asked for but unusable is a ValueError."""
    if requested not in ("auto", "nvml", "sim"):
        raise ValueError(f"--backend {requested!r} must be auto, nvml or sim")
    if requested == "sim":
        return "sim", "simulated fleet asked for"
    ok, why = nvml_works(probe)
    if ok:
        return "nvml", why
    if requested == "nvml":
        raise ValueError(f"--backend nvml: {why}; use --backend sim (or auto) on a machine without NVIDIA GPUs")
    return "sim", f"{why}; serving the simulated fleet"


# -- the snapshot the readers use ---------------------------------------------------------------------


def publish_snapshot(con: Any, db: Path, snapshot: Path) -> None:
    """Checkpoint the writer's connection ``con`` on ``db`` and atomically replace ``snapshot`` with a copy.

    Call it between writes from the writer's thread: after ``CHECKPOINT`` the file alone holds every
    committed row, so a byte copy is a consistent database. Readers that have the old snapshot open keep
    reading it (the rename leaves their open file alone); the next open gets the new one.
    """
    con.execute("CHECKPOINT")
    tmp = snapshot.with_name(f".{snapshot.name}.tmp")
    shutil.copyfile(db, tmp)
    os.replace(tmp, snapshot)


# -- child processes ------------------------------------------------------------------------------------


@functools.cache
def _prctl() -> Any:
    """The C library's ``prctl`` on Linux (None elsewhere), looked up in the parent; a forked child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent(prctl: Any) -> Callable[[], None]:
    """What the child runs before exec: ask the kernel for SIGTERM when the supervisor dies."""
    def arm() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    return arm


@dataclass
class Child:
    """One supervised process: how to start it and how long it may take to stop."""

    name: str
    argv: list[str]
    log: Path
    stop_timeout_s: float = 15.0
    proc: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)
    _log_file: IO[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent(_prctl()))
        self.starts.append(time.monotonic())

    def exited(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return None if self.proc is None else self.proc.poll()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM, wait ``stop_timeout_s``, then SIGKILL; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.proc.returncode


class Supervisor:
    """Start children in order, restart one that exits, stop them all in reverse order on a signal."""

    def __init__(self, children: Sequence[Child], *, say: Callable[[str], None] = print,
                 ready: Callable[[Child], bool] | None = None, poll_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.children = list(children)
        self.say = say
        self.ready = ready or (lambda c: True)
        self.poll_s = poll_s
        self.clock = clock
        self.stopping = threading.Event()
        self.failed: str | None = None

    def request_stop(self, *_: object) -> None:
        self.stopping.set()

    def _start_all(self) -> bool:
        for child in self.children:
            if self.stopping.is_set():
                return False
            child.start()
            self.say(f"started {child.name} (pid {child.proc.pid if child.proc else '?'}), log {child.log}")
            while not self.ready(child):
                if child.exited() is not None:
                    self.failed = f"{child.name} exited with code {child.exited()} while starting:\n{child.tail()}"
                    return False
                if self.stopping.wait(0.2):
                    return False
        return True

    def _watch(self) -> None:
        while not self.stopping.wait(self.poll_s):
            for child in self.children:
                code = child.exited()
                if code is None:
                    continue
                now = self.clock()
                recent = [t for t in child.starts if now - t < 60]
                if len(recent) > MAX_RESTARTS:
                    self.failed = (f"{child.name} exited (code {code}) {len(recent)} times within a minute; "
                                   f"giving up. Last lines of {child.log}:\n{child.tail()}")
                    return
                self.say(f"{child.name} exited with code {code}; restarting")
                child.stop()
                child.start()

    def run(self) -> int:
        """Run until a signal (0) or a child that keeps failing (1)."""
        try:
            if self._start_all():
                self.say("all running; Ctrl-C stops")
                self._watch()
        finally:
            for child in reversed(self.children):
                code = child.stop()
                if code is not None:
                    self.say(f"stopped {child.name} (exit code {code})")
        if self.failed:
            self.say(self.failed)
            return 1
        return 0


# -- readiness checks -----------------------------------------------------------------------------------


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``url`` answers HTTP 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - loopback URLs we built
            return int(resp.status) == 200
    except (OSError, ValueError):
        return False


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# -- the child commands (hidden) ---------------------------------------------------------------------------


def _serve_fleet(nodes: int, seed: int, host: str, base_port: int) -> None:
    """Serve each simulated target on its own port until SIGTERM; the fleet moves with the wall clock."""
    from gpufleet.core.simfleet import FleetConfig, SimulatedFleet

    fleet = SimulatedFleet(FleetConfig(nodes=nodes, seed=seed))
    lock = threading.Lock()
    fleet.advance(time.time())

    def body(target: Any) -> bytes:
        with lock:
            now = time.time()
            if fleet.t is None or now - fleet.t >= 1.0:
                fleet.advance(now)
            return fleet.render(target).encode()

    servers = []
    for i, target in enumerate(fleet.targets()):
        class Handler(BaseHTTPRequestHandler):
            sim_target = target

            def do_GET(self) -> None:  # noqa: N802
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "only /metrics is served")
                    return
                data = body(self.sim_target)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        server = ThreadingHTTPServer((host, base_port + i), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name=f"sim {target.name}", daemon=True).start()
        servers.append(server)
        print(f"{target.name} on http://{host}:{base_port + i}/metrics", flush=True)
    _wait_for_term()
    for server in servers:
        server.shutdown()
        server.server_close()


def _wait_for_term() -> None:
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def publishing_writer(db: Path, publish_every_s: float, *, clock: Callable[[], float] = time.monotonic) -> Any:
    """A ``StoreWriter`` on ``db`` that, after a write, publishes the snapshot when ``publish_every_s`` has passed.

    The scrape engine runs each write in a worker thread while its event loop keeps scraping, so the
    rollups, the checkpoint and the copy happen there too: a slow copy delays the next flush, never a scrape.
    """
    from gpufleet.core.store import Batch, StoreWriter, WriteReport, maintain

    class PublishingWriter(StoreWriter):
        snapshot = snapshot_path(Path(db))
        published = 0

        def __init__(self) -> None:
            super().__init__(db)
            self.last = clock()

        def publish(self) -> None:
            maintain(self.con)
            publish_snapshot(self.con, self.path, self.snapshot)
            self.last = clock()
            self.published += 1

        def write(self, batches: Iterable[Batch]) -> WriteReport:
            report = super().write(batches)
            if clock() - self.last >= publish_every_s:
                self.publish()
            return report

    return PublishingWriter()


def _run_collector(config: Path, publish_every_s: float) -> None:
    """Scrape into the store until SIGTERM; publish the snapshot every ``publish_every_s`` and at the end."""
    import asyncio

    from gpufleet.collectors.config import load_config
    from gpufleet.collectors.scrape import ScrapeEngine

    cfg = load_config(config)
    writer = publishing_writer(Path(cfg.store), publish_every_s)
    shown = [0]

    def tick(engine: ScrapeEngine) -> None:
        if writer.published > shown[0]:
            shown[0] = writer.published
            print(f"scrapes {engine.stats.scrapes} (failed {engine.stats.failures}), "
                  f"samples {engine.stats.written.samples} written; snapshot {writer.published} published",
                  flush=True)

    async def main() -> None:
        engine = ScrapeEngine(cfg, writer)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, engine.stop)
        await engine.run(on_tick=tick)

    try:
        writer.publish()  # an empty store still gives the dashboard a file to open
        asyncio.run(main())
        writer.publish()
    finally:
        writer.close()
    print("collector stopped; store closed", flush=True)


# -- the command ------------------------------------------------------------------------------------------


def build_plan(db: Path, backend: str, listen: str, nodes: int, seed: int, interval: float, publish_every: float,
               dashboard: str | None, probe: Callable[[], int] | None = None) -> tuple[UpPlan, str]:
    """Validate the options and decide what runs; ValueError names the bad option."""
    host, port = parse_listen(listen)
    dash = parse_listen(dashboard, "--dashboard") if dashboard else None
    kind, why = detect_backend(backend, probe)
    db = db.expanduser().resolve()
    if db.exists() and not db.is_file():
        raise ValueError(f"--db {db} exists and is not a file")
    if not db.parent.is_dir():
        raise ValueError(f"--db {db}: folder {db.parent} does not exist")
    if kind == "sim":
        targets = sim_targets(nodes, seed, host, port)
        if port + len(targets) - 1 > 65535:
            raise ValueError(f"--listen {listen}: the simulated fleet needs {len(targets)} ports from {port}, "
                             f"past 65535; choose a lower port")
    else:
        targets = ((f"{host}:{port}", {"kind": "node"}),)
    plan = UpPlan(db=db, backend=kind, host=host, base_port=port, nodes=nodes, seed=seed, interval_s=interval,
                  publish_every_s=publish_every, dashboard=dash, targets=targets)
    return plan, why


def _check_store_writable(db: Path) -> None:
    """Fail early, naming the store, when another process holds it (e.g. a second ``up`` on the same file)."""
    from gpufleet.core.store import StoreError
    from gpufleet.core.store.writer import connect

    if not db.exists():
        return
    try:
        connect(db, read_only=False).close()
    except StoreError as exc:
        raise ValueError(f"--db {db} is in use by another process (only one writer at a time): {exc}") from None


def children(plan: UpPlan) -> list[Child]:
    """The processes of a plan, in start order."""
    me = [sys.executable, "-m", "gpufleet"]
    rt = plan.runtime
    if plan.backend == "sim":
        first = Child("fleet", [*me, "up-fleet", "--nodes", str(plan.nodes), "--seed", str(plan.seed),
                                "--host", plan.host, "--port", str(plan.base_port)], rt / "fleet.log")
    else:
        first = Child("exporter", [sys.executable, "-m", "gpufleet.exporters", "--backend", "nvml",
                                   "--listen", f"{plan.host}:{plan.base_port}"], rt / "exporter.log")
    out = [first, Child("collector", [*me, "up-collector", "--config", str(rt / "collector.yaml"),
                                      "--publish-every", f"{plan.publish_every_s:g}"], rt / "collector.log",
                        stop_timeout_s=60.0)]
    if plan.dashboard is not None:
        from gpufleet.dashboards.launch import command

        addr, port = plan.dashboard
        out.append(Child("dashboard", command(plan.snapshot, port, address=addr), rt / "dashboard.log"))
    return out


def _ready(plan: UpPlan) -> Callable[[Child], bool]:
    def check(child: Child) -> bool:
        if child.name in ("fleet", "exporter"):
            return all(http_ok(f"http://{hp}/metrics") for hp, _ in plan.targets)
        if child.name == "collector":
            return plan.snapshot.exists()
        if child.name == "dashboard" and plan.dashboard is not None:
            host, port = plan.dashboard
            return http_ok(f"http://{host}:{port}/_stcore/health")
        return True
    return check


def register(app: typer.Typer, report_app: typer.Typer) -> None:
    """Add ``up`` (and the hidden commands of its child processes) to the CLI."""
    from gpufleet.main import console, fail

    @app.command("up")
    def up(
        db: Annotated[Path, typer.Option("--db", help="DuckDB store file (kept between runs; a run appends).",
                                         envvar="GPUFLEET_DB")] = Path("gpufleet.duckdb"),
        backend: Annotated[str, typer.Option(help="auto: the NVML exporter where NVML sees a GPU, else the "
                                                  "simulated fleet; nvml; sim.")] = "auto",
        listen: Annotated[str, typer.Option(help="host:port of the exporter; the simulated fleet's targets take "
                                                 "consecutive ports from there.")] = "127.0.0.1:9400",
        nodes: Annotated[int, typer.Option(min=1, max=64, help="Simulated nodes (8 GPUs each).")] = 2,
        seed: Annotated[int, typer.Option(help="Seed of the simulated fleet.")] = 7,
        interval: Annotated[float, typer.Option(min=0.5, max=3600, help="Seconds between scrapes.")] = 15.0,
        publish_every: Annotated[float, typer.Option(min=0.5, max=3600, help="Seconds between snapshots the "
                                                     "dashboard reads.")] = 15.0,
        dashboard: Annotated[str, typer.Option(help="host:port of the dashboard.")] = "127.0.0.1:8501",
        no_dashboard: Annotated[bool, typer.Option("--no-dashboard", help="Run without the dashboard.")] = False,
    ) -> None:
        """Run the exporter (or the simulated fleet), the collector and the dashboard until Ctrl-C."""
        want_dashboard = not no_dashboard
        if want_dashboard and importlib.util.find_spec("streamlit") is None:
            console.print("[yellow]streamlit is not installed (the 'app' extra): running without the dashboard")
            want_dashboard = False
        try:
            plan, why = build_plan(db, backend, listen, nodes, seed, interval, publish_every,
                                   dashboard if want_dashboard else None)
        except ValueError as exc:
            raise fail(str(exc)) from None
        busy = [hp for hp, _ in plan.targets if not _port_free(*parse_listen(hp))]
        if plan.dashboard is not None and not _port_free(*plan.dashboard):
            busy.append(f"{plan.dashboard[0]}:{plan.dashboard[1]} (--dashboard)")
        if busy:
            raise fail(f"port(s) in use: {', '.join(busy[:5])}; choose others with --listen / --dashboard")
        try:
            _check_store_writable(plan.db)
        except ValueError as exc:
            raise fail(str(exc)) from None
        plan.runtime.mkdir(exist_ok=True)
        (plan.runtime / ".gitignore").write_text("# generated by gpufleet up: config and logs\n*\n")
        (plan.runtime / "collector.yaml").write_text(yaml.safe_dump(collector_config(plan), sort_keys=False))
        console.print(f"gpufleet up: {why}; {len(plan.targets)} target(s) from {plan.host}:{plan.base_port}, "
                      f"store {plan.db}, snapshot {plan.snapshot}")
        if plan.dashboard is not None:
            console.print(f"dashboard: http://{plan.dashboard[0]}:{plan.dashboard[1]}")
        sup = Supervisor(children(plan), say=lambda s: console.print(s, markup=False, highlight=False),
                         ready=_ready(plan))
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, sup.request_stop)
        code = sup.run()
        if code:
            raise typer.Exit(code)

    @app.command("up-fleet", hidden=True)
    def up_fleet(nodes: int = 2, seed: int = 7, host: str = "127.0.0.1", port: int = 9400) -> None:
        """Child of ``up``: serve the simulated fleet."""
        _serve_fleet(nodes, seed, host, port)

    @app.command("up-collector")
    def up_collector(
        config: Annotated[Path, typer.Option("--config", help="Collector YAML config (as for `collect`).")],
        publish_every: Annotated[float, typer.Option(min=0.5, help="Seconds between snapshots for readers.")] = 60.0,
    ) -> None:
        """Collect into the store and publish <store>.snapshot.duckdb for the dashboard (used by `up` and Helm)."""
        from gpufleet.collectors.config import ConfigError
        from gpufleet.core.store import StoreError

        try:
            _run_collector(config, publish_every)
        except (ConfigError, StoreError) as exc:
            raise fail(str(exc)) from None
