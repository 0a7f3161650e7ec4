"""Datasheet facts the simulated fleet needs per GPU model."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["GpuSpec", "SPECS"]


class GpuSpec(NamedTuple):
    """Power, memory and clocks of one GPU model (dense BF16 peak for MFU)."""

    name: str  # as NVML reports it (dcgm-exporter's modelName)
    tdp_watts: float
    idle_watts: float
    memory_mib: int
    max_sm_clock_mhz: int
    idle_sm_clock_mhz: int
    mem_clock_mhz: int
    bf16_tflops: float
    hbm_tbps: float
    instance_type: str  # the 8-GPU cloud instance it comes in
    gpm: bool  # Hopper and newer expose GPM profiling metrics through NVML


SPECS: dict[str, GpuSpec] = {
    "H100": GpuSpec("NVIDIA H100 80GB HBM3", 700, 70, 81559, 1980, 345, 2619, 989, 3.35, "p5.48xlarge", True),
    "H200": GpuSpec("NVIDIA H200", 700, 75, 143771, 1980, 345, 3201, 989, 4.8, "p5en.48xlarge", True),
    "A100": GpuSpec("NVIDIA A100-SXM4-80GB", 400, 55, 81920, 1410, 210, 1593, 312, 2.04, "p4de.24xlarge", False),
    "L40S": GpuSpec("NVIDIA L40S", 350, 35, 46068, 2520, 210, 9001, 362, 0.864, "g6e.48xlarge", False),
}
