"""Window totals from counter and bucket samples, and Prometheus-style quantiles (pure; polars only).

The store keeps reset-corrected deltas, so a window's count is the sum of its deltas. Sources that
give cumulative values instead (a Prometheus-compatible API) go through :func:`window_increase`,
which applies the same rule as Prometheus' ``increase()``: a drop means the process restarted from
zero, so the sample after a drop contributes its whole value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

__all__ = ["window_increase", "bucket_totals", "histogram_quantile", "Histogram"]

Histogram = tuple[list[float], list[float]]
"""Cumulative bucket bounds (``+Inf`` last) and counts."""


def window_increase(samples: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """Increase of cumulative counters per ``by`` group (columns ``ts``, ``value``), resets handled.

    The first sample of a group is the baseline (it contributes nothing); each later sample adds
    ``value - previous`` or, after a reset (``value < previous``), ``value``. Returns ``by`` + ``increase``.
    """
    keys = list(by)
    missing = [c for c in (*keys, "ts", "value") if c not in samples.columns]
    if missing:
        raise ValueError(f"counter samples lack column(s) {', '.join(missing)}")
    prev = pl.col("value").shift(1).over(keys)
    step = (pl.when(prev.is_null()).then(0.0)
            .when(pl.col("value") < prev).then(pl.col("value"))
            .otherwise(pl.col("value") - prev))
    return (samples.sort([*keys, "ts"]).with_columns(_step=step)
            .group_by(keys, maintain_order=True).agg(increase=pl.col("_step").sum()))


def bucket_totals(buckets: pl.DataFrame, by: Sequence[str]) -> dict[tuple[object, ...], Histogram]:
    """Per ``by`` group, cumulative bucket counts summed over the group's series.

    ``buckets`` has ``by`` + ``series_id``, ``le`` and ``count`` (the window's increase of that bucket).
    Replicas with different bucket layouts are summed over the bounds they all share (``+Inf`` always),
    since a bound one replica lacks has no count for it.
    """
    keys = list(by)
    out: dict[tuple[object, ...], Histogram] = {}
    if buckets.height == 0:
        return out
    for group, df in buckets.group_by(keys, maintain_order=True):
        per_series = df.group_by("series_id").agg(pl.col("le").unique())
        common = set.intersection(*(set(v) for v in per_series["le"].to_list()))
        summed = (df.filter(pl.col("le").is_in(sorted(common))).group_by("le").agg(pl.col("count").sum())
                  .sort("le"))
        out[tuple(group)] = (summed["le"].to_list(), summed["count"].to_list())
    return out


def histogram_quantile(q: float, bounds: Sequence[float], cumulative: Sequence[float]) -> float | None:
    """The ``q`` quantile as Prometheus' ``histogram_quantile`` computes it; ``None`` with no observations.

    Linear inside the bucket (the first bucket starts at 0); a rank in the ``+Inf`` bucket returns the
    highest finite bound, so such a quantile is a floor, not an estimate.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must lie in [0, 1], got {q}")
    pairs = sorted(zip(bounds, cumulative, strict=True))
    if not pairs or pairs[-1][1] <= 0:
        return None
    total = pairs[-1][1]
    rank = q * total
    lo_b, lo_c = 0.0, 0.0
    for b, c in pairs:
        if c >= rank:
            if math.isinf(b):
                return lo_b
            if c == lo_c:
                return b
            return lo_b + (b - lo_b) * (rank - lo_c) / (c - lo_c)
        lo_b, lo_c = b, c
    return lo_b  # pragma: no cover - the last bucket holds every observation
