"""Cost anomalies: a group whose spend in the newest bucket jumps far above its own recent baseline.

The baseline of a group is the median of its cost over the ``baseline`` buckets before the newest one
(a bucket with no spend counts as $0); the spread is the median absolute deviation scaled to a standard
deviation (x 1.4826). The newest bucket is anomalous when it exceeds the median by more than ``z`` spreads,
by more than ``min_rel`` of the median, and by at least ``min_usd`` dollars. Median and MAD, not mean and
standard deviation, so that one earlier spike does not hide the next.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

import polars as pl

__all__ = ["CostAnomaly", "MAD_TO_SIGMA", "bucket_costs", "detect_anomalies"]

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class CostAnomaly:
    """One group's spend in the newest bucket against its baseline."""

    by: str
    group: str
    bucket_start: dt.datetime
    bucket_hours: float
    cost_usd: float
    baseline_usd: float
    threshold_usd: float

    @property
    def excess_usd(self) -> float:
        """Spend above the baseline median."""
        return self.cost_usd - self.baseline_usd

    @property
    def ratio(self) -> float | None:
        """Cost over baseline (None when the baseline is $0: new spend)."""
        return self.cost_usd / self.baseline_usd if self.baseline_usd > 0 else None


def bucket_costs(priced: pl.DataFrame, start: dt.datetime, bucket: dt.timedelta, by: str = "team") -> pl.DataFrame:
    """Workload cost (rows with a namespace) per ``by`` group and bucket index counted from ``start``.

    ``priced`` is the output of ``price_allocations`` (``ts`` and ``cost_usd`` columns). Idle GPU time has
    no owner and is left out. A group with no name is reported as ``(unknown)``.
    """
    if by not in priced.columns:
        raise ValueError(f"cost anomalies by {by!r}: no such column (have {', '.join(priced.columns)})")
    step_us = int(bucket.total_seconds() * 1_000_000)
    if step_us <= 0:
        raise ValueError(f"cost anomaly bucket {bucket}: must be positive")
    return (priced.filter(pl.col("namespace").is_not_null() & (pl.col("ts") >= start))
            .with_columns(group=pl.col(by).cast(pl.String).fill_null("(unknown)"),
                          bucket=((pl.col("ts") - pl.lit(start)).dt.total_microseconds() // step_us).cast(pl.Int64))
            .group_by("group", "bucket").agg(cost_usd=pl.col("cost_usd").sum())
            .sort("group", "bucket"))


def detect_anomalies(costs: pl.DataFrame, *, start: dt.datetime, bucket: dt.timedelta, by: str = "team",
                     baseline: int = 7, z: float = 3.0, min_rel: float = 0.25,
                     min_usd: float = 1.0) -> list[CostAnomaly]:
    """Groups whose newest bucket (index ``baseline``) is far above the median of buckets ``0..baseline-1``.

    ``costs`` comes from :func:`bucket_costs` over a window of ``baseline + 1`` buckets starting at ``start``.
    """
    if baseline < 3:
        raise ValueError(f"cost anomaly baseline {baseline}: needs at least 3 earlier buckets")
    out = []
    newest = baseline
    for (group,), g in costs.group_by("group", maintain_order=True):
        by_bucket = dict(zip(g["bucket"].to_list(), g["cost_usd"].to_list(), strict=True))
        history = [float(by_bucket.get(i, 0.0)) for i in range(baseline)]
        now = float(by_bucket.get(newest, 0.0))
        med = statistics.median(history)
        sigma = MAD_TO_SIGMA * statistics.median(abs(h - med) for h in history)
        threshold = med + max(z * sigma, min_rel * med, min_usd)
        if now > threshold:
            out.append(CostAnomaly(by, str(group), start + newest * bucket, bucket.total_seconds() / 3600,
                                   now, med, threshold))
    return sorted(out, key=lambda a: -a.excess_usd)
