"""Money arithmetic in integer cents: split a total so the parts add up to it exactly."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["to_cents", "split_cents"]


def to_cents(usd: float) -> int:
    """Round a dollar amount to whole cents (banker's rounding, through Decimal)."""
    return int((Decimal(repr(usd)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def split_cents(total_cents: int, weights: Sequence[float]) -> list[int]:
    """Split ``total_cents`` in proportion to ``weights`` (largest remainder); the parts sum to the total."""
    wsum = sum(weights)
    if total_cents == 0 or not weights:
        return [0] * len(weights)
    if wsum <= 0:
        weights, wsum = [1.0] * len(weights), float(len(weights))
    exact = [Decimal(total_cents) * Decimal(repr(w)) / Decimal(repr(wsum)) for w in weights]
    parts = [int(e) for e in exact]
    left = total_cents - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (exact[i] - parts[i], -i), reverse=True)
    for i in order[:left]:
        parts[i] += 1
    return parts
