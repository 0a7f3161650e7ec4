"""Forecasts: backtests on simulated history, the naive fallback, intervals."""

import numpy as np
import pytest

from gpufleet.analytics.capacity.demand import hourly_demand
from gpufleet.analytics.capacity.forecast import forecast_series, holt_winters, mape, mase, seasonal_naive


def diurnal(days: int, seed: int = 1, growth: float = 0.02) -> np.ndarray:
    """Hourly load: a daily cycle that grows a little each day, with multiplicative noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    level = 1000 * (1 + growth) ** (t / 24)
    return level * (1 + 0.6 * np.sin(2 * np.pi * (t % 24) / 24)) * rng.lognormal(0, 0.08, len(t))


def test_holt_winters_beats_naive_baselines_on_noisy_seasonal_history() -> None:
    res = forecast_series(diurnal(10), horizon=24)
    hw, snaive, last = res.backtest("holt_winters_daily"), res.backtest("seasonal_naive"), res.backtest("naive")
    assert res.forecast.method == "holt_winters_daily" and res.message == ""
    assert hw is not None and snaive is not None and last is not None
    assert hw.origins == snaive.origins == last.origins == 7 and hw.holdout == 24
    assert hw.mase < snaive.mase < last.mase
    assert hw.mape_pct < snaive.mape_pct
    # too short for the weekly model to be trained at every origin: not tried
    assert res.backtest("holt_winters_weekly") is None
    # the baseline is always reported beside the model
    assert res.baseline.method == "seasonal_naive" and len(res.baseline.mean) == 24
    assert all(lo <= m <= hi for lo, m, hi in zip(res.forecast.lower, res.forecast.mean, res.forecast.upper, strict=True))


def test_seasonal_model_beats_seasonal_naive_on_simulated_fleet(sim_con, request_forecasts) -> None:
    # Three weeks of simulated traffic with quieter weekends: the weekly Holt-Winters model is chosen by
    # the backtest and beats the (daily) seasonal-naive baseline and the last value on every service.
    assert request_forecasts, "the simulated fleet serves requests"
    series = hourly_demand(sim_con, "requests")
    assert {r["key"] for r in request_forecasts} == set(series)
    for row in request_forecasts:
        assert row["method"] == "holt_winters_weekly" and row["history_h"] == len(series[row["key"]]) >= 21 * 24
        assert row["message"] == ""
        assert row["mase"] < 0.5 * row["baseline_mase"]
        assert row["mape_pct"] < 0.5 * row["baseline_mape_pct"]
        assert row["mase"] < row["last_value_mase"]
        assert row["mape_pct"] < row["last_value_mape_pct"]


def test_backtest_picks_seasonal_naive_when_it_wins() -> None:
    # A perfectly repeating day: nothing beats the same hour yesterday, so it is used, with a message.
    day = np.array([5.0, 9.0, 30.0, 12.0] * 6)
    res = forecast_series(np.tile(day, 6), horizon=24)
    assert res.forecast.method == "seasonal_naive"
    assert "seasonal naive beat the seasonal models" in res.message
    assert res.forecast.mean == tuple(day)
    assert res.backtest("seasonal_naive").mase is None  # a zero in-sample scale: MASE undefined
    assert res.backtest("seasonal_naive").mape_pct == 0.0


def test_holt_winters_intervals_widen_with_the_horizon() -> None:
    fc = holt_winters(diurnal(10), 48, 24, level=0.9)
    width = np.array(fc.upper) - np.array(fc.lower)
    assert np.all(np.diff(width[0:24:6] / np.array(fc.mean)[0:24:6]) >= -1e-9)
    wide = holt_winters(diurnal(10), 48, 24, level=0.99)
    assert np.all(np.array(wide.upper) >= np.array(fc.upper)) and np.all(np.array(wide.lower) <= np.array(fc.lower))
    with pytest.raises(ValueError, match="needs 48 points"):
        holt_winters(diurnal(1), 4, 24)


@pytest.mark.parametrize(("n", "method", "needle"), [
    (10, "naive", "less than one season"),
    (40, "seasonal_naive", "a seasonal model needs 72"),
])
def test_short_history_falls_back_with_message(n: int, method: str, needle: str) -> None:
    res = forecast_series(diurnal(3)[:n], horizon=6)
    assert res.forecast.method == method
    assert needle in res.message


def test_seasonal_naive_repeats_last_season() -> None:
    y = np.arange(48, dtype=float)
    assert seasonal_naive(y, 3, 24).mean == (24.0, 25.0, 26.0)


@pytest.mark.parametrize(("actual", "pred", "expected"), [
    ([100, 200], [110, 180], 10.0),
    ([0, 50], [5, 25], 50.0),   # zero actuals are skipped
])
def test_mape(actual, pred, expected) -> None:
    assert mape(np.array(actual), np.array(pred)) == pytest.approx(expected)


def test_mase_scales_by_in_sample_seasonal_naive() -> None:
    train = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 3.0])  # season 2: |1-1|,|2-2|,|1-1|,|3-2| -> mean 0.25
    assert mase(np.array([2.0]), np.array([1.5]), train, 2) == pytest.approx(2.0)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        forecast_series([1.0, float("nan")] * 30, 4)
    with pytest.raises(ValueError, match="horizon"):
        forecast_series([1.0] * 30, 0)
