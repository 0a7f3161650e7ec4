"""The production ``GpuBackend``: NVML through nvidia-ml-py (``pynvml``), values in base units.

``pynvml`` is imported when the backend is built, not when this module is, so the rest of the
exporter imports without it; ``nvml=`` takes any object with pynvml's functions and constants
(tests pass a fake one). Every NVML failure leaves as a typed
:class:`~gpufleet.exporters.errors.NvmlError`, so the sampler can count it by call and kind.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from gpufleet.exporters.backend import (
    DeviceIdentity,
    GpmMetrics,
    MemoryInfo,
    MigInstance,
    ProcessMemory,
    RemappedRows,
    XidEvent,
)
from gpufleet.exporters.errors import DriverNotLoaded, NotSupported, NvmlError, from_nvml

__all__ = ["NvmlBackend", "load_pynvml"]

T = TypeVar("T")

# NVML perf-policy ids (nvmlPerfPolicyType_t) for the violation counters, by our reason label.
_VIOLATION_POLICIES: tuple[tuple[str, int], ...] = (
    ("power", 0), ("thermal", 1), ("sync_boost", 2), ("board_limit", 3), ("low_utilization", 4), ("reliability", 5))
# NVML field ids used through nvmlDeviceGetFieldValues.
_FI_MEMORY_TEMP = 82
_FI_NVLINK_TX, _FI_NVLINK_RX = 138, 139  # KiB since boot
_FI_NVLINK_ERRORS: tuple[tuple[str, int], ...] = (("crc_flit", 38), ("crc_data", 45), ("replay", 52),
                                                  ("recovery", 59))
# GPM metric ids (nvmlGpmMetricId_t): GpmMetrics field -> (id, scale to base units).
_GPM_IDS: tuple[tuple[str, int, float], ...] = (
    ("sm_active", 2, 0.01), ("sm_occupancy", 3, 0.01), ("tensor_active", 5, 0.01), ("dram_active", 10, 0.01),
    ("fp64_active", 11, 0.01), ("fp32_active", 12, 0.01), ("fp16_active", 13, 0.01),
    ("graphics_active", 1, 0.01), ("pcie_tx", 20, 1024.0 * 1024.0), ("pcie_rx", 21, 1024.0 * 1024.0))
_XID_EVENT = 0x8  # nvmlEventTypeXidCriticalError
_ECC_TYPES = (("corrected", 0), ("uncorrected", 1))
_ECC_COUNTERS = (("volatile", 0), ("aggregate", 1))


def load_pynvml() -> Any:
    """Import nvidia-ml-py, or raise :class:`DriverNotLoaded` saying how to get it."""
    try:
        import pynvml
    except ImportError:
        raise DriverNotLoaded("the NVML backend needs nvidia-ml-py: pip install nvidia-ml-py") from None
    return pynvml


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class NvmlBackend:
    """``GpuBackend`` over NVML. Handles are looked up once per ``init`` and reused."""

    def __init__(self, nvml: Any = None) -> None:
        self._nvml = nvml
        self._handles: list[Any] = []
        self._event_set: Any = None
        self._uuid_by_handle: dict[int, str] = {}
        self._lock = threading.Lock()

    @property
    def nv(self) -> Any:
        if self._nvml is None:
            self._nvml = load_pynvml()
        return self._nvml

    def _do(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except NvmlError:
            raise
        except Exception as exc:  # noqa: BLE001 - pynvml.NVMLError and ctypes failures alike become typed
            raise from_nvml(exc) from None

    def _h(self, index: int) -> Any:
        if index < 0 or index >= len(self._handles):
            raise NotSupported(f"no GPU {index}")
        return self._handles[index]

    # -- life cycle --------------------------------------------------------------------------------

    def init(self) -> None:
        nv = self.nv
        self._do(nv.nvmlInit)
        count = self._do(nv.nvmlDeviceGetCount)
        handles = []
        for i in range(count):
            try:
                handles.append(self._do(nv.nvmlDeviceGetHandleByIndex, i))
            except NvmlError:
                handles.append(None)  # counted later as a lost GPU when it is read
        self._handles = handles
        self._uuid_by_handle = {}
        self._event_set = None

    def shutdown(self) -> None:
        nv = self.nv
        with self._lock:
            if self._event_set is not None:
                with contextlib.suppress(Exception):  # best effort while tearing down
                    nv.nvmlEventSetFree(self._event_set)
                self._event_set = None
        self._handles = []
        self._do(nv.nvmlShutdown)

    def driver_version(self) -> str:
        return _text(self._do(self.nv.nvmlSystemGetDriverVersion))

    def device_count(self) -> int:
        return int(self._do(self.nv.nvmlDeviceGetCount))

    def identity(self, index: int) -> DeviceIdentity:
        nv, h = self.nv, self._h(index)
        if h is None:
            raise from_nvml(_lost())
        uuid = _text(self._do(nv.nvmlDeviceGetUUID, h))
        name = _text(self._do(nv.nvmlDeviceGetName, h))
        pci = self._do(nv.nvmlDeviceGetPciInfo, h)
        bus_id = _text(getattr(pci, "busId", "") or getattr(pci, "busIdLegacy", ""))
        try:
            minor = int(self._do(nv.nvmlDeviceGetMinorNumber, h))
        except NvmlError:
            minor = index
        return DeviceIdentity(index, uuid, name, bus_id, minor)

    # -- fast fields -------------------------------------------------------------------------------

    def utilization(self, index: int) -> tuple[float, float]:
        u = self._do(self.nv.nvmlDeviceGetUtilizationRates, self._h(index))
        return u.gpu / 100.0, u.memory / 100.0

    def encoder_decoder(self, index: int) -> tuple[float, float]:
        h = self._h(index)
        enc = self._do(self.nv.nvmlDeviceGetEncoderUtilization, h)
        dec = self._do(self.nv.nvmlDeviceGetDecoderUtilization, h)
        return enc[0] / 100.0, dec[0] / 100.0

    def memory(self, index: int) -> MemoryInfo:
        nv, h = self.nv, self._h(index)
        try:
            m = self._do(nv.nvmlDeviceGetMemoryInfo, h, version=nv.nvmlMemory_v2)
            reserved = float(m.reserved)
        except NotSupported:
            m = self._do(nv.nvmlDeviceGetMemoryInfo, h)
            reserved = 0.0
        return MemoryInfo(float(m.total), float(m.free), float(m.used), reserved)

    def power(self, index: int) -> float:
        return float(self._do(self.nv.nvmlDeviceGetPowerUsage, self._h(index))) / 1000.0

    def energy(self, index: int) -> float:
        return float(self._do(self.nv.nvmlDeviceGetTotalEnergyConsumption, self._h(index))) / 1000.0

    def temperature(self, index: int) -> float:
        return float(self._do(self.nv.nvmlDeviceGetTemperature, self._h(index), 0))

    def _fields(self, index: int, ids: list[int]) -> list[float]:
        """Field values in order; a field NVML reports as failed raises its typed error."""
        values = self._do(self.nv.nvmlDeviceGetFieldValues, self._h(index), ids)
        out = []
        for v in values:
            ret = int(getattr(v, "nvmlReturn", 0))
            if ret != 0:
                raise from_nvml(_Coded(ret))
            out.append(_field_value(v))
        return out

    def memory_temperature(self, index: int) -> float:
        value = self._fields(index, [_FI_MEMORY_TEMP])[0]
        if value <= 0:
            raise NotSupported("no HBM temperature sensor")
        return value

    def clocks(self, index: int) -> tuple[float, float]:
        h = self._h(index)
        sm = self._do(self.nv.nvmlDeviceGetClockInfo, h, 1)  # NVML_CLOCK_SM
        mem = self._do(self.nv.nvmlDeviceGetClockInfo, h, 2)  # NVML_CLOCK_MEM
        return float(sm) * 1e6, float(mem) * 1e6

    def clock_events(self, index: int) -> int:
        nv, h = self.nv, self._h(index)
        fn = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or nv.nvmlDeviceGetCurrentClocksThrottleReasons
        return int(self._do(fn, h))

    # -- slow fields -------------------------------------------------------------------------------

    def violation(self, index: int) -> dict[str, float]:
        h = self._h(index)
        out: dict[str, float] = {}
        first: NvmlError | None = None
        for reason, policy in _VIOLATION_POLICIES:
            try:
                v = self._do(self.nv.nvmlDeviceGetViolationStatus, h, policy)
            except NvmlError as exc:
                if exc.kind == "gpu_is_lost":
                    raise
                first = first or exc
                continue
            out[reason] = float(v.violationTime) / 1e9
        if not out and first is not None:
            raise first
        return out

    def pcie_throughput(self, index: int) -> tuple[float, float]:
        h = self._h(index)
        tx = self._do(self.nv.nvmlDeviceGetPcieThroughput, h, 0)  # KB/s
        rx = self._do(self.nv.nvmlDeviceGetPcieThroughput, h, 1)
        return float(tx) * 1024.0, float(rx) * 1024.0

    def pcie_replays(self, index: int) -> float:
        return float(self._do(self.nv.nvmlDeviceGetPcieReplayCounter, self._h(index)))

    def nvlink(self, index: int) -> tuple[float, dict[str, float]]:
        ids = [_FI_NVLINK_TX, _FI_NVLINK_RX, *(fid for _, fid in _FI_NVLINK_ERRORS)]
        values = self._fields(index, ids)
        total = (values[0] + values[1]) * 1024.0
        return total, {kind: values[2 + k] for k, (kind, _) in enumerate(_FI_NVLINK_ERRORS)}

    def ecc(self, index: int) -> dict[tuple[str, str], float]:
        h = self._h(index)
        out: dict[tuple[str, str], float] = {}
        for etype, e in _ECC_TYPES:
            for counter, c in _ECC_COUNTERS:
                out[(etype, counter)] = float(self._do(self.nv.nvmlDeviceGetTotalEccErrors, h, e, c))
        return out

    def remapped_rows(self, index: int) -> RemappedRows:
        corr, unc, pending, failure = self._do(self.nv.nvmlDeviceGetRemappedRows, self._h(index))
        return RemappedRows(float(corr), float(unc), float(bool(pending)), float(bool(failure)))

    def processes(self, index: int) -> list[ProcessMemory]:
        procs = self._do(self.nv.nvmlDeviceGetComputeRunningProcesses, self._h(index))
        return [ProcessMemory(int(p.pid), float(p.usedGpuMemory or 0)) for p in procs]

    # -- GPM ---------------------------------------------------------------------------------------

    def gpm_support(self, index: int) -> bool:
        s = self._do(self.nv.nvmlGpmQueryDeviceSupport, self._h(index))
        return bool(getattr(s, "isSupportedDevice", s))

    def gpm_sample(self, index: int, gi_id: int | None = None) -> object:
        nv, h = self.nv, self._h(index)
        sample = self._do(nv.nvmlGpmSampleAlloc)
        try:
            if gi_id is None:
                self._do(nv.nvmlGpmSampleGet, h, sample)
            else:
                self._do(nv.nvmlGpmMigSampleGet, h, gi_id, sample)
        except NvmlError:
            self.gpm_release(sample)
            raise
        return sample

    def gpm_metrics(self, index: int, first: object, second: object) -> GpmMetrics:
        nv = self.nv
        req = nv.c_nvmlGpmMetricsGet_t()
        req.version = nv.NVML_GPM_METRICS_GET_VERSION
        req.numMetrics = len(_GPM_IDS)
        req.sample1 = first
        req.sample2 = second
        for k, (_, mid, _) in enumerate(_GPM_IDS):
            req.metrics[k].metricId = mid
        self._do(nv.nvmlGpmMetricsGet, req)
        values: dict[str, float] = {}
        for k, (name, _, scale) in enumerate(_GPM_IDS):
            m = req.metrics[k]
            values[name] = float(m.value) * scale if int(m.nvmlReturn) == 0 else float("nan")
        return GpmMetrics(**values)

    def gpm_release(self, sample: object) -> None:
        with contextlib.suppress(Exception):  # freeing never fails a pass
            self.nv.nvmlGpmSampleFree(sample)

    # -- MIG ---------------------------------------------------------------------------------------

    def mig_instances(self, index: int) -> list[MigInstance]:
        nv, h = self.nv, self._h(index)
        try:
            current, _pending = self._do(nv.nvmlDeviceGetMigMode, h)
        except NotSupported:
            return []
        if not current:
            return []
        out = []
        for k in range(int(self._do(nv.nvmlDeviceGetMaxMigDeviceCount, h))):
            try:
                mh = self._do(nv.nvmlDeviceGetMigDeviceHandleByIndex, h, k)
            except NvmlError as exc:
                if exc.kind in ("not_found", "invalid_argument"):
                    continue
                raise
            gi = int(self._do(nv.nvmlDeviceGetGpuInstanceId, mh))
            uuid = _text(self._do(nv.nvmlDeviceGetUUID, mh))
            mem = self._do(nv.nvmlDeviceGetMemoryInfo, mh)
            attrs = self._do(nv.nvmlDeviceGetAttributes, mh)
            profile = f"{attrs.gpuInstanceSliceCount}g.{round(attrs.memorySizeMB / 1024)}gb"
            out.append(MigInstance(gi, profile, uuid, float(mem.used), float(mem.total)))
        return out

    # -- XID events --------------------------------------------------------------------------------

    def _events(self) -> Any:
        nv = self.nv
        with self._lock:
            if self._event_set is None:
                es = self._do(nv.nvmlEventSetCreate)
                registered = 0
                for h in self._handles:
                    if h is None:
                        continue
                    try:
                        self._do(nv.nvmlDeviceRegisterEvents, h, _XID_EVENT, es)
                        registered += 1
                    except NotSupported:
                        continue
                    self._uuid_by_handle[_key(h)] = _text(self._do(nv.nvmlDeviceGetUUID, h))
                if not registered and self._handles:
                    nv.nvmlEventSetFree(es)
                    raise NotSupported("no GPU supports XID events")
                self._event_set = es
            return self._event_set

    def xid_wait(self, timeout_s: float) -> list[XidEvent]:
        nv = self.nv
        es = self._events()
        events: list[XidEvent] = []
        wait_ms = max(0, int(timeout_s * 1000))
        while True:
            try:
                data = self._do(nv.nvmlEventSetWait_v2, es, wait_ms)
            except NvmlError as exc:
                if exc.kind == "timeout":
                    return events
                raise
            if int(data.eventType) & _XID_EVENT:
                uuid = self._uuid_by_handle.get(_key(data.device))
                if uuid is None:
                    uuid = _text(self._do(nv.nvmlDeviceGetUUID, data.device))
                events.append(XidEvent(uuid, int(data.eventData)))
            wait_ms = 0  # drain what is queued, then return


class _Coded(Exception):
    """An NVML return code from a field value, translated by :func:`from_nvml`."""

    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


def _lost() -> _Coded:
    return _Coded(15)


def _key(handle: Any) -> int:
    """A hashable identity for an NVML device handle (a ctypes pointer or a test stand-in)."""
    try:
        import ctypes

        return int(ctypes.cast(handle, ctypes.c_void_p).value or 0)
    except Exception:  # noqa: BLE001
        return id(handle)


def _field_value(v: Any) -> float:
    """The number in an ``nvmlFieldValue_t`` by its value type."""
    attr = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}.get(
        int(getattr(v, "valueType", 3)), "ullVal")
    return float(getattr(v.value, attr))
