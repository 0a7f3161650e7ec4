"""The one interface to GPUs: a ``GpuBackend`` Protocol and the values its calls return.

Every method is one NVML call kind (its name is the ``field`` label of the error counter) and
raises a typed :class:`~gpufleet.exporters.errors.NvmlError` on failure. Values are in base
units (bytes, watts, joules, hertz, seconds, ratios 0-1).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

__all__ = [
    "GpuBackend", "DeviceIdentity", "MemoryInfo", "RemappedRows", "ProcessMemory", "MigInstance", "GpmMetrics",
    "XidEvent", "CALLS", "CLOCK_EVENT_BITS", "ECC_KINDS", "NVLINK_ERRORS", "VIOLATION_REASONS",
]

# Every call kind a backend answers; each can fail on its own and is counted on its own.
CALLS: tuple[str, ...] = (
    "device_count", "identity", "utilization", "encoder_decoder", "memory", "power", "energy", "temperature",
    "memory_temperature", "clocks", "clock_events", "violation", "pcie_throughput", "pcie_replays", "nvlink",
    "ecc", "remapped_rows", "processes", "gpm_support", "gpm_sample", "mig_instances", "xid_wait",
)

# NVML clock-event (throttle) reason bits and their label values.
CLOCK_EVENT_BITS: tuple[tuple[int, str], ...] = (
    (0x1, "gpu_idle"), (0x2, "clocks_setting"), (0x4, "power_cap"), (0x8, "hw_slowdown"), (0x10, "sync_boost"),
    (0x20, "sw_thermal"), (0x40, "hw_thermal"), (0x80, "hw_power_brake"),
)
ECC_KINDS: tuple[tuple[str, str], ...] = (
    ("corrected", "volatile"), ("uncorrected", "volatile"), ("corrected", "aggregate"), ("uncorrected", "aggregate"))
NVLINK_ERRORS: tuple[str, ...] = ("crc_flit", "crc_data", "replay", "recovery")
VIOLATION_REASONS: tuple[str, ...] = ("power", "thermal", "reliability", "board_limit", "low_utilization",
                                      "sync_boost")


class DeviceIdentity(NamedTuple):
    """What stays true of a GPU while it is lost: the labels it keeps."""

    gpu_index: int
    uuid: str
    name: str
    pci_bus_id: str
    minor: int


class MemoryInfo(NamedTuple):
    """Framebuffer memory in bytes."""

    total: float
    free: float
    used: float
    reserved: float


class RemappedRows(NamedTuple):
    """Row remapping state."""

    correctable: float
    uncorrectable: float
    pending: float
    failure: float


class ProcessMemory(NamedTuple):
    """A compute process on a GPU and the device memory it holds."""

    pid: int
    used_bytes: float


class MigInstance(NamedTuple):
    """A MIG GPU instance."""

    gi_id: int
    profile: str  # e.g. "1g.10gb"
    uuid: str
    memory_used: float
    memory_total: float


class GpmMetrics(NamedTuple):
    """GPM profiling metrics over one interval, ratios 0-1 and bytes per second."""

    sm_active: float
    sm_occupancy: float
    tensor_active: float
    dram_active: float
    fp64_active: float
    fp32_active: float
    fp16_active: float
    graphics_active: float
    pcie_tx: float
    pcie_rx: float


class XidEvent(NamedTuple):
    """An XID critical error on the GPU with ``uuid``."""

    uuid: str
    xid: int


class GpuBackend(Protocol):
    """What the exporter needs from a GPU library; NVML in production, a simulation in tests."""

    def init(self) -> None: ...
    def shutdown(self) -> None: ...
    def driver_version(self) -> str: ...
    def device_count(self) -> int: ...
    def identity(self, index: int) -> DeviceIdentity: ...
    def utilization(self, index: int) -> tuple[float, float]:
        """(GPU busy, memory copy busy) as ratios."""
        ...
    def encoder_decoder(self, index: int) -> tuple[float, float]: ...
    def memory(self, index: int) -> MemoryInfo: ...
    def power(self, index: int) -> float: ...
    def energy(self, index: int) -> float: ...
    def temperature(self, index: int) -> float: ...
    def memory_temperature(self, index: int) -> float: ...
    def clocks(self, index: int) -> tuple[float, float]:
        """(SM, memory) clocks in hertz."""
        ...
    def clock_events(self, index: int) -> int:
        """Bitmask of active clock-event reasons (see ``CLOCK_EVENT_BITS``)."""
        ...
    def violation(self, index: int) -> dict[str, float]:
        """Cumulative seconds clocks were held down, by reason."""
        ...
    def pcie_throughput(self, index: int) -> tuple[float, float]:
        """(transmit, receive) bytes per second; blocks about 20 ms on real hardware."""
        ...
    def pcie_replays(self, index: int) -> float: ...
    def nvlink(self, index: int) -> tuple[float, dict[str, float]]:
        """(bytes moved in total, error counters by kind summed over links)."""
        ...
    def ecc(self, index: int) -> dict[tuple[str, str], float]:
        """ECC error counts by (type, counter); see ``ECC_KINDS``."""
        ...
    def remapped_rows(self, index: int) -> RemappedRows: ...
    def processes(self, index: int) -> list[ProcessMemory]: ...
    def gpm_support(self, index: int) -> bool: ...
    def gpm_sample(self, index: int, gi_id: int | None = None) -> object:
        """Take a GPM sample (opaque); two of them give :meth:`gpm_metrics`."""
        ...
    def gpm_metrics(self, index: int, first: object, second: object) -> GpmMetrics: ...
    def gpm_release(self, sample: object) -> None: ...
    def mig_instances(self, index: int) -> list[MigInstance]: ...
    def xid_wait(self, timeout_s: float) -> list[XidEvent]:
        """Block up to ``timeout_s`` for XID events on any GPU."""
        ...
