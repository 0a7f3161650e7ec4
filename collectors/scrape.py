"""The scrape engine: asyncio + httpx, one loop per target, batches to the single writer.

Each target is scraped every ``interval`` from an offset spread over the interval (by a hash of
its URL, as Prometheus does), with ``timeout`` per scrape. Every scrape, failed or not, records
synthetic samples of the target, like Prometheus' own: ``up``, ``scrape_duration_seconds``,
``scrape_samples_scraped``, ``scrape_samples_rejected`` and ``scrape_series_stale`` (series the
previous scrape had and this one lacks). A target that vanishes from discovery gets a last
sample ``gpufleet_target_stale 1`` at the moment it vanished, so readers know its series ended.

Limits: a body over ``limits.body_bytes`` or more than ``limits.samples`` samples fails the whole
scrape (``up 0``) with a per-target error naming the limit; a series over the label limits is
rejected alone. Batches are flushed every ``flush_interval`` to :meth:`StoreWriter.write`, which
is transactional and idempotent (keyed by target and scrape time), so a crash loses at most the
unflushed interval and a restart resumes without duplicates.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import ssl
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gpufleet.collectors.config import CollectorConfig, ConfigError, JobConfig, TlsConfig
from gpufleet.collectors.discovery import (
    DiscoveryError,
    TargetSpec,
    file_targets,
    kubernetes_targets,
    static_targets,
)
from gpufleet.collectors.exposition import parse
from gpufleet.collectors.normalize import Limits, Trace, normalize
from gpufleet.collectors.repeat import Plan, ReplayBatch, build_plan, replay
from gpufleet.collectors.target import Target
from gpufleet.core.store import Batch, StoreWriter, WriteReport

__all__ = ["ScrapeEngine", "TargetState", "EngineStats", "ScrapeFailed", "client_for", "job_tls_context",
           "tls_context"]

log = logging.getLogger("gpufleet.collect")

KEEPALIVE_S = 300.0
ACCEPT = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"


class ScrapeFailed(Exception):
    """One scrape failed; the message is the per-target error."""


@dataclass
class TargetState:
    """What the engine knows about one target."""

    spec: TargetSpec
    interval: float
    timeout: float
    up: bool = False
    last_scrape: float | None = None
    last_error: str = ""
    last_duration: float = 0.0
    last_samples: int = 0
    scrapes: int = 0
    failures: int = 0
    missed: int = 0
    series: frozenset[int] = frozenset()
    task: asyncio.Task[None] | None = None
    plan: Plan | None = None  # how the last fully parsed body maps onto rows (see repeat.py)
    synthetic_plan: Plan | None = None
    replayed: int = 0


@dataclass
class EngineStats:
    """Counters over the engine's life, for the CLI and the benchmark."""

    scrapes: int = 0
    failures: int = 0
    samples: int = 0
    missed: int = 0
    replayed: int = 0
    lags: list[float] = field(default_factory=list)
    written: WriteReport = field(default_factory=WriteReport)


def client_for(job: JobConfig, *, transport: httpx.AsyncBaseTransport | None = None,
               max_connections: int = 1000, verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """An httpx client with the job's TLS and auth settings (``verify``: the job's TLS context, made once)."""
    if verify is None:
        verify = job_tls_context(job)
    auth: httpx.Auth | None = None
    headers = {"Accept": ACCEPT, "User-Agent": "gpufleet-collector"}
    if job.basic_auth is not None:
        password = job.basic_auth.password
        if job.basic_auth.password_file is not None:
            password = Path(job.basic_auth.password_file).read_text(encoding="utf-8").strip()
        auth = httpx.BasicAuth(job.basic_auth.username, password or "")
    token = job.bearer_token
    if job.bearer_token_file is not None:
        token = Path(job.bearer_token_file).read_text(encoding="utf-8").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    # keep idle connections across scrape intervals (httpx's default drops them after 5 s, so every
    # 15 s scrape would open a new one)
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                          keepalive_expiry=KEEPALIVE_S)
    return httpx.AsyncClient(verify=verify, auth=auth, headers=headers, limits=limits, transport=transport,
                             follow_redirects=False)


def job_tls_context(job: JobConfig) -> ssl.SSLContext:
    """The job's client TLS context: its own settings, or httpx's default verification."""
    return httpx.create_ssl_context() if job.tls is None else tls_context(job.tls)


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """The client TLS context of a job: its CA (or the system's), its client certificate, its verification."""
    try:
        ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if tls.cert_file is not None and tls.key_file is not None:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls: cannot load {tls.ca_file or tls.cert_file}: {exc}") from exc
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _reason(exc: BaseException) -> str:
    """The first non-empty message along an exception's causes (TLS alerts hide under an empty ReadError)."""
    seen: BaseException | None = exc
    while seen is not None:
        if str(seen):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return "connection failed"


def _synthetic(up: bool, duration: float, samples: int, rejected: int, stale: int) -> str:
    return (f"# TYPE up gauge\nup {1 if up else 0}\n# TYPE scrape_duration_seconds gauge\n"
            f"scrape_duration_seconds {duration:.6f}\n# TYPE scrape_samples_scraped gauge\n"
            f"scrape_samples_scraped {samples}\n# TYPE scrape_samples_rejected gauge\n"
            f"scrape_samples_rejected {rejected}\n# TYPE scrape_series_stale gauge\nscrape_series_stale {stale}\n")


class ScrapeEngine:
    """Scrape every discovered target on its schedule and hand batches to ``writer``."""

    def __init__(self, cfg: CollectorConfig, writer: StoreWriter, *, clock: Callable[[], float] = time.time,
                 transport: httpx.AsyncBaseTransport | None = None, file_refresh_s: float = 5.0,
                 switch_interval_s: float = 0.0005, gc_young_threshold: int | None = 50_000) -> None:
        self.cfg = cfg
        self.writer = writer
        self.clock = clock
        self.transport = transport
        self.file_refresh_s = file_refresh_s
        self.switch_interval_s = switch_interval_s
        self.gc_young_threshold = gc_young_threshold
        self.targets: dict[tuple[str, str], TargetState] = {}
        self.stats = EngineStats()
        self.discovery_errors: list[str] = []
        self._queue: list[Batch] = []
        # one client per target: httpcore's pool walks all its connections on every request, so one
        # pool for a thousand targets costs a thousand checks per scrape
        self._clients: dict[tuple[str, str], httpx.AsyncClient] = {}
        self._tls: dict[str, ssl.SSLContext] = {}  # per job: loading CAs once, not per target
        self._closing: set[asyncio.Task[None]] = set()
        self._k8s_cache: dict[str, tuple[float, list[TargetSpec]]] = {}
        self._limits = Limits(max_labels=cfg.limits.labels, max_label_value_length=cfg.limits.label_value_length,
                              max_samples=cfg.limits.samples)
        self._stop = asyncio.Event()
        # one thread: the parser's and adapters' caches are plain dicts, and scrapes stay in order
        self._cpu = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpufleet-parse")

    # -- discovery ---------------------------------------------------------------------------

    def discover(self) -> list[TargetSpec]:
        """Every target of every job now; a failing source keeps its previous targets."""
        specs: list[TargetSpec] = []
        errors: list[str] = []
        for job in self.cfg.jobs:
            specs.extend(static_targets(job))
            if job.file_sd:
                found, errs = file_targets(job)
                specs.extend(found)
                errors.extend(errs)
            if job.kubernetes is not None:
                cached = self._k8s_cache.get(job.name)
                if cached is None or self.clock() - cached[0] >= job.kubernetes.refresh_interval:
                    try:
                        cached = (self.clock(), kubernetes_targets(job))
                        self._k8s_cache[job.name] = cached
                    except DiscoveryError as exc:
                        errors.append(str(exc))
                if cached is not None:
                    specs.extend(cached[1])
        self.discovery_errors = errors
        for e in errors:
            log.warning("discovery: %s", e)
        unique: dict[tuple[str, str], TargetSpec] = {}
        for s in specs:
            unique.setdefault(s.key, s)
        return list(unique.values())

    def apply(self, specs: list[TargetSpec]) -> tuple[list[TargetState], list[TargetState]]:
        """Start loops for new targets, stop vanished ones; returns (added, removed)."""
        wanted = {s.key: s for s in specs}
        added, removed = [], []
        for key, state in list(self.targets.items()):
            if key not in wanted or wanted[key] != state.spec:
                if state.task is not None:
                    state.task.cancel()
                del self.targets[key]
                self._close_client(key)
                state.plan = state.synthetic_plan = state.task = None  # frozen cycles are never collected: break them
                state.series = frozenset()
                removed.append(state)
                if state.last_scrape is not None:
                    self._queue.append(self._stale_batch(state))
        jobs = {j.name: j for j in self.cfg.jobs}
        for key, spec in wanted.items():
            if key in self.targets:
                continue
            interval, timeout = self.cfg.timing(jobs[spec.job])
            state = TargetState(spec, interval, timeout)
            self.targets[key] = state
            state.task = asyncio.get_running_loop().create_task(self._loop(state), name=f"scrape {spec.url}")
            added.append(state)
        return added, removed

    def _stale_batch(self, state: TargetState) -> Batch:
        ts = max(self.clock(), (state.last_scrape or 0.0) + 1e-3)
        target = Target(state.spec.name, state.spec.labels)
        return normalize(parse("# TYPE gpufleet_target_stale gauge\ngpufleet_target_stale 1\n"), target, ts)

    # -- scraping ------------------------------------------------------------------------------

    def _client(self, spec: TargetSpec) -> httpx.AsyncClient:
        client = self._clients.get(spec.key)
        if client is None:
            cfg = next(j for j in self.cfg.jobs if j.name == spec.job)
            try:
                tls = self._tls.get(spec.job)
                if tls is None:
                    tls = self._tls[spec.job] = job_tls_context(cfg)
                client = self._clients[spec.key] = client_for(cfg, transport=self.transport, max_connections=2,
                                                              verify=tls)
            except (ConfigError, OSError) as exc:
                raise ScrapeFailed(f"job {spec.job}: {exc}") from None
        return client

    def _close_client(self, key: tuple[str, str]) -> None:
        client = self._clients.pop(key, None)
        if client is not None:
            task = asyncio.get_running_loop().create_task(client.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def fetch(self, state: TargetState) -> str:
        """The target's body, within its timeout and the body-size limit."""
        limit = self.cfg.limits.body_bytes
        try:
            client = self._client(state.spec)
            async with asyncio.timeout(state.timeout):
                async with client.stream("GET", state.spec.url, timeout=state.timeout) as resp:
                    if resp.status_code != 200:
                        raise ScrapeFailed(f"HTTP {resp.status_code} from {state.spec.url}")
                    length = resp.headers.get("content-length")
                    if length is not None and length.isdigit() and int(length) > limit:
                        raise ScrapeFailed(f"body of {length} bytes exceeds the limit of {limit} bytes")
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise ScrapeFailed(f"body exceeds the limit of {limit} bytes")
                        chunks.append(chunk)
        except TimeoutError:
            raise ScrapeFailed(f"timed out after {state.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise ScrapeFailed(f"{type(exc).__name__}: {_reason(exc)}") from None
        except OSError as exc:  # httpx lets some TLS alerts through unwrapped
            raise ScrapeFailed(f"{type(exc).__name__}: {_reason(exc)}") from None
        try:
            return b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScrapeFailed(f"body is not UTF-8 (byte {exc.start})") from None

    def to_batch(self, state: TargetState, ts: float, text: str | None, duration: float, error: str) -> Batch:
        """Parse and normalise a scrape in full (or record its failure), with the synthetic samples.

        The engine tries :meth:`replayed_batch` first; this full path also records the body's plan
        (:mod:`gpufleet.collectors.repeat`) so that the target's next scrape can replay.
        """
        samples = 0
        batch: Batch | None = None
        if text is not None:
            state.plan = None
            result = parse(text)
            samples = sum(len(f.samples) for f in result.families.values())
            if samples > self.cfg.limits.samples:
                error = f"{samples} samples exceed the limit of {self.cfg.limits.samples}"
            else:
                trace = Trace()
                batch = normalize(result, Target(state.spec.name, state.spec.labels), ts,
                                  interval_hint_s=state.interval, limits=self._limits, trace=trace)
                state.plan = build_plan(text, result, batch, trace)
        return self._finish(state, ts, batch, samples, duration, error)

    def replayed_batch(self, state: TargetState, ts: float, text: str, duration: float) -> Batch | None:
        """The scrape's batch when its body replays from the target's plan, else None (nothing changed).

        Cheap (no parse): the engine calls it on the event loop and sends only the rest to the parse thread.
        """
        plan = state.plan
        if plan is None or plan.samples > self.cfg.limits.samples:
            return None
        batch = replay(plan, text, state.spec.name, ts, state.interval)
        if batch is None:
            return None
        state.replayed += 1
        self.stats.replayed += 1
        return self._finish(state, ts, batch, plan.samples, duration, "")

    def _finish(self, state: TargetState, ts: float, batch: Batch | None, samples: int, duration: float,
                error: str) -> Batch:
        """Add the synthetic samples to a scrape's batch (or make them its batch) and update the target's state."""
        target = Target(state.spec.name, state.spec.labels)
        up = batch is not None
        # a plan's series are the batch's own (replayed from it, or built from it just now)
        series = (frozenset() if batch is None else state.plan.series_set if state.plan is not None
                  else frozenset(batch.series))
        stale = (0 if series is state.series else len(state.series - series)) if up else 0
        rejected = len(batch.rejected) if batch is not None else 0
        synthetic = self._synthetic_batch(state, target, ts, _synthetic(up, duration, samples, rejected, stale))
        if batch is None:
            batch = synthetic
        else:
            batch.series.update(synthetic.series)
            if isinstance(batch, ReplayBatch):
                batch.add_gauges(synthetic.gauges)  # without making the replayed batch's rows
            else:
                batch.gauges.extend(synthetic.gauges)
            state.series = series
        state.up = up
        state.last_error = error if not up else ("; ".join(batch.rejected[:3]) if batch.rejected else "")
        state.last_samples = samples
        return batch

    def _synthetic_batch(self, state: TargetState, target: Target, ts: float, text: str) -> Batch:
        """The synthetic samples' batch; their lines repeat too, so they replay like any body."""
        plan = state.synthetic_plan
        batch: Batch | None = replay(plan, text, target.name, ts, state.interval) if plan is not None else None
        if batch is None:
            result = parse(text)
            trace = Trace()
            batch = normalize(result, target, ts, interval_hint_s=state.interval, trace=trace)
            state.synthetic_plan = build_plan(text, result, batch, trace)
        return batch

    async def scrape(self, state: TargetState) -> Batch:
        """One scrape of ``state`` now."""
        ts = self.clock()
        start = time.perf_counter()
        text: str | None = None
        error = ""
        try:
            text = await self.fetch(state)
        except ScrapeFailed as exc:
            error = str(exc)
        duration = time.perf_counter() - start
        replayed = None if text is None else self.replayed_batch(state, ts, text, duration)
        if replayed is not None:
            batch = replayed
        elif text is None:
            batch = self.to_batch(state, ts, text, duration, error)
        else:  # parsing is CPU work: off the event loop, so other targets' fetches keep their deadlines
            batch = await asyncio.get_running_loop().run_in_executor(self._cpu, self.to_batch, state, ts, text,
                                                                     duration, error)
        state.last_scrape = ts
        state.last_duration = duration
        state.scrapes += 1
        self.stats.scrapes += 1
        self.stats.samples += batch.sample_count
        if not state.up:
            state.failures += 1
            self.stats.failures += 1
            log.warning("%s: %s", state.spec.url, state.last_error)
        return batch

    async def _loop(self, state: TargetState) -> None:
        offset = (zlib.crc32(state.spec.url.encode()) % 10_000) / 10_000 * state.interval
        now = self.clock()
        due = now - (now % state.interval) + offset
        if due < now:
            due += state.interval
        while True:
            await asyncio.sleep(max(due - self.clock(), 0.0))
            lag = self.clock() - due
            self.stats.lags.append(lag)
            if len(self.stats.lags) > 100_000:
                del self.stats.lags[:50_000]
            try:
                batch = await self.scrape(state)
                # append after the await: a flush during it swaps the queue for a new list
                self._queue.append(batch)
            except Exception:  # a bug in one target's handling must not stop the others
                log.exception("scrape of %s failed unexpectedly", state.spec.url)
            due += state.interval
            behind = self.clock() - due
            if behind > 0:
                skipped = int(behind // state.interval) + 1
                state.missed += skipped
                self.stats.missed += skipped
                due += skipped * state.interval

    # -- writing -------------------------------------------------------------------------------

    async def flush(self) -> WriteReport:
        """Hand queued batches to the writer (in a thread: DuckDB releases the GIL while it works)."""
        if not self._queue:
            return WriteReport()
        batches, self._queue = self._queue, []
        report = await asyncio.get_running_loop().run_in_executor(None, self.writer.write, batches)
        self.stats.written.merge(report)
        for r in report.rejected[:5]:
            log.info("rejected: %s", r)
        return report

    # -- running -------------------------------------------------------------------------------

    def _settle_garbage(self) -> None:
        """Collect the young generations, then freeze what survived out of the collector's reach.

        Targets' plans, series and state are millions of long-lived objects; every full collection
        walked all of them (seconds at a thousand targets, and the scrapes waited). Scrape-to-flush
        objects die by reference counting; cycles among them are young and collected here first.
        This is process-wide: an engine sharing its process with other work passes
        ``gc_young_threshold=None`` and leaves the collector as it is.
        """
        if self.gc_young_threshold is None:
            return
        gc.collect(1)
        gc.freeze()

    def stop(self) -> None:
        """Ask :meth:`run` to finish (flushing what it has)."""
        self._stop.set()

    async def run(self, duration: float | None = None,
                  on_tick: Callable[[ScrapeEngine], None] | None = None) -> EngineStats:
        """Discover, scrape and flush until :meth:`stop` or ``duration`` seconds."""
        self._stop = asyncio.Event()
        # With the parse thread busy, the event loop waits up to the interpreter's switch interval
        # (5 ms) for the GIL at every socket event; a shorter one keeps hundreds of fetches moving.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, self.switch_interval_s))
        thresholds = gc.get_threshold()
        if self.gc_young_threshold is not None:  # None: the process is shared, leave its collector alone
            gc.set_threshold(max(thresholds[0], self.gc_young_threshold), *thresholds[1:])
        started = self.clock()
        next_discovery = 0.0
        try:
            while not self._stop.is_set():
                now = self.clock()
                if now >= next_discovery:
                    # file reads and the Kubernetes API call block: off the event loop
                    self.apply(await asyncio.get_running_loop().run_in_executor(None, self.discover))
                    next_discovery = now + self.file_refresh_s
                await self.flush()
                self._settle_garbage()
                if on_tick is not None:
                    on_tick(self)
                if duration is not None and self.clock() - started >= duration:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.cfg.flush_interval)
        finally:
            for state in self.targets.values():
                if state.task is not None:
                    state.task.cancel()
            await asyncio.gather(*(s.task for s in self.targets.values() if s.task is not None),
                                 return_exceptions=True)
            await self.flush()
            for client in self._clients.values():
                await client.aclose()
            self._clients.clear()
            await asyncio.gather(*self._closing, return_exceptions=True)
            sys.setswitchinterval(switch)
            if self.gc_young_threshold is not None:
                gc.unfreeze()
                gc.set_threshold(*thresholds)
        return self.stats
