"""Error budget and burn rate (pure): burn = error ratio / (1 - objective)."""

from __future__ import annotations

__all__ = ["burn_rate", "budget_remaining", "hours_to_exhaustion"]


def burn_rate(bad: float, total: float, objective: float) -> float | None:
    """Burn rate of a window; ``None`` when the window has no events (no data, not zero burn)."""
    if not 0.0 < objective < 1.0:
        raise ValueError(f"objective {objective!r} must be a ratio strictly between 0 and 1")
    if total <= 0:
        return None
    return (bad / total) / (1.0 - objective)


def budget_remaining(bad: float, total: float, objective: float) -> float | None:
    """Fraction of the period's error budget left (negative when overspent); ``None`` without data."""
    burn = burn_rate(bad, total, objective)
    return None if burn is None else 1.0 - burn


def hours_to_exhaustion(remaining: float, current_burn: float, period_hours: float) -> float | None:
    """Hours until the budget is gone at the current burn; ``None`` when not burning, 0 when spent."""
    if remaining <= 0:
        return 0.0
    if current_burn <= 0:
        return None
    return remaining * period_hours / current_burn
