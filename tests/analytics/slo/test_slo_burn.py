"""Window budgets, multi-window multi-burn-rate states and daily attainment against hand-computed values."""

from datetime import datetime, timedelta

import polars as pl
import pytest

from gpufleet.analytics.slo.attainment import attainment
from gpufleet.analytics.slo.mwmb import burn_conditions, burn_states, overall_state
from gpufleet.analytics.slo.windows import counts_in, window_budget

T0 = datetime(2026, 1, 1)
STEP = timedelta(minutes=5)


def _events(rows: list[tuple[datetime, float, float]]) -> pl.DataFrame:
    return pl.DataFrame([(t, tot, bad, bad, bad) for t, tot, bad in rows],
                        schema={"ts": pl.Datetime("us"), "total": pl.Float64, "bad": pl.Float64,
                                "bad_min": pl.Float64, "bad_max": pl.Float64}, orient="row")


@pytest.mark.parametrize(
    ("period_days", "factors"),
    [(30, (14.4, 6.0, 3.0, 1.0)), (28, (13.44, 5.6, 2.8, 0.9333))],
)
def test_burn_conditions_table(period_days: int, factors: tuple[float, ...]) -> None:
    """SRE workbook table: 2 % / 5 % / 10 % / 10 % of the budget in 1h / 6h / 1d / 3d; short = long / 12."""
    conds = burn_conditions(period_days * 86400)
    assert [(c.severity, c.long_s, c.short_s) for c in conds] == [
        ("page", 3600, 300), ("page", 21600, 1800), ("ticket", 86400, 7200), ("ticket", 259200, 21600)]
    assert [c.factor for c in conds] == pytest.approx(factors, abs=1e-4)


W1 = T0 + STEP
W2 = T0 + 2 * STEP
W3 = T0 + 3 * STEP
THREE = _events([(W1, 100, 1), (W2, 100, 0), (W3, 100, 3)])


@pytest.mark.parametrize(
    ("start", "end", "total", "bad", "burn", "remaining"),
    [
        (T0, W3, 300, 4, 4 / 300 / 0.01, 1 - 4 / 300 / 0.01),
        (W1, W3, 200, 3, 1.5, -0.5),  # (start, end]: the delta stamped at W1 covers the interval before it
        (T0, W2, 200, 1, 0.5, 0.5),
        (W3, W3 + STEP, 0, 0, None, None),  # nothing in the window: no data
    ],
)
def test_window_budget_table(start: datetime, end: datetime, total: float, bad: float, burn: float | None,
                             remaining: float | None) -> None:
    """Burn = bad ratio / (1 - objective) over (start, end]; no events gives None, never 0 or 100 %."""
    b = window_budget(THREE, end, end - start, 0.99)
    assert (b.counts.total, b.counts.bad) == (total, bad)
    if burn is None:
        assert b.sli is None and b.burn_rate is None and b.budget_remaining is None
    else:
        assert b.burn_rate == pytest.approx(burn)
        assert b.budget_remaining == pytest.approx(remaining)
        assert b.sli == pytest.approx(1 - bad / total)


def test_counts_in_keeps_bounds() -> None:
    """Interpolation bounds are summed alongside the estimate."""
    ev = THREE.with_columns(bad_min=pl.col("bad") - 0.5, bad_max=pl.col("bad") + 0.5)
    c = counts_in(ev, T0, W3)
    assert (c.bad_min, c.bad, c.bad_max) == (2.5, 4.0, 5.5)


def _three_days(bad_of: object) -> pl.DataFrame:
    """Three days of 5-minute intervals, 100 requests each; ``bad_of(i)`` bad ones in interval ``i`` (0 = oldest)."""
    n = 3 * 288
    return _events([(T0 + (i + 1) * STEP, 100.0, bad_of(i)) for i in range(n)])  # type: ignore[operator]


END = T0 + 3 * 288 * STEP
LAST_HOUR = range(3 * 288 - 12, 3 * 288)
HOUR_BEFORE = range(3 * 288 - 36, 3 * 288 - 24)


@pytest.mark.parametrize(
    ("bad_of", "burns", "firing", "state"),
    [
        # quiet: 0.05 bad per 100 -> 0.05 % errors, burn 0.5 in every window at 99.9 %
        (lambda i: 0.05, [(0.5, 0.5)] * 4, [False] * 4, "ok"),
        # the last hour at 2 %: 1h/5m burn 20 (> 14.4, pages); 6h: (24 + 60 x 0.05) / 7200 -> 3.75;
        # 1d: (24 + 276 x 0.05) / 28800 -> 1.3125, its 2h: (24 + 12 x 0.05) / 2400 -> 10.25;
        # 3d: (24 + 852 x 0.05) / 86400 -> 0.7708
        (lambda i: 2.0 if i in LAST_HOUR else 0.05,
         [(20, 20), (3.75, 20), (1.3125, 10.25), (66.6 / 86.4, 3.75)], [True, False, False, False], "page"),
        # the same hour, over two hours ago: long windows remember it, short ones do not -> nothing fires
        (lambda i: 2.0 if i in HOUR_BEFORE else 0.05,
         [(0.5, 0.5), (3.75, 0.5), (1.3125, 0.5), (66.6 / 86.4, 3.75)], [False] * 4, "ok"),
        # a slow leak at 0.4 %: burn 4 everywhere; only the ticket windows (3 and 1) fire
        (lambda i: 0.4, [(4, 4)] * 4, [False, False, True, True], "ticket"),
    ],
)
def test_burn_states_table(bad_of: object, burns: list[tuple[float, float]], firing: list[bool], state: str) -> None:
    """Both windows must exceed the factor; the state is the most severe firing condition."""
    states = burn_states(_three_days(bad_of), END, 0.999, 30 * 86400)
    assert [(s.long_burn, s.short_burn) for s in states] == [pytest.approx(b) for b in burns]
    assert [s.firing for s in states] == firing
    assert overall_state(states) == state


def test_low_traffic_and_no_data() -> None:
    """Under the minimum request rate nothing fires; without events every condition is no-data."""
    states = burn_states(_three_days(lambda i: 50.0), END, 0.999, 30 * 86400, min_request_rate=1.0)
    assert all(s.low_traffic and s.firing is False for s in states)  # 100 per 300 s = 0.33/s < 1/s
    assert overall_state(states) == "ok"
    empty = burn_states(THREE.head(0), END, 0.999, 30 * 86400)
    assert all(s.firing is None for s in empty)
    assert overall_state(empty) == "no data"


def test_attainment_per_day_with_gap() -> None:
    """Each UTC day's SLI; a day without requests is no-data, not met."""
    day = timedelta(days=1)
    ev = _events([(T0 + STEP, 100, 0), (T0 + day, 100, 2),  # both in day 1: (T0, T0 + 1d]
                  (T0 + 2 * day + STEP, 50, 1)])            # day 3
    rows = attainment(ev, T0, T0 + 3 * day, 0.99)
    assert [r.start for r in rows] == [T0, T0 + day, T0 + 2 * day]
    assert [(r.total, r.bad) for r in rows] == [(200, 2), (0, 0), (50, 1)]
    assert rows[0].sli == pytest.approx(0.99) and rows[0].met is True
    assert rows[1].sli is None and rows[1].met is None
    assert rows[2].sli == pytest.approx(0.98) and rows[2].met is False
    assert rows[2].burn_rate == pytest.approx(2.0)
