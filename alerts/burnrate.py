"""Multi-window multi-burn-rate tables: which windows alert at which burn rate for an SLO period.

A burn factor is the fraction of the period's error budget a window may spend, scaled to the window:
``factor = budget_fraction x period_hours / long_window_hours``. With the SRE workbook's fractions
(2% in 1h, 5% in 6h, 10% in 1d, 10% in 3d) a 30-day period gives 14.4 / 6 / 3 / 1 and a 28-day one
13.44 / 5.6 / 2.8 / 0.933. The short window is a twelfth of the long one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BurnWindow", "DEFAULT_FRACTIONS", "burn_table", "windows_of"]


@dataclass(frozen=True)
class BurnWindow:
    """One alerting condition: both windows above ``factor`` times the error budget."""

    tier: str  # page | ticket
    long_s: int
    short_s: int
    factor: float


#: (tier, long window in seconds, fraction of the period's budget spent in that window)
DEFAULT_FRACTIONS: tuple[tuple[str, int, float], ...] = (
    ("page", 3600, 0.02),
    ("page", 6 * 3600, 0.05),
    ("ticket", 86400, 0.10),
    ("ticket", 3 * 86400, 0.10),
)


def burn_table(period_s: float, fractions: tuple[tuple[str, int, float], ...] = DEFAULT_FRACTIONS) -> list[BurnWindow]:
    """The burn windows for an SLO period of ``period_s`` seconds."""
    if period_s <= 0:
        raise ValueError(f"SLO period must be positive, got {period_s}s")
    out = []
    for tier, long_s, fraction in fractions:
        if tier not in ("page", "ticket"):
            raise ValueError(f"burn tier {tier!r} is not 'page' or 'ticket'")
        if not 0 < fraction <= 1:
            raise ValueError(f"budget fraction {fraction} for the {long_s}s window is not in (0, 1]")
        out.append(BurnWindow(tier, long_s, long_s // 12, round(fraction * period_s / long_s, 4)))
    return out


def windows_of(table: list[BurnWindow]) -> list[int]:
    """Every window (seconds) the table needs a recording rule for, shortest first."""
    return sorted({w for b in table for w in (b.long_s, b.short_s)})
