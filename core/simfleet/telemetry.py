"""GPU readings from what runs on a GPU: utilisation, power, clocks, memory, counters, faults."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gpufleet.core.simfleet.topology import Gpu

__all__ = ["Activity", "GpuReading", "GpuCounters", "InstanceReading", "read_gpu", "CLOCK_EVENTS"]

CLOCK_EVENTS = ("gpu_idle", "power_cap", "hw_slowdown", "sw_thermal", "hw_thermal")


@dataclass(frozen=True)
class Activity:
    """How busy a GPU (or MIG instance) is over an interval, 0..1 each."""

    sm: float = 0.0
    tensor: float = 0.0
    dram: float = 0.0
    memory_fraction: float = 0.005


@dataclass
class GpuCounters:
    """Monotonic per-GPU counters, carried from step to step."""

    energy_mj: float = 0.0
    pcie_replays: float = 0.0
    remap_correctable: float = 0.0
    remap_uncorrectable: float = 0.0
    remap_failure: float = 0.0
    last_xid: float = 0.0
    xids: dict[int, float] = field(default_factory=dict)
    clock_events: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CLOCK_EVENTS, 0.0))


@dataclass(frozen=True)
class InstanceReading:
    instance: int
    profile: str
    gr_active: float
    sm_active: float
    tensor_active: float
    dram_active: float
    fb_used_mib: float
    fb_free_mib: float


@dataclass(frozen=True)
class GpuReading:
    up: bool
    util: float
    mem_copy_util: float
    sm_clock_mhz: float
    mem_clock_mhz: float
    temp_c: float
    mem_temp_c: float
    power_w: float
    fb_used_mib: float
    fb_free_mib: float
    fb_reserved_mib: float
    gr_active: float
    sm_active: float
    sm_occupancy: float
    tensor_active: float
    dram_active: float
    fp16_active: float
    fp32_active: float
    fp64_active: float
    pcie_tx: float
    pcie_rx: float
    instances: tuple[InstanceReading, ...] = ()


def read_gpu(gpu: Gpu, acts: list[Activity], counters: GpuCounters, rng: np.random.Generator, dt: float, *,
             thermal: bool, lost: bool) -> GpuReading | None:
    """Advance the GPU's counters by ``dt`` and return its reading; ``None`` while it is off the bus."""
    spec = gpu.spec
    if lost:
        return None
    act = _combine(acts) if acts else Activity()
    noise = float(rng.normal(1.0, 0.03))
    sm = min(act.sm * gpu.speed * noise, 1.0)
    tensor = min(act.tensor * gpu.speed, 1.0)
    busy = sm > 0.01
    util = min(1.0, 0.05 + 1.15 * sm) if busy else 0.0
    clock = spec.max_sm_clock_mhz * (gpu.speed if busy else 1.0) if busy else spec.idle_sm_clock_mhz
    power = spec.idle_watts + (spec.tdp_watts - spec.idle_watts) * (0.55 * sm + 0.35 * tensor + 0.1 * act.dram)
    temp = 29 + 42 * power / spec.tdp_watts + float(rng.normal(0, 0.8))
    if thermal:
        temp = 89 + float(rng.uniform(0, 4))
        clock *= 0.72
        power *= 0.8
        counters.clock_events["sw_thermal"] += 1
        counters.clock_events["hw_thermal"] += 1 if rng.random() < 0.5 else 0
    elif busy and power > 0.97 * spec.tdp_watts:
        counters.clock_events["power_cap"] += 1
    if gpu.speed < 1 and busy:
        counters.clock_events["hw_slowdown"] += 1
    if not busy:
        counters.clock_events["gpu_idle"] += 1
    power = min(power * noise, spec.tdp_watts)
    counters.energy_mj += power * dt * 1000
    if rng.random() < 0.02:
        counters.pcie_replays += float(rng.integers(1, 4))
    reserved = 512.0
    used = min(act.memory_fraction, 0.98) * (spec.memory_mib - reserved)
    instances: tuple[InstanceReading, ...] = ()
    if gpu.mig:
        slice_mib = (spec.memory_mib - reserved) / 8
        inst = []
        for i, profile in enumerate(gpu.mig):
            a = acts[i] if i < len(acts) else Activity()
            size = int(profile.split("g", 1)[0]) * slice_mib
            inst.append(InstanceReading(i, profile, min(a.sm * 1.05, 1.0), a.sm, a.tensor, a.dram,
                                        a.memory_fraction * size, size * (1 - a.memory_fraction)))
        instances = tuple(inst)
        used = sum(x.fb_used_mib for x in instances)
    return GpuReading(
        up=True, util=util, mem_copy_util=min(1.0, act.dram * 0.9), sm_clock_mhz=round(clock),
        mem_clock_mhz=spec.mem_clock_mhz, temp_c=round(temp), mem_temp_c=round(temp + 4),
        power_w=round(power, 3), fb_used_mib=round(used), fb_free_mib=round(spec.memory_mib - reserved - used),
        fb_reserved_mib=reserved, gr_active=min(1.0, sm * 1.08), sm_active=sm, sm_occupancy=sm * 0.45,
        tensor_active=tensor, dram_active=act.dram, fp16_active=tensor * 0.05, fp32_active=sm * 0.12,
        fp64_active=0.0, pcie_tx=(2e8 + 3e9 * act.dram) * noise, pcie_rx=(3e8 + 5e9 * act.dram) * noise,
        instances=instances)


def _combine(acts: list[Activity]) -> Activity:
    """Time-sliced or MIG sharing: activities add up, capped at a full GPU."""
    return Activity(min(sum(a.sm for a in acts), 1.0), min(sum(a.tensor for a in acts), 1.0),
                    min(sum(a.dram for a in acts), 1.0), min(sum(a.memory_fraction for a in acts), 0.98))
