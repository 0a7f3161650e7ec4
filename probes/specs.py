"""Datasheet peaks per GPU model and form factor, resolved from the name NVML reports.

Peaks are dense (no sparsity) TFLOP/s, HBM TB/s and the PCIe generation of the host link. An
unknown model is not guessed: :func:`resolve_spec` raises :class:`UnknownGpuModel` naming it,
and the runner measures the GPU anyway with no %-of-peak figures.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["GpuPeaks", "PEAKS", "UnknownGpuModel", "resolve_spec", "find_spec", "pcie_link_bytes_per_second",
           "EXPECTED_EFFICIENCY", "DEFAULT_USD_PER_GPU_HOUR", "MATMUL_DTYPES"]

MATMUL_DTYPES = ("bf16", "fp16", "tf32", "fp8")


class GpuPeaks(NamedTuple):
    """Datasheet peaks of one GPU model and form factor."""

    key: str  # e.g. "H100-SXM"
    family: str  # short model name the fleet and price tables use: "H100"
    bf16_tflops: float
    fp16_tflops: float
    tf32_tflops: float
    fp8_tflops: float | None  # None: no FP8 tensor cores
    hbm_tbps: float
    pcie_gen: int
    pcie_lanes: int = 16

    def matmul_flops(self, dtype: str) -> float | None:
        """Peak FLOP/s for a matmul dtype (bf16, fp16, tf32, fp8); None when the GPU has none."""
        tflops = {"bf16": self.bf16_tflops, "fp16": self.fp16_tflops, "tf32": self.tf32_tflops,
                  "fp8": self.fp8_tflops}.get(dtype)
        return None if tflops is None else tflops * 1e12

    @property
    def hbm_bytes_per_second(self) -> float:
        """Peak device-memory bandwidth in bytes/s."""
        return self.hbm_tbps * 1e12


# (pattern on the upper-cased NVML name, peaks). First match wins, so specific names come first.
PEAKS: list[tuple[str, GpuPeaks]] = [
    (r"H100.*PCIE", GpuPeaks("H100-PCIe", "H100", 756, 756, 378, 1513, 2.0, 5)),
    (r"H100(?!.*NVL)", GpuPeaks("H100-SXM", "H100", 989, 989, 494.5, 1979, 3.35, 5)),
    (r"H200(?!.*NVL)", GpuPeaks("H200", "H200", 989, 989, 494.5, 1979, 4.8, 5)),
    (r"A100.*PCIE.*80GB|A100.*80GB.*PCIE", GpuPeaks("A100-PCIe-80GB", "A100", 312, 312, 156, None, 1.935, 4)),
    (r"A100.*40GB", GpuPeaks("A100-SXM4-40GB", "A100", 312, 312, 156, None, 1.555, 4)),
    (r"A100", GpuPeaks("A100-SXM4-80GB", "A100", 312, 312, 156, None, 2.04, 4)),
    (r"L40S", GpuPeaks("L40S", "L40S", 362, 362, 183, 733, 0.864, 4)),
    (r"B200", GpuPeaks("B200", "B200", 2250, 2250, 1125, 4500, 8.0, 6)),
]

# What a healthy GPU reaches as a share of its datasheet peak with these probes (measured on an
# H100 SXM: copy 0.90, bf16 0.80, fp8 0.71, PCIe Gen5 0.87); the datasheet check compares with these.
EXPECTED_EFFICIENCY: dict[str, float] = {
    "hbm_bandwidth": 0.88,
    "matmul_bf16": 0.78,
    "matmul_fp16": 0.78,
    "matmul_tf32": 0.70,
    "matmul_fp8": 0.68,
    "pcie_bandwidth": 0.82,
}

# Default on-demand $/GPU-hour by model family (AWS list prices, 2026: p5 8xH100 $55.04/h, p5en 8xH200
# $63.30/h, p4d 8xA100 $21.96/h, g6e L40S ~$1.86/h). Defaults only: a --price flag or the store's
# ``prices`` table overrides them.
DEFAULT_USD_PER_GPU_HOUR: dict[str, float] = {"H100": 6.88, "H200": 7.91, "A100": 2.745, "L40S": 1.86}

# GB/s per lane and direction after line coding, by PCIe generation.
_PCIE_LANE_GBPS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


class UnknownGpuModel(LookupError):
    """A GPU model with no datasheet entry; the message names it and what to do."""


def find_spec(name: str) -> GpuPeaks | None:
    """The peaks for an NVML model name, a spec key (``H100-PCIe``) or a family (``H100``), or None."""
    upper = name.strip().upper()
    for _, peaks in PEAKS:
        if upper == peaks.key.upper():
            return peaks
    for pattern, peaks in PEAKS:
        if re.search(pattern, upper):
            return peaks
    return None


def resolve_spec(name: str) -> GpuPeaks:
    """Like :func:`find_spec` but an unknown model raises :class:`UnknownGpuModel` with a clear message."""
    spec = find_spec(name)
    if spec is None:
        known = ", ".join(p.key for _, p in PEAKS)
        raise UnknownGpuModel(f"GPU model {name!r} has no datasheet peaks (known: {known}); probes still run "
                              f"and are compared with peers and the fleet, without % of peak")
    return spec


def pcie_link_bytes_per_second(gen: int, lanes: int) -> float:
    """Usable one-direction bandwidth of a PCIe link in bytes/s (Gen5 x16: 63.0 GB/s)."""
    if gen not in _PCIE_LANE_GBPS:
        raise ValueError(f"PCIe generation {gen} is not one of {sorted(_PCIE_LANE_GBPS)}")
    if lanes < 1:
        raise ValueError(f"PCIe lane count {lanes} must be at least 1")
    return _PCIE_LANE_GBPS[gen] * lanes * 1e9
