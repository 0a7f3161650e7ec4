"""SLO attainment over time: the SLI per period (day by default) and whether it met the objective (pure).

A period ``(p, p + every]`` takes the deltas stamped inside it (a delta covers the interval ending at
its stamp); only deltas inside the report window ``(start, end]`` count, so the first and last periods
may be partial. Periods without events are kept and reported as no-data (``sli`` and ``met`` are
``None``), so a gap is visible rather than counted as met.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

__all__ = ["Attainment", "attainment"]


@dataclass(frozen=True)
class Attainment:
    """One period: events, SLI (good ratio) with bounds, its burn rate and whether it met the objective."""

    start: datetime
    total: float
    bad: float
    sli: float | None
    sli_min: float | None
    sli_max: float | None
    burn_rate: float | None
    met: bool | None


def attainment(events: pl.DataFrame, start: datetime, end: datetime, objective: float,
               every: timedelta = timedelta(days=1)) -> list[Attainment]:
    """Per-period SLI over ``(start, end]`` in steps of ``every``, periods aligned to the epoch (UTC days)."""
    if every.total_seconds() <= 0:
        raise ValueError(f"attainment period {every} must be positive")
    if not 0.0 < objective < 1.0:
        raise ValueError(f"objective {objective!r} must be a ratio strictly between 0 and 1")
    step = int(every.total_seconds())
    epoch = datetime(1970, 1, 1)
    first = epoch + timedelta(seconds=int((start - epoch).total_seconds()) // step * step)
    sums: dict[datetime, tuple[float, float, float, float]] = {}
    if not events.is_empty():
        period = (pl.col("ts") - pl.duration(microseconds=1)).dt.truncate(f"{step}s").alias("period")
        grouped = (events.filter((pl.col("ts") > start) & (pl.col("ts") <= end))
                   .group_by(period)
                   .agg(pl.col("total").sum(), pl.col("bad").sum(), pl.col("bad_min").sum(), pl.col("bad_max").sum()))
        for p, total, bad, bad_min, bad_max in grouped.iter_rows():
            sums[p] = (float(total), float(bad), float(bad_min), float(bad_max))
    out = []
    p = first
    budget = 1.0 - objective
    while p < end:
        total, bad, bad_min, bad_max = sums.get(p, (0.0, 0.0, 0.0, 0.0))
        if total > 0:
            bad = min(max(bad, 0.0), total)
            sli = 1.0 - bad / total
            out.append(Attainment(p, total, bad, sli, 1.0 - min(bad_max, total) / total,
                                  1.0 - max(bad_min, 0.0) / total, (bad / total) / budget, sli >= objective))
        else:
            out.append(Attainment(p, 0.0, 0.0, None, None, None, None, None))
        p += every
    return out
