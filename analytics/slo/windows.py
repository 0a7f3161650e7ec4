"""Error budget over any window of an events frame (pure).

A stored delta at ``ts`` covers the scrape interval ending at ``ts``, so a window ``(start, end]``
takes the rows with ``start < ts <= end``. A window without events is no-data: its SLI, burn and
budget are ``None``, never 100 % or 0 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from gpufleet.analytics.slo.budget import budget_remaining, burn_rate

__all__ = ["WindowCounts", "WindowBudget", "counts_in", "window_budget"]


@dataclass(frozen=True)
class WindowCounts:
    """Events in a window: ``bad`` with its interpolation bounds ``bad_min`` <= ``bad`` <= ``bad_max``."""

    total: float
    bad: float
    bad_min: float
    bad_max: float

    @property
    def has_data(self) -> bool:
        """True when the window holds at least one event."""
        return self.total > 0


@dataclass(frozen=True)
class WindowBudget:
    """An SLO over one window: SLI (good ratio) with bounds, burn rate and the window's budget left.

    ``sli_min``/``sli_max`` come from the latency interpolation bound (equal to ``sli`` for
    availability). ``budget_remaining`` is the fraction of this window's error budget not spent
    (negative when overspent). Every ratio is ``None`` when the window has no events.
    """

    start: datetime
    end: datetime
    counts: WindowCounts
    objective: float
    sli: float | None
    sli_min: float | None
    sli_max: float | None
    burn_rate: float | None
    budget_remaining: float | None

    @property
    def request_rate(self) -> float:
        """Events per second over the window."""
        span = (self.end - self.start).total_seconds()
        return self.counts.total / span if span > 0 else 0.0


def counts_in(events: pl.DataFrame, start: datetime, end: datetime) -> WindowCounts:
    """Sum the events with ``start < ts <= end``."""
    if events.is_empty():
        return WindowCounts(0.0, 0.0, 0.0, 0.0)
    row = (events.filter((pl.col("ts") > start) & (pl.col("ts") <= end))
           .select(pl.col("total").sum(), pl.col("bad").sum(), pl.col("bad_min").sum(), pl.col("bad_max").sum())
           .row(0))
    total, bad, bad_min, bad_max = (float(v or 0.0) for v in row)
    # Interpolation can leave a tiny negative bad count through float rounding; clamp to the bounds' range.
    return WindowCounts(total, min(max(bad, 0.0), total), max(bad_min, 0.0), min(bad_max, total))


def window_budget(events: pl.DataFrame, end: datetime, window: timedelta, objective: float) -> WindowBudget:
    """The SLO over ``(end - window, end]``: SLI with its bounds, burn rate, budget remaining."""
    if window.total_seconds() <= 0:
        raise ValueError(f"window {window} must be positive")
    start = end - window
    c = counts_in(events, start, end)
    if not c.has_data:
        return WindowBudget(start, end, c, objective, None, None, None, None, None)
    return WindowBudget(start, end, c, objective,
                        sli=1.0 - c.bad / c.total, sli_min=1.0 - c.bad_max / c.total,
                        sli_max=1.0 - c.bad_min / c.total,
                        burn_rate=burn_rate(c.bad, c.total, objective),
                        budget_remaining=budget_remaining(c.bad, c.total, objective))
