"""A simulated ``GpuBackend`` over :class:`gpufleet.core.simfleet.SimulatedFleet`, with injectable faults.

Values come from the simulated fleet (one node of it), advanced on a clock, so they move the way a
busy or idle GPU's do. Any call kind can be made to raise any typed NVML error, once, a number of
times, or until cleared; a GPU can fall off the bus and come back; the driver can go away.
"""

from __future__ import annotations

import threading
import time
import uuid as uuidlib
from collections.abc import Callable

from gpufleet.core.naming import MIB
from gpufleet.core.simfleet import FleetConfig, SimulatedFleet
from gpufleet.core.simfleet.telemetry import GpuReading
from gpufleet.exporters.backend import (
    CALLS,
    DeviceIdentity,
    GpmMetrics,
    MemoryInfo,
    MigInstance,
    ProcessMemory,
    RemappedRows,
    XidEvent,
)
from gpufleet.exporters.errors import DriverNotLoaded, GpuIsLost, NotSupported, NvmlError, Uninitialized

__all__ = ["SimBackend", "sim_fleet"]


def sim_fleet(model: str = "H100", gpus: int = 8, *, mig: bool = False, seed: int = 7,
              fault_scale: float = 0.0) -> SimulatedFleet:
    """A one-node simulated fleet of ``gpus`` GPUs of ``model`` (MIG-partitioned A100s with ``mig``)."""
    cfg = FleetConfig(nodes=1, gpus_per_node=gpus, model_mix={"A100" if mig else model: 1.0}, seed=seed,
                      mig_fraction=1.0 if mig else 0.0, fault_scale=fault_scale, clusters=["sim"])
    return SimulatedFleet(cfg)


class _Fault:
    __slots__ = ("error", "remaining")

    def __init__(self, error: type[NvmlError], remaining: int | None) -> None:
        self.error = error
        self.remaining = remaining


class SimBackend:
    """``GpuBackend`` over one node of a simulated fleet.

    ``clock`` gives wall seconds; the fleet moves by the same amount (from ``start``, default
    14:00 UTC on the fleet's first day) whenever at least ``step_s`` has passed. ``pcie_delay_s``
    makes ``pcie_throughput`` block like the real call. ``gpm`` overrides whether GPM is supported.
    """

    def __init__(self, fleet: SimulatedFleet | None = None, node: int = 0, *, clock: Callable[[], float] = time.time,
                 start: float | None = None, step_s: float = 1.0, pcie_delay_s: float = 0.0,
                 gpm: bool | None = None) -> None:
        self.fleet = fleet or sim_fleet()
        self.node = self.fleet.topo.nodes[node]
        self.gpus = self.node.gpus
        self.clock = clock
        self.step_s = step_s
        self.pcie_delay_s = pcie_delay_s
        self.gpm = gpm
        self._wall0 = clock()
        self._fleet0 = start if start is not None else self.fleet.cfg.start + 14 * 3600
        self._faults: dict[tuple[str, int | None], _Fault] = {}
        self._lost: set[int] = set()
        self.driver_loaded = True
        self.initialized = False
        self.init_count = 0
        self._lock = threading.RLock()
        self._xid_cond = threading.Condition(self._lock)
        self._xid_queue: list[XidEvent] = []
        self._xid_seen: dict[str, dict[int, float]] = {g.uuid: {} for g in self.gpus}
        self._events_prev: dict[str, dict[str, float]] = {}
        self._events_now: dict[str, set[str]] = {g.uuid: set() for g in self.gpus}
        self._violation: dict[str, dict[str, float]] = {g.uuid: {"power": 0.0, "thermal": 0.0} for g in self.gpus}
        self._nvlink: dict[str, float] = {g.uuid: 0.0 for g in self.gpus}
        self._ecc_corrected: dict[str, float] = {g.uuid: 0.0 for g in self.gpus}
        self._advance(force=True)

    # -- fault injection -----------------------------------------------------------------------

    def inject(self, call: str, error: type[NvmlError], gpu: int | None = None, times: int | None = None) -> None:
        """Make ``call`` (on ``gpu``, or on every GPU) raise ``error``, ``times`` times or until cleared."""
        if call not in CALLS:
            raise ValueError(f"unknown call {call!r}; known: {', '.join(CALLS)}")
        self._faults[(call, gpu)] = _Fault(error, times)

    def clear(self, call: str | None = None) -> None:
        """Remove injected faults (of one call kind, or all)."""
        for key in [k for k in self._faults if call is None or k[0] == call]:
            del self._faults[key]

    def lose(self, index: int) -> None:
        """The GPU falls off the bus: every call on it raises ``GpuIsLost``."""
        self._lost.add(index)

    def restore(self, index: int) -> None:
        """The GPU is back (after a power cycle); it answers again once NVML is re-initialised."""
        self._lost.discard(index)

    def unload_driver(self) -> None:
        self.driver_loaded = False

    def load_driver(self) -> None:
        self.driver_loaded = True

    def emit_xid(self, index: int, xid: int) -> None:
        """Deliver an XID event for GPU ``index`` to ``xid_wait``."""
        with self._xid_cond:
            self._xid_queue.append(XidEvent(self.gpus[index].uuid, xid))
            self._xid_cond.notify_all()

    def _check(self, call: str, index: int | None = None) -> None:
        if not self.driver_loaded:
            raise GpuIsLost("driver went away") if self.initialized else DriverNotLoaded()
        if not self.initialized:
            raise Uninitialized()
        for key in ((call, index), (call, None)):
            fault = self._faults.get(key)
            if fault is not None:
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        del self._faults[key]
                raise fault.error(f"injected on {call}")
        if index is not None:
            if index < 0 or index >= len(self.gpus):
                raise NotSupported(f"no GPU {index}")
            if index in self._lost or self._reading(index) is None:
                raise GpuIsLost()

    # -- the fleet -------------------------------------------------------------------------------

    def _advance(self, force: bool = False) -> None:
        with self._lock:
            t = self._fleet0 + (self.clock() - self._wall0)
            last = self.fleet.t
            if not force and last is not None and t - last < self.step_s:
                return
            dt = self.step_s if last is None else t - last
            if dt <= 0:
                return
            self.fleet.advance(t, default_dt=dt)
            for g in self.gpus:
                c = self.fleet.counters[g.uuid]
                prev = self._events_prev.get(g.uuid, {})
                self._events_now[g.uuid] = {k for k, v in c.clock_events.items() if v > prev.get(k, 0.0)}
                self._events_prev[g.uuid] = dict(c.clock_events)
                now = self._events_now[g.uuid]
                if "power_cap" in now:
                    self._violation[g.uuid]["power"] += dt
                if "sw_thermal" in now:
                    self._violation[g.uuid]["thermal"] += dt
                r = self.fleet.readings.get(g.uuid)
                if r is not None:
                    self._nvlink[g.uuid] += dt * 40e9 * r.dram_active * (1 if g.spec.gpm else 0)
                    self._ecc_corrected[g.uuid] += 1 if r.dram_active > 0.7 and dt > 0 and int(t) % 97 == 0 else 0
                seen = self._xid_seen[g.uuid]
                for xid, n in c.xids.items():
                    for _ in range(int(n - seen.get(xid, 0))):
                        self._xid_queue.append(XidEvent(g.uuid, xid))
                    seen[xid] = n
            if self._xid_queue:
                self._xid_cond.notify_all()

    def _reading(self, index: int) -> GpuReading | None:
        self._advance()
        return self.fleet.readings.get(self.gpus[index].uuid)

    def _r(self, index: int) -> GpuReading:
        r = self._reading(index)
        if r is None:
            raise GpuIsLost()
        return r

    # -- GpuBackend --------------------------------------------------------------------------------

    def init(self) -> None:
        if not self.driver_loaded:
            raise DriverNotLoaded()
        self.initialized = True
        self.init_count += 1

    def shutdown(self) -> None:
        self.initialized = False

    def driver_version(self) -> str:
        self._check("device_count")
        return "580.159.04-sim"

    def device_count(self) -> int:
        self._check("device_count")
        return len(self.gpus)

    def identity(self, index: int) -> DeviceIdentity:
        self._check("identity", index)
        g = self.gpus[index]
        return DeviceIdentity(index, g.uuid, g.spec.name, g.pci_bus_id, index)

    def utilization(self, index: int) -> tuple[float, float]:
        self._check("utilization", index)
        r = self._r(index)
        return round(r.util, 2), round(r.mem_copy_util, 2)

    def encoder_decoder(self, index: int) -> tuple[float, float]:
        self._check("encoder_decoder", index)
        return 0.0, 0.0

    def memory(self, index: int) -> MemoryInfo:
        self._check("memory", index)
        r = self._r(index)
        total = self.gpus[index].spec.memory_mib * MIB
        return MemoryInfo(total, r.fb_free_mib * MIB, r.fb_used_mib * MIB, r.fb_reserved_mib * MIB)

    def power(self, index: int) -> float:
        self._check("power", index)
        return self._r(index).power_w

    def energy(self, index: int) -> float:
        self._check("energy", index)
        return round(self.fleet.counters[self.gpus[index].uuid].energy_mj) / 1000.0

    def temperature(self, index: int) -> float:
        self._check("temperature", index)
        return self._r(index).temp_c

    def memory_temperature(self, index: int) -> float:
        self._check("memory_temperature", index)
        return self._r(index).mem_temp_c

    def clocks(self, index: int) -> tuple[float, float]:
        self._check("clocks", index)
        r = self._r(index)
        return r.sm_clock_mhz * 1e6, r.mem_clock_mhz * 1e6

    def clock_events(self, index: int) -> int:
        self._check("clock_events", index)
        bits = {"gpu_idle": 0x1, "power_cap": 0x4, "hw_slowdown": 0x8, "sw_thermal": 0x20, "hw_thermal": 0x40}
        mask = 0
        for reason in self._events_now[self.gpus[index].uuid]:
            mask |= bits.get(reason, 0)
        return mask

    def violation(self, index: int) -> dict[str, float]:
        self._check("violation", index)
        return dict(self._violation[self.gpus[index].uuid])

    def pcie_throughput(self, index: int) -> tuple[float, float]:
        self._check("pcie_throughput", index)
        if self.pcie_delay_s:
            time.sleep(self.pcie_delay_s)
        r = self._r(index)
        return float(int(r.pcie_tx / 1024) * 1024), float(int(r.pcie_rx / 1024) * 1024)

    def pcie_replays(self, index: int) -> float:
        self._check("pcie_replays", index)
        return self.fleet.counters[self.gpus[index].uuid].pcie_replays

    def nvlink(self, index: int) -> tuple[float, dict[str, float]]:
        self._check("nvlink", index)
        g = self.gpus[index]
        if not g.spec.gpm:
            raise NotSupported("no NVLink on this model")
        return float(int(self._nvlink[g.uuid])), {"crc_flit": 0.0, "crc_data": 0.0, "replay": 0.0, "recovery": 0.0}

    def ecc(self, index: int) -> dict[tuple[str, str], float]:
        self._check("ecc", index)
        c = self.fleet.counters[self.gpus[index].uuid]
        corr = self._ecc_corrected[self.gpus[index].uuid]
        unc = float(c.xids.get(48, 0))
        return {("corrected", "volatile"): corr, ("uncorrected", "volatile"): unc,
                ("corrected", "aggregate"): corr + 12, ("uncorrected", "aggregate"): unc}

    def remapped_rows(self, index: int) -> RemappedRows:
        self._check("remapped_rows", index)
        c = self.fleet.counters[self.gpus[index].uuid]
        return RemappedRows(c.remap_correctable, c.remap_uncorrectable, 0.0, c.remap_failure)

    def processes(self, index: int) -> list[ProcessMemory]:
        self._check("processes", index)
        g = self.gpus[index]
        r = self._r(index)
        holders = sorted({pod for (u, _i), (_w, pod) in self.fleet.holders.items() if u == g.uuid})
        if not holders or r.fb_used_mib <= 0:
            return []
        share = r.fb_used_mib * MIB / len(holders)
        return [ProcessMemory(1000 + (uuidlib.uuid5(uuidlib.NAMESPACE_DNS, pod).int % 60000), share)
                for pod in holders]

    def gpm_support(self, index: int) -> bool:
        self._check("gpm_support", index)
        return self.gpus[index].spec.gpm if self.gpm is None else self.gpm

    def gpm_sample(self, index: int, gi_id: int | None = None) -> object:
        self._check("gpm_sample", index)
        if not self.gpm_support(index):
            raise NotSupported("GPM needs Hopper or newer")
        return (index, gi_id, self.fleet.t)

    def gpm_metrics(self, index: int, first: object, second: object) -> GpmMetrics:
        self._check("gpm_sample", index)
        r = self._r(index)
        gi_id = first[1] if isinstance(first, tuple) else None
        if gi_id is not None:
            inst = next((x for x in r.instances if x.instance == gi_id), None)
            if inst is None:
                raise NotSupported(f"no GPU instance {gi_id}")
            return GpmMetrics(inst.sm_active, inst.sm_active * 0.45, inst.tensor_active, inst.dram_active, 0.0,
                              inst.sm_active * 0.12, inst.tensor_active * 0.05, inst.gr_active, 0.0, 0.0)
        return GpmMetrics(r.sm_active, r.sm_occupancy, r.tensor_active, r.dram_active, r.fp64_active, r.fp32_active,
                          r.fp16_active, r.gr_active, r.pcie_tx, r.pcie_rx)

    def gpm_release(self, sample: object) -> None:
        return None

    def mig_instances(self, index: int) -> list[MigInstance]:
        self._check("mig_instances", index)
        g = self.gpus[index]
        if not g.mig:
            return []
        r = self._r(index)
        out = []
        for inst in r.instances:
            mig_uuid = f"MIG-{uuidlib.uuid5(uuidlib.NAMESPACE_OID, f'{g.uuid}/{inst.instance}')}"
            out.append(MigInstance(inst.instance, inst.profile, mig_uuid, inst.fb_used_mib * MIB,
                                   (inst.fb_used_mib + inst.fb_free_mib) * MIB))
        return out

    def xid_wait(self, timeout_s: float) -> list[XidEvent]:
        self._check("xid_wait")
        self._advance()
        with self._xid_cond:
            if not self._xid_queue:
                self._xid_cond.wait(timeout_s)
            events, self._xid_queue = self._xid_queue, []
        return events
