"""Burn rates and budget against hand-computed values."""

import pytest

from gpufleet.analytics.slo.budget import budget_remaining, burn_rate, hours_to_exhaustion


@pytest.mark.parametrize(
    ("bad", "total", "objective", "burn"),
    [(1, 1000, 0.999, 1.0), (144, 10000, 0.999, 14.4), (6, 1000, 0.999, 6.0), (5, 100, 0.99, 5.0), (0, 50, 0.99, 0.0)],
)
def test_burn_rate(bad: float, total: float, objective: float, burn: float) -> None:
    """Burn = (bad/total) / (1 - objective)."""
    assert burn_rate(bad, total, objective) == pytest.approx(burn)


def test_no_data_and_remaining() -> None:
    """An empty window is no-data; 25 % of the budget spent leaves 0.75, lasting 0.75*720/3 h at 3x."""
    assert burn_rate(0, 0, 0.999) is None
    assert budget_remaining(25, 100000, 0.999) == pytest.approx(0.75)
    assert hours_to_exhaustion(0.75, 3.0, 720.0) == pytest.approx(180.0)
    assert hours_to_exhaustion(-0.1, 3.0, 720.0) == 0.0
