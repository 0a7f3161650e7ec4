"""Robust statistics and bandwidth formulas the probes and verdicts share (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["median", "mad", "robust_z", "spread_ratio", "busbw_factor", "COLLECTIVES", "matmul_flop",
           "stream_bytes"]

# nccl-tests' bus-bandwidth factors: busbw = algbw * factor(n).
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "alltoall")

# MAD scaled to a normal standard deviation.
_MAD_TO_SIGMA = 1.4826


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    if not values:
        raise ValueError("median of an empty sequence")
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median."""
    m = median(values)
    return median([abs(v - m) for v in values])


def robust_z(value: float, values: Sequence[float], floor_ratio: float = 0.01) -> float:
    """(value - median) / (1.4826 MAD), with the MAD floored at ``floor_ratio`` of the median.

    The floor keeps a tight group (8 identical GPUs) from turning a 1% difference into a huge score.
    """
    m = median(values)
    scale = max(_MAD_TO_SIGMA * mad(values), abs(m) * floor_ratio, 1e-300)
    return (value - m) / scale


def spread_ratio(values: Sequence[float]) -> float:
    """(max - min) / median of repeated timings or rates: how repeatable one probe was."""
    m = median(values)
    return (max(values) - min(values)) / m if m else math.inf


def busbw_factor(collective: str, ranks: int) -> float:
    """nccl-tests' factor from algorithm to bus bandwidth for ``ranks`` ranks."""
    if ranks < 1:
        raise ValueError(f"rank count {ranks} must be at least 1")
    if collective == "all_reduce":
        return 2 * (ranks - 1) / ranks
    if collective in ("all_gather", "reduce_scatter", "alltoall"):
        return (ranks - 1) / ranks
    if collective in ("broadcast", "reduce"):
        return 1.0
    raise ValueError(f"unknown collective {collective!r}; known: {', '.join(COLLECTIVES)}, broadcast, reduce")


def matmul_flop(m: int, n: int, k: int) -> float:
    """Floating-point operations of an (m x k) @ (k x n) product: 2 m n k."""
    return 2.0 * m * n * k


def stream_bytes(kernel: str, elements: int, itemsize: int) -> int:
    """Device-memory bytes a STREAM kernel moves: copy reads 1 and writes 1 array, triad reads 2, writes 1."""
    arrays = {"copy": 2, "scale": 2, "add": 3, "triad": 3}
    if kernel not in arrays:
        raise ValueError(f"unknown STREAM kernel {kernel!r}; known: {', '.join(arrays)}")
    return arrays[kernel] * elements * itemsize
