"""Multi-window multi-burn-rate states (Google SRE workbook; Sloth's defaults), evaluated at one instant.

A condition fires when both its long and its short window burn faster than its factor. The factor is
the fraction of the period's budget the long window may spend, scaled to the window:
``factor = fraction x period / long window``. With the workbook's fractions (2 % in 1 h, 5 % in 6 h,
10 % in 1 d, 10 % in 3 d) a 30-day period gives page 1h/5m 14.4 and 6h/30m 6, ticket 1d/2h 3 and
3d/6h 1; a 28-day period gives 13.44 / 5.6 / 2.8 / 0.933. The short window is a twelfth of the long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from gpufleet.analytics.slo.windows import counts_in

__all__ = ["BurnCondition", "BurnState", "FRACTIONS", "burn_conditions", "burn_states", "overall_state"]

#: (severity, long window in seconds, fraction of the period's budget that window may spend)
FRACTIONS: tuple[tuple[str, int, float], ...] = (
    ("page", 3600, 0.02),
    ("page", 6 * 3600, 0.05),
    ("ticket", 86400, 0.10),
    ("ticket", 3 * 86400, 0.10),
)


@dataclass(frozen=True)
class BurnCondition:
    """Fire ``severity`` when both windows burn above ``factor`` times the sustainable rate."""

    severity: str
    long_s: int
    short_s: int
    factor: float


@dataclass(frozen=True)
class BurnState:
    """A condition evaluated at one instant; ``firing`` is ``None`` when a window has no data."""

    condition: BurnCondition
    long_burn: float | None
    short_burn: float | None
    firing: bool | None
    low_traffic: bool = False


def burn_conditions(period_s: float,
                    fractions: tuple[tuple[str, int, float], ...] = FRACTIONS) -> list[BurnCondition]:
    """The burn conditions for an SLO period of ``period_s`` seconds."""
    if period_s <= 0:
        raise ValueError(f"SLO period must be positive, got {period_s} s")
    return [BurnCondition(sev, long_s, long_s // 12, round(frac * period_s / long_s, 4))
            for sev, long_s, frac in fractions]


def _burn(events: pl.DataFrame, end: datetime, seconds: int, budget: float,
          min_rate: float) -> tuple[float | None, bool]:
    c = counts_in(events, end - timedelta(seconds=seconds), end)
    if not c.has_data:
        return None, False
    return (c.bad / c.total) / budget, c.total / seconds < min_rate


def burn_states(events: pl.DataFrame, end: datetime, objective: float, period_s: float,
                min_request_rate: float = 0.0) -> list[BurnState]:
    """Each condition's long and short burn at ``end``; a window under ``min_request_rate`` (events/s) never fires."""
    if not 0.0 < objective < 1.0:
        raise ValueError(f"objective {objective!r} must be a ratio strictly between 0 and 1")
    budget = 1.0 - objective
    out = []
    for cond in burn_conditions(period_s):
        long_burn, long_low = _burn(events, end, cond.long_s, budget, min_request_rate)
        short_burn, short_low = _burn(events, end, cond.short_s, budget, min_request_rate)
        if long_burn is None or short_burn is None:
            out.append(BurnState(cond, long_burn, short_burn, None))
            continue
        low = long_low or short_low
        firing = not low and long_burn > cond.factor and short_burn > cond.factor
        out.append(BurnState(cond, long_burn, short_burn, firing, low))
    return out


def overall_state(states: list[BurnState]) -> str:
    """``page`` or ``ticket`` when such a condition fires, else ``ok``; ``no data`` when nothing could be evaluated."""
    for severity in ("page", "ticket"):
        if any(s.firing and s.condition.severity == severity for s in states):
            return severity
    if all(s.firing is None for s in states):
        return "no data"
    return "ok"
