"""The NVML backend against a stand-in for pynvml: units, error mapping, GPM, MIG, XID events, and recovery."""

from __future__ import annotations

import ctypes
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from gpufleet.exporters.backend import DeviceIdentity, MigInstance, ProcessMemory, RemappedRows, XidEvent
from gpufleet.exporters.collector import GpuCollector
from gpufleet.exporters.errors import DriverNotLoaded, GpuIsLost, NotSupported, Timeout, Unknown
from gpufleet.exporters.nvml import NvmlBackend
from gpufleet.exporters.sampler import Sampler


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


class FakeNvml:
    """Just enough of pynvml's surface, with one H100-like GPU (handle "h0") and an optional MIG GPU ("h1")."""

    nvmlMemory_v2 = 0x02000028
    NVML_GPM_METRICS_GET_VERSION = 1
    c_nvmlGpmMetricsGet_t = pynvml.c_nvmlGpmMetricsGet_t

    def __init__(self, gpus: int = 1, mig: bool = False) -> None:
        self.gpus = gpus
        self.mig = mig
        self.inited = 0
        self.fail: dict[str, int] = {}  # function name -> NVML return code
        self.lost: set[str] = set()
        self.events: list[SimpleNamespace] = []
        self.freed: list[object] = []
        self.no_v2 = False

    def _f(self, name: str, handle: object = None) -> None:
        if name in self.fail:
            raise NVMLError(self.fail[name])
        if handle is not None and handle in self.lost:
            raise NVMLError(15)

    def nvmlInit(self) -> None:
        self._f("nvmlInit")
        self.inited += 1

    def nvmlShutdown(self) -> None:
        self._f("nvmlShutdown")

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.159.04"

    def nvmlDeviceGetCount(self) -> int:
        self._f("nvmlDeviceGetCount")
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"h{i}"

    def nvmlDeviceGetUUID(self, h: str) -> bytes:
        self._f("nvmlDeviceGetUUID", h)
        return f"GPU-{h}".encode() if h.startswith("h") else f"MIG-{h}".encode()

    def nvmlDeviceGetName(self, h: str) -> str:
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetPciInfo(self, h: str) -> SimpleNamespace:
        return SimpleNamespace(busId=b"00000000:00:06.0")

    def nvmlDeviceGetMinorNumber(self, h: str) -> int:
        return 3

    def nvmlDeviceGetUtilizationRates(self, h: str) -> SimpleNamespace:
        self._f("nvmlDeviceGetUtilizationRates", h)
        return SimpleNamespace(gpu=87, memory=41)

    def nvmlDeviceGetEncoderUtilization(self, h: str) -> tuple[int, int]:
        return 5, 167000

    def nvmlDeviceGetDecoderUtilization(self, h: str) -> tuple[int, int]:
        return 10, 167000

    def nvmlDeviceGetMemoryInfo(self, h: str, version: int | None = None) -> SimpleNamespace:
        self._f("nvmlDeviceGetMemoryInfo", h)
        if h.startswith("m"):
            return SimpleNamespace(total=10 * 2**30, used=2**30, free=9 * 2**30)
        if version is not None:
            if self.no_v2:
                raise NVMLError(3)
            return SimpleNamespace(total=80 * 2**30, used=20 * 2**30, free=59 * 2**30, reserved=2**30)
        return SimpleNamespace(total=80 * 2**30, used=21 * 2**30, free=59 * 2**30)

    def nvmlDeviceGetPowerUsage(self, h: str) -> int:
        self._f("nvmlDeviceGetPowerUsage", h)
        return 412_345  # mW

    def nvmlDeviceGetTotalEnergyConsumption(self, h: str) -> int:
        return 9_876_543  # mJ

    def nvmlDeviceGetTemperature(self, h: str, sensor: int) -> int:
        assert sensor == 0
        return 63

    def nvmlDeviceGetFieldValues(self, h: str, ids: list[int]) -> list[Any]:
        self._f("nvmlDeviceGetFieldValues", h)
        table = {82: (1, 71), 138: (3, 1000), 139: (3, 500), 38: (3, 2), 45: (3, 1), 52: (3, 0), 59: (3, 4)}
        out = []
        for fid in ids:
            vtype, value = table[fid]
            v = pynvml.c_nvmlFieldValue_t()
            v.fieldId, v.valueType, v.nvmlReturn = fid, vtype, 0
            if vtype == 1:
                v.value.uiVal = value
            else:
                v.value.ullVal = value
            out.append(v)
        return out

    def nvmlDeviceGetClockInfo(self, h: str, kind: int) -> int:
        return {1: 1980, 2: 2619}[kind]

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: str) -> int:
        return 0x4 | 0x20

    def nvmlDeviceGetViolationStatus(self, h: str, policy: int) -> SimpleNamespace:
        if policy in (4, 5):
            raise NVMLError(3)
        return SimpleNamespace(referenceTime=0, violationTime=(policy + 1) * 1_500_000_000)

    def nvmlDeviceGetPcieThroughput(self, h: str, counter: int) -> int:
        return {0: 2000, 1: 3000}[counter]  # KB/s

    def nvmlDeviceGetPcieReplayCounter(self, h: str) -> int:
        return 7

    def nvmlDeviceGetTotalEccErrors(self, h: str, etype: int, counter: int) -> int:
        return 10 * etype + counter + 1

    def nvmlDeviceGetRemappedRows(self, h: str) -> tuple[int, int, int, int]:
        return 3, 1, 1, 0

    def nvmlDeviceGetComputeRunningProcesses(self, h: str) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=101, usedGpuMemory=2**30), SimpleNamespace(pid=102, usedGpuMemory=None)]

    def nvmlGpmQueryDeviceSupport(self, h: str) -> SimpleNamespace:
        self._f("nvmlGpmQueryDeviceSupport", h)
        return SimpleNamespace(isSupportedDevice=1)

    def nvmlGpmSampleAlloc(self) -> Any:
        return pynvml.c_nvmlGpmSample_t()

    def nvmlGpmSampleGet(self, h: str, sample: object) -> object:
        self._f("nvmlGpmSampleGet", h)
        return sample

    def nvmlGpmMigSampleGet(self, h: str, gi: int, sample: object) -> object:
        self._f("nvmlGpmMigSampleGet", h)
        return sample

    def nvmlGpmSampleFree(self, sample: object) -> None:
        self.freed.append(sample)

    def nvmlGpmMetricsGet(self, req: Any) -> Any:
        self._f("nvmlGpmMetricsGet")
        for k in range(req.numMetrics):
            m = req.metrics[k]
            if m.metricId == 11:  # FP64: not reported on this part
                m.nvmlReturn = 3
                continue
            m.nvmlReturn = 0
            m.value = {2: 95.0, 3: 14.0, 5: 92.5, 10: 25.0, 12: 3.0, 13: 1.0, 1: 99.0, 20: 100.0, 21: 50.0}[m.metricId]
        return req

    def nvmlDeviceGetMigMode(self, h: str) -> tuple[int, int]:
        if not self.mig:
            raise NVMLError(3)
        return 1, 1

    def nvmlDeviceGetMaxMigDeviceCount(self, h: str) -> int:
        return 3

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: str, k: int) -> str:
        if k == 2:
            raise NVMLError(6)  # an empty slot
        return f"m{k}"

    def nvmlDeviceGetGpuInstanceId(self, mh: str) -> int:
        return {"m0": 1, "m1": 5}[mh]

    def nvmlDeviceGetAttributes(self, mh: str) -> SimpleNamespace:
        return SimpleNamespace(gpuInstanceSliceCount={"m0": 3, "m1": 1}[mh],
                               memorySizeMB={"m0": 40192, "m1": 9984}[mh])

    def nvmlEventSetCreate(self) -> str:
        return "es"

    def nvmlDeviceRegisterEvents(self, h: str, types: int, es: str) -> None:
        assert types == 0x8

    def nvmlEventSetFree(self, es: str) -> None:
        self.freed.append(es)

    def nvmlEventSetWait_v2(self, es: str, ms: int) -> SimpleNamespace:
        if self.events:
            return self.events.pop(0)
        raise NVMLError(10)  # timeout


@pytest.fixture
def nv() -> FakeNvml:
    return FakeNvml()


@pytest.fixture
def backend(nv: FakeNvml) -> NvmlBackend:
    b = NvmlBackend(nvml=nv)
    b.init()
    return b


def test_identity_and_fast_fields_in_base_units(backend: NvmlBackend) -> None:
    assert backend.driver_version() == "580.159.04" and backend.device_count() == 1
    assert backend.identity(0) == DeviceIdentity(0, "GPU-h0", "NVIDIA H100 80GB HBM3", "00000000:00:06.0", 3)
    assert backend.utilization(0) == (0.87, 0.41)
    assert backend.encoder_decoder(0) == (0.05, 0.10)
    m = backend.memory(0)
    assert (m.total, m.used, m.free, m.reserved) == (80 * 2**30, 20 * 2**30, 59 * 2**30, 2**30)
    assert backend.power(0) == pytest.approx(412.345)
    assert backend.energy(0) == pytest.approx(9876.543)
    assert backend.temperature(0) == 63.0
    assert backend.memory_temperature(0) == 71.0
    assert backend.clocks(0) == (1980e6, 2619e6)
    assert backend.clock_events(0) == 0x24


def test_memory_without_v2_has_no_reserved(nv: FakeNvml, backend: NvmlBackend) -> None:
    nv.no_v2 = True
    assert backend.memory(0).reserved == 0.0 and backend.memory(0).used == 21 * 2**30


def test_slow_fields_in_base_units(backend: NvmlBackend) -> None:
    # Reasons the GPU does not report are left out; the others are seconds.
    assert backend.violation(0) == {"power": 1.5, "thermal": 3.0, "sync_boost": 4.5, "board_limit": 6.0}
    assert backend.pcie_throughput(0) == (2000 * 1024.0, 3000 * 1024.0)
    assert backend.pcie_replays(0) == 7.0
    total, errs = backend.nvlink(0)
    assert total == 1500 * 1024.0 and errs == {"crc_flit": 2.0, "crc_data": 1.0, "replay": 0.0, "recovery": 4.0}
    assert backend.ecc(0) == {("corrected", "volatile"): 1.0, ("corrected", "aggregate"): 2.0,
                              ("uncorrected", "volatile"): 11.0, ("uncorrected", "aggregate"): 12.0}
    assert backend.remapped_rows(0) == RemappedRows(3.0, 1.0, 1.0, 0.0)
    assert backend.processes(0) == [ProcessMemory(101, float(2**30)), ProcessMemory(102, 0.0)]


def test_gpm_two_samples_give_ratios_and_rates(nv: FakeNvml, backend: NvmlBackend) -> None:
    assert backend.gpm_support(0) is True
    a, b = backend.gpm_sample(0), backend.gpm_sample(0)
    g = backend.gpm_metrics(0, a, b)
    assert (g.sm_active, g.sm_occupancy, g.tensor_active, g.dram_active) == pytest.approx((0.95, 0.14, 0.925, 0.25))
    assert g.fp64_active != g.fp64_active  # NaN: the metric failed on its own
    assert g.pcie_tx == 100 * 2**20 and g.pcie_rx == 50 * 2**20
    backend.gpm_release(a)
    assert nv.freed == [a]
    # A failed sample is freed, not leaked, and the error is typed.
    nv.fail["nvmlGpmMigSampleGet"] = 3
    with pytest.raises(NotSupported):
        backend.gpm_sample(0, gi_id=1)
    assert len(nv.freed) == 2


def test_mig_instances_with_profiles() -> None:
    nv = FakeNvml(mig=True)
    b = NvmlBackend(nvml=nv)
    b.init()
    assert b.mig_instances(0) == [MigInstance(1, "3g.39gb", "MIG-m0", float(2**30), 10.0 * 2**30),
                                  MigInstance(5, "1g.10gb", "MIG-m1", float(2**30), 10.0 * 2**30)]
    plain = NvmlBackend(nvml=FakeNvml(mig=False))
    plain.init()
    assert plain.mig_instances(0) == []


def test_xid_events_are_drained_and_mapped_to_uuids(nv: FakeNvml, backend: NvmlBackend) -> None:
    assert backend.xid_wait(0.01) == []
    nv.events = [SimpleNamespace(device="h0", eventType=0x8, eventData=79),
                 SimpleNamespace(device="h0", eventType=0x8, eventData=48),
                 SimpleNamespace(device="h0", eventType=0x1, eventData=0)]
    assert backend.xid_wait(0.01) == [XidEvent("GPU-h0", 79), XidEvent("GPU-h0", 48)]
    backend.shutdown()
    assert "es" in nv.freed


@pytest.mark.parametrize(("code", "error"), [(15, GpuIsLost), (9, DriverNotLoaded), (12, DriverNotLoaded),
                                             (3, NotSupported), (10, Timeout), (999, Unknown), (17, Unknown)])
def test_nvml_errors_become_typed_errors(nv: FakeNvml, backend: NvmlBackend, code: int,
                                         error: type[Exception]) -> None:
    nv.fail["nvmlDeviceGetPowerUsage"] = code
    with pytest.raises(error):
        backend.power(0)


def test_real_pynvml_errors_are_typed_too() -> None:
    class Real:
        def nvmlInit(self) -> None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    with pytest.raises(DriverNotLoaded):
        NvmlBackend(nvml=Real()).init()


def test_field_value_failure_is_typed(nv: FakeNvml, backend: NvmlBackend) -> None:
    def failing(h: str, ids: list[int]) -> list[Any]:
        v = pynvml.c_nvmlFieldValue_t()
        v.nvmlReturn = 3
        return [v]

    nv.nvmlDeviceGetFieldValues = failing  # type: ignore[method-assign]
    with pytest.raises(NotSupported):
        backend.memory_temperature(0)


def test_sampler_over_nvml_loses_and_recovers_a_gpu(nv: FakeNvml) -> None:
    t = [0.0]
    sampler = Sampler(NvmlBackend(nvml=nv), gpm_interval=0.0, reinit_backoff=5.0, clock=lambda: t[0],
                      sleep=lambda s: None)
    sampler.start_backend()
    sampler.sample_fast()
    sampler.sample_slow()
    text = GpuCollector(sampler.snapshot, hostname="n").render_text().decode()
    assert 'gpufleet_gpu_power_watts{gpu="0",gpu_uuid="GPU-h0"' in text
    assert "gpufleet_gpu_sm_active_ratio{" in text and "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{" in text
    nv.lost.add("h0")
    sampler.sample_fast()
    text = GpuCollector(sampler.snapshot, hostname="n").render_text().decode()
    assert 'gpufleet_gpu_up{gpu="0",gpu_uuid="GPU-h0",pci_bus_id="00000000:00:06.0",device="nvidia3",' in text
    assert text.count("gpufleet_gpu_power_watts{") == 0
    assert 'gpufleet_exporter_nvml_errors_total{field="utilization",error="gpu_is_lost"} 1.0' in text
    nv.lost.clear()
    inits = nv.inited
    t[0] += 6
    sampler.sample_fast()
    assert sampler.gpus[0].up and nv.inited == inits + 1


def test_pynvml_is_imported_lazily() -> None:
    b = NvmlBackend()
    assert b._nvml is None  # nothing imported until first use
    assert b.nv is pynvml
    assert ctypes.sizeof(pynvml.c_nvmlGpmMetricsGet_t) > 0
