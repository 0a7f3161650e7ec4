"""Histogram SLI at any threshold against hand-computed values, with the interpolation bound."""

import math

import pytest

from gpufleet.analytics.slo.sli import SliError, sli_at_threshold

BOUNDS = (0.1, 0.5, 1.0, math.inf)
CUM = (10.0, 60.0, 90.0, 100.0)


@pytest.mark.parametrize(
    ("threshold", "good", "lower", "upper"),
    [
        (0.1, 0.10, 0.10, 0.10),  # at a boundary: exact
        (0.5, 0.60, 0.60, 0.60),
        (1.0, 0.90, 0.90, 0.90),
        (0.3, 0.35, 0.10, 0.60),  # (10 + 50 * 0.2/0.4) / 100
        (0.75, 0.75, 0.60, 0.90),  # (60 + 30 * 0.5) / 100
        (0.05, 0.05, 0.00, 0.10),  # first bucket interpolates from 0
    ],
)
def test_sli_table(threshold: float, good: float, lower: float, upper: float) -> None:
    """Interpolated inside a bucket, exact at a boundary; bound = straddling bucket count / total."""
    sli = sli_at_threshold(BOUNDS, CUM, threshold)
    assert sli.good == pytest.approx(good)
    assert sli.lower == pytest.approx(lower)
    assert sli.upper == pytest.approx(upper)
    assert sli.error_bound == pytest.approx(upper - lower)
    assert sli.total == 100.0


def test_beyond_top_bucket_named() -> None:
    """A threshold above the highest finite bound is an error naming that bound."""
    with pytest.raises(SliError, match="le=1"):
        sli_at_threshold(BOUNDS, CUM, 2.0)


def test_empty_window_is_no_data() -> None:
    """No observations gives no-data, not 0 % or 100 %."""
    sli = sli_at_threshold(BOUNDS, (0.0, 0.0, 0.0, 0.0), 0.5)
    assert sli.good is None
    assert sli.total == 0.0
