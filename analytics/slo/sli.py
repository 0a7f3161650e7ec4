"""Latency SLI from histogram bucket deltas at any threshold (pure; no I/O).

Buckets are cumulative Prometheus buckets: ``counts[i]`` is the number of observations <= ``bounds[i]``
over the window (the sum of the stored per-interval deltas, already reset-corrected by the writer).
At a bucket boundary the good fraction is exact. Inside a bucket ``(lo, hi]`` the observations are
assumed uniform, so good = cum(lo) + (cum(hi) - cum(lo)) * (t - lo) / (hi - lo); the true value lies
between cum(lo) and cum(hi), so the error is at most that bucket's count over the total.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["HistogramSli", "SliError", "sli_at_threshold"]


class SliError(ValueError):
    """A threshold or a histogram the SLI cannot be computed from; the message names the input."""


@dataclass(frozen=True)
class HistogramSli:
    """Good fraction under a threshold with its bounds; ``None`` fields mean no data in the window."""

    good: float | None
    lower: float | None
    upper: float | None
    total: float

    @property
    def error_bound(self) -> float:
        """Largest possible error of ``good``: the straddling bucket's count over the total."""
        if self.lower is None or self.upper is None:
            return 0.0
        return self.upper - self.lower


def sli_at_threshold(bounds: Sequence[float], cumulative: Sequence[float], threshold: float) -> HistogramSli:
    """Fraction of observations <= ``threshold`` from cumulative bucket counts (``+Inf`` last or absent).

    Raises SliError when the threshold is beyond the highest finite bucket bound or is not positive.
    """
    if len(bounds) != len(cumulative):
        raise SliError(f"histogram has {len(bounds)} bounds but {len(cumulative)} counts")
    pairs = sorted(zip(bounds, cumulative, strict=True))
    finite = [(b, c) for b, c in pairs if math.isfinite(b)]
    if not finite:
        raise SliError("histogram has no finite bucket bound")
    top = finite[-1][0]
    if threshold > top:
        raise SliError(f"threshold {threshold:g} s is beyond the highest finite bucket le={top:g}")
    if threshold < 0:
        raise SliError(f"threshold {threshold:g} s is negative")
    total = pairs[-1][1]
    if total <= 0:
        return HistogramSli(None, None, None, 0.0)
    lo_b, lo_c = 0.0, 0.0
    for b, c in finite:
        if threshold == b:
            frac = c / total
            return HistogramSli(frac, frac, frac, total)
        if threshold < b:
            good = lo_c + (c - lo_c) * (threshold - lo_b) / (b - lo_b)
            return HistogramSli(good / total, lo_c / total, c / total, total)
        lo_b, lo_c = b, c
    raise SliError(f"threshold {threshold:g} s could not be placed in the buckets")  # pragma: no cover
