"""Background sampling: fast and slow loops refresh a per-GPU snapshot; an event loop counts XIDs.

Each field is one backend call, read on its own: a failure is counted under
``(field, error kind)`` and skipped. ``GpuIsLost`` marks the GPU down (its identity is kept);
when GPUs are lost or the driver disappears, NVML is re-initialised on a back-off until they return.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from gpufleet.exporters.backend import (
    CLOCK_EVENT_BITS,
    DeviceIdentity,
    GpuBackend,
    XidEvent,
)
from gpufleet.exporters.errors import NvmlError, from_nvml
from gpufleet.exporters.snapshot import GpuState, Series, Snapshot

__all__ = ["Sampler"]

_LOST_KINDS = {"gpu_is_lost", "driver_not_loaded", "uninitialized"}


class _Lost(Exception):
    """The GPU stopped answering during a pass."""


class _PassGate:
    """Sampling passes share it (the fast and slow loops run side by side); a re-initialisation has it alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._passes = 0
        self._reinit = False
        self._waiting = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._reinit or self._waiting:
                self._cond.wait()
            self._passes += 1
        try:
            yield
        finally:
            with self._cond:
                self._passes -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._reinit or self._passes:
                self._cond.wait()
            self._waiting -= 1
            self._reinit = True
        try:
            yield
        finally:
            with self._cond:
                self._reinit = False
                self._cond.notify_all()


class Sampler:
    """Owns the backend; ``sample_fast``/``sample_slow``/``poll_xids`` run one pass (threads call them)."""

    def __init__(self, backend: GpuBackend, *, fast_interval: float = 1.0, slow_interval: float = 5.0,
                 gpm_interval: float = 1.0, reinit_backoff: float = 10.0, xid_timeout: float = 1.0,
                 processes: bool = False, max_processes: int = 16,
                 on_xid: Callable[[XidEvent], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 wall: Callable[[], float] = time.time) -> None:
        if max_processes < 1:
            raise ValueError(f"max_processes must be at least 1, got {max_processes}")
        self.backend = backend
        self.processes = processes
        self.max_processes = max_processes
        self.on_xid = on_xid
        self.fast_interval = fast_interval
        self.slow_interval = slow_interval
        self.gpm_interval = gpm_interval
        self.reinit_backoff = reinit_backoff
        self.xid_timeout = xid_timeout
        self.clock = clock
        self.sleep = sleep
        self.wall = wall
        self.gpus: list[GpuState] = []
        self.errors: dict[tuple[str, str], float] = {}
        self.xids: dict[str, dict[int, float]] = {}
        self.last_xid: dict[str, float] = {}
        self.xid_seen: dict[str, dict[int, float]] = {}
        self.clock_events: dict[str, dict[str, float]] = {}
        self.reinits = 0
        self.driver_version = ""
        self.durations: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self._known: dict[str, DeviceIdentity] = {}
        self._healthy = False
        self._last_reinit = -1e18
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        # Shared by passes while they read, held alone by a re-initialisation, so that NVML is never shut down
        # under a pass of the other loop (which would see "uninitialized" and mark healthy GPUs lost).
        self._gate = _PassGate()

    # -- bookkeeping -----------------------------------------------------------------------------

    def count_error(self, field: str, exc: BaseException) -> NvmlError:
        err = from_nvml(exc)
        with self._lock:
            key = (field, err.kind)
            self.errors[key] = self.errors.get(key, 0.0) + 1
        return err

    def _call(self, field: str, fn: Callable[[], object]) -> object:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - every device failure is counted, none escapes
            raise self.count_error(field, exc) from None

    # -- discovery and recovery ------------------------------------------------------------------

    def start_backend(self) -> bool:
        """Initialise the backend and enumerate GPUs; False (counted) if the driver is not there."""
        try:
            self.backend.init()
        except Exception as exc:  # noqa: BLE001
            self.count_error("init", exc)
            self._healthy = False
            return False
        try:
            count = int(self._call("device_count", self.backend.device_count))  # type: ignore[call-overload]
        except NvmlError:
            self._healthy = False
            return False
        try:
            self.driver_version = str(self.backend.driver_version())
        except Exception as exc:  # noqa: BLE001
            self.count_error("driver_version", exc)
        states: list[GpuState] = []
        previous = {s.identity.gpu_index: s for s in self.gpus}
        for i in range(count):
            try:
                try:
                    ident = self.backend.identity(i)
                except Exception as exc:  # noqa: BLE001
                    raise self.count_error("identity", exc) from None
                self._known[ident.uuid] = ident
                old = previous.get(i)
                if old is not None and old.identity.uuid != ident.uuid:
                    old = None  # another GPU took this index: nothing of the old readings applies
                states.append(GpuState(ident, True, old.fast if old and old.up else (), old.slow if old and old.up
                                       else (), old.migs if old else ()))
            except NvmlError:
                old = previous.get(i)
                ident = old.identity if old else DeviceIdentity(i, "", "", "", i)
                states.append(GpuState(ident, False))
        # GPUs that vanished (NVML renumbers the rest) stay listed as down with their identity.
        present = {st.identity.uuid for st in states}
        for old in previous.values():
            if old.identity.uuid and old.identity.uuid not in present:
                states.append(GpuState(old.identity, False))
                present.add(old.identity.uuid)
        self.gpus = states
        self._healthy = True
        return True

    def maybe_reinit(self) -> None:
        """Re-initialise NVML (on a back-off) while a GPU is lost or the driver is gone."""
        if self._healthy and all(g.up for g in self.gpus):
            return
        now = self.clock()
        if now - self._last_reinit < self.reinit_backoff:
            return
        self._last_reinit = now
        with self._gate.exclusive():
            try:
                self.backend.shutdown()
            except Exception as exc:  # noqa: BLE001
                self.count_error("shutdown", exc)
            self.reinits += 1
            self.start_backend()

    def _mark_lost(self, state: GpuState) -> None:
        state.up = False
        state.fast = ()
        state.slow = ()
        state.migs = ()

    # -- passes ----------------------------------------------------------------------------------

    def sample_fast(self) -> None:
        """One pass over the cheap fields of every GPU."""
        t0 = time.perf_counter()
        # Recovery first, so a GPU found lost in this pass stays ``up 0`` until the next one.
        self.maybe_reinit()
        with self._gate.shared():
            b = self.backend
            for state in list(self.gpus):
                if not state.up:
                    continue
                i = state.identity.gpu_index
                uuid = state.identity.uuid
                out: list[Series] = []
                try:
                    for field, read in _FAST:
                        try:
                            read(b, i, out)
                        except Exception as exc:  # noqa: BLE001
                            if self.count_error(field, exc).kind in _LOST_KINDS:
                                raise _Lost() from None
                            continue
                        if field == "clock_events":
                            self._count_clock_events(uuid, out)
                except _Lost:
                    self._mark_lost(state)
                    continue
                state.fast = tuple(out)
        self.durations["fast"] = time.perf_counter() - t0
        self.finished["fast"] = self.clock()

    def _count_clock_events(self, uuid: str, out: list[Series]) -> None:
        counts = self.clock_events.setdefault(uuid, {name: 0.0 for _, name in CLOCK_EVENT_BITS})
        for s in out:
            if s.name == "gpufleet_gpu_clock_event_active" and s.value:
                reason = s.labels[0][1]
                counts[reason] = counts.get(reason, 0.0) + 1

    def sample_slow(self) -> None:
        """One pass over the blocking and slow fields, GPM included (two samples ``gpm_interval`` apart)."""
        t0 = time.perf_counter()
        b = self.backend
        results: dict[int, list[Series]] = {}
        gpm_first: dict[tuple[int, int | None], object] = {}
        with self._gate.shared():
            for state in list(self.gpus):
                if not state.up:
                    continue
                i = state.identity.gpu_index
                out: list[Series] = []
                try:
                    for field, read in _SLOW:
                        if field == "processes":
                            if not self.processes:
                                continue
                            read = _bounded_processes(self.max_processes)
                        try:
                            read(b, i, out)
                        except Exception as exc:  # noqa: BLE001
                            if self.count_error(field, exc).kind in _LOST_KINDS:
                                raise _Lost() from None
                    try:
                        migs = b.mig_instances(i)
                        state.migs = tuple(migs)
                        for m in migs:
                            ml = (("mig_instance", str(m.gi_id)), ("mig_profile", m.profile))
                            out.append(Series("gpufleet_gpu_memory_used_bytes", ml, m.memory_used))
                            out.append(Series("gpufleet_gpu_memory_free_bytes", ml, m.memory_total - m.memory_used))
                    except Exception as exc:  # noqa: BLE001
                        err = self.count_error("mig_instances", exc)
                        if err.kind in _LOST_KINDS:
                            raise _Lost() from None
                    supported: bool | None = False
                    try:
                        supported = bool(b.gpm_support(i))
                    except Exception as exc:  # noqa: BLE001
                        err = self.count_error("gpm_support", exc)
                        if err.kind in _LOST_KINDS:
                            raise _Lost() from None
                        # "not supported" is an answer (0); any other failure leaves it unknown.
                        supported = False if err.kind == "not_supported" else None
                    if supported is not None:
                        out.append(Series("gpufleet_gpu_gpm_supported", (), 1.0 if supported else 0.0))
                    if supported:
                        for gi in [None, *(m.gi_id for m in state.migs)]:
                            try:
                                gpm_first[(i, gi)] = b.gpm_sample(i, gi)
                            except Exception as exc:  # noqa: BLE001
                                self.count_error("gpm_sample", exc)
                except _Lost:
                    self._mark_lost(state)
                    continue
                results[i] = out
        generation = self.reinits
        if gpm_first:
            self.sleep(self.gpm_interval)
        with self._gate.shared():
            if self.reinits != generation:  # NVML was re-initialised meanwhile: the first samples are void
                for first in gpm_first.values():
                    b.gpm_release(first)
                gpm_first = {}
            for (i, gi), first in gpm_first.items():
                try:
                    second = b.gpm_sample(i, gi)
                except Exception as exc:  # noqa: BLE001
                    self.count_error("gpm_sample", exc)
                    b.gpm_release(first)
                    continue
                try:
                    g = b.gpm_metrics(i, first, second)
                except Exception as exc:  # noqa: BLE001
                    self.count_error("gpm_sample", exc)
                else:
                    mig = next((s.migs for s in self.gpus if s.identity.gpu_index == i), ())
                    labels: tuple[tuple[str, str], ...] = ()
                    if gi is not None:
                        prof = next((m.profile for m in mig if m.gi_id == gi), "")
                        labels = (("mig_instance", str(gi)), ("mig_profile", prof))
                    out = results.setdefault(i, [])
                    out.extend(Series(name, labels, value) for name, value in (
                        ("gpufleet_gpu_sm_active_ratio", g.sm_active),
                        ("gpufleet_gpu_sm_occupancy_ratio", g.sm_occupancy),
                        ("gpufleet_gpu_tensor_active_ratio", g.tensor_active),
                        ("gpufleet_gpu_dram_active_ratio", g.dram_active),
                        ("gpufleet_gpu_fp64_active_ratio", g.fp64_active),
                        ("gpufleet_gpu_fp32_active_ratio", g.fp32_active),
                        ("gpufleet_gpu_fp16_active_ratio", g.fp16_active),
                        ("gpufleet_gpu_graphics_engine_active_ratio", g.graphics_active)))
                finally:
                    b.gpm_release(first)
                    b.gpm_release(second)
        for state in self.gpus:
            if state.up and state.identity.gpu_index in results:
                state.slow = tuple(results[state.identity.gpu_index])
        self.durations["slow"] = time.perf_counter() - t0
        self.finished["slow"] = self.clock()

    def poll_xids(self) -> int:
        """Wait up to ``xid_timeout`` for XID events and count them; returns how many arrived."""
        if not self._healthy:  # nothing to listen to until NVML is back
            self.sleep(self.xid_timeout)
            return 0
        try:
            events = self.backend.xid_wait(self.xid_timeout)
        except Exception as exc:  # noqa: BLE001
            self.count_error("xid_wait", exc)
            self.sleep(self.xid_timeout)
            return 0
        now = self.wall()
        with self._lock:
            for ev in events:
                per = self.xids.setdefault(ev.uuid, {})
                per[ev.xid] = per.get(ev.xid, 0.0) + 1
                self.last_xid[ev.uuid] = float(ev.xid)
                self.xid_seen.setdefault(ev.uuid, {})[ev.xid] = now
        if self.on_xid is not None:
            for ev in events:
                try:
                    self.on_xid(ev)
                except Exception as exc:  # noqa: BLE001 - a failing event sink never stops counting
                    self.count_error("xid_sink", exc)
        return len(events)

    def health(self, max_age: float | None = None) -> tuple[bool, dict[str, object]]:
        """Whether NVML is usable (and answers for at least one GPU) and the fast loop finished recently."""
        limit = max_age if max_age is not None else 3 * self.fast_interval + 5.0
        now = self.clock()
        age = now - self.finished["fast"] if "fast" in self.finished else None
        up = sum(1 for g in self.gpus if g.up)
        ok = self._healthy and age is not None and age <= limit and (up > 0 or not self.gpus)
        return ok, {"nvml": "usable" if self._healthy else "unavailable", "gpus": len(self.gpus), "gpus_up": up,
                    "last_sample_age_seconds": None if age is None else round(age, 3),
                    "max_sample_age_seconds": limit, "reinits": self.reinits,
                    "driver_version": self.driver_version}

    # -- the snapshot ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current view (cheap: shares the immutable per-GPU tuples)."""
        now = self.clock()
        with self._lock:
            errors = dict(self.errors)
            xids = {u: dict(v) for u, v in self.xids.items()}
            seen = {u: dict(v) for u, v in self.xid_seen.items()}
            last = dict(self.last_xid)
        gpus = [GpuState(s.identity, s.up, s.fast, s.slow, s.migs) for s in self.gpus]
        return Snapshot(gpus, xids, last, seen, {u: dict(v) for u, v in self.clock_events.items()},
                        errors, float(self.reinits), dict(self.durations),
                        {k: now - v for k, v in self.finished.items()}, self.driver_version)

    # -- threads ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Initialise the backend, take a first pass, and start the loops."""
        self.start_backend()
        self.sample_fast()
        self._stop.clear()
        for name, fn, every in (("fast", self.sample_fast, self.fast_interval),
                                ("slow", self.sample_slow, self.slow_interval)):
            t = threading.Thread(target=self._loop, args=(fn, every), name=f"gpufleet-sampler-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._xid_loop, name="gpufleet-xid", daemon=True)
        t.start()
        self._threads.append(t)

    def _loop(self, fn: Callable[[], None], every: float) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - a loop never dies
                self.count_error("sampler", exc)
            self._stop.wait(max(0.0, every - (time.monotonic() - started)))

    def _xid_loop(self) -> None:
        while not self._stop.is_set():
            self.poll_xids()

    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loops and shut the backend down."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads = []
        try:
            self.backend.shutdown()
        except Exception as exc:  # noqa: BLE001
            self.count_error("shutdown", exc)


# -- field readers: (call name, function appending native series) --------------------------------

Out = list[Series]
_NO: tuple[tuple[str, str], ...] = ()


def _util(b: GpuBackend, i: int, out: Out) -> None:
    g, m = b.utilization(i)
    out.append(Series("gpufleet_gpu_utilization_ratio", _NO, g))
    out.append(Series("gpufleet_gpu_memory_copy_utilization_ratio", _NO, m))


def _encdec(b: GpuBackend, i: int, out: Out) -> None:
    e, d = b.encoder_decoder(i)
    out.append(Series("gpufleet_gpu_encoder_utilization_ratio", _NO, e))
    out.append(Series("gpufleet_gpu_decoder_utilization_ratio", _NO, d))


def _memory(b: GpuBackend, i: int, out: Out) -> None:
    m = b.memory(i)
    out.append(Series("gpufleet_gpu_memory_used_bytes", _NO, m.used))
    out.append(Series("gpufleet_gpu_memory_free_bytes", _NO, m.free))
    out.append(Series("gpufleet_gpu_memory_reserved_bytes", _NO, m.reserved))
    out.append(Series("gpufleet_gpu_memory_total_bytes", _NO, m.total))


def _one(call: str, name: str) -> Callable[[GpuBackend, int, Out], None]:
    def read(b: GpuBackend, i: int, out: Out) -> None:
        out.append(Series(name, _NO, float(getattr(b, call)(i))))
    return read


def _clocks(b: GpuBackend, i: int, out: Out) -> None:
    sm, mem = b.clocks(i)
    out.append(Series("gpufleet_gpu_sm_clock_hertz", _NO, sm))
    out.append(Series("gpufleet_gpu_memory_clock_hertz", _NO, mem))


def _clock_events(b: GpuBackend, i: int, out: Out) -> None:
    mask = b.clock_events(i)
    for bit, name in CLOCK_EVENT_BITS:
        out.append(Series("gpufleet_gpu_clock_event_active", (("clock_event", name),), 1.0 if mask & bit else 0.0))


def _violation(b: GpuBackend, i: int, out: Out) -> None:
    for reason, secs in sorted(b.violation(i).items()):
        out.append(Series("gpufleet_gpu_clock_violation_seconds_total", (("reason", reason),), secs))


def _pcie(b: GpuBackend, i: int, out: Out) -> None:
    tx, rx = b.pcie_throughput(i)
    out.append(Series("gpufleet_gpu_pcie_transmit_bytes_per_second", _NO, tx))
    out.append(Series("gpufleet_gpu_pcie_receive_bytes_per_second", _NO, rx))


def _nvlink(b: GpuBackend, i: int, out: Out) -> None:
    total, errors = b.nvlink(i)
    out.append(Series("gpufleet_gpu_nvlink_bytes_total", _NO, total))
    for kind, n in sorted(errors.items()):
        out.append(Series("gpufleet_gpu_nvlink_errors_total", (("error", kind),), n))


def _ecc(b: GpuBackend, i: int, out: Out) -> None:
    for (etype, counter), n in sorted(b.ecc(i).items()):
        out.append(Series("gpufleet_gpu_ecc_errors_total", (("counter", counter), ("type", etype)), n))


def _remap(b: GpuBackend, i: int, out: Out) -> None:
    r = b.remapped_rows(i)
    out.append(Series("gpufleet_gpu_remapped_rows_correctable_total", _NO, r.correctable))
    out.append(Series("gpufleet_gpu_remapped_rows_uncorrectable_total", _NO, r.uncorrectable))
    out.append(Series("gpufleet_gpu_row_remap_pending", _NO, r.pending))
    out.append(Series("gpufleet_gpu_row_remap_failure", _NO, r.failure))


def _processes(b: GpuBackend, i: int, out: Out) -> None:
    for p in b.processes(i):
        out.append(Series("gpufleet_gpu_process_memory_used_bytes", (("pid", str(p.pid)),), p.used_bytes))


def _bounded_processes(limit: int) -> Callable[[GpuBackend, int, Out], None]:
    """Per-process memory for the ``limit`` largest holders; the rest summed under ``pid="other"``."""
    def read(b: GpuBackend, i: int, out: Out) -> None:
        procs = sorted(b.processes(i), key=lambda p: (-p.used_bytes, p.pid))
        for p in procs[:limit]:
            out.append(Series("gpufleet_gpu_process_memory_used_bytes", (("pid", str(p.pid)),), p.used_bytes))
        if len(procs) > limit:
            rest = sum(p.used_bytes for p in procs[limit:])
            out.append(Series("gpufleet_gpu_process_memory_used_bytes", (("pid", "other"),), rest))
    return read


_FAST: tuple[tuple[str, Callable[[GpuBackend, int, Out], None]], ...] = (
    ("utilization", _util),
    ("encoder_decoder", _encdec),
    ("memory", _memory),
    ("power", _one("power", "gpufleet_gpu_power_watts")),
    ("temperature", _one("temperature", "gpufleet_gpu_temperature_celsius")),
    ("memory_temperature", _one("memory_temperature", "gpufleet_gpu_memory_temperature_celsius")),
    ("clocks", _clocks),
    ("clock_events", _clock_events),
)
# Energy is a counter and its NVML call took 2.8 ms (p99 16 ms) on an H100 where the other fast reads take
# 2-12 us (benchmarks/exporter_nvml_calls.py), so it is read with the slow fields.
_SLOW: tuple[tuple[str, Callable[[GpuBackend, int, Out], None]], ...] = (
    ("energy", _one("energy", "gpufleet_gpu_energy_joules_total")),
    ("violation", _violation),
    ("pcie_throughput", _pcie),
    ("pcie_replays", _one("pcie_replays", "gpufleet_gpu_pcie_replays_total")),
    ("nvlink", _nvlink),
    ("ecc", _ecc),
    ("remapped_rows", _remap),
    ("processes", _processes),
)
