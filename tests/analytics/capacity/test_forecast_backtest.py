"""Forecasts: backtests on simulated history, the naive fallback, intervals."""

import numpy as np
import pytest

from gpufleet.analytics.capacity.demand import hourly_demand
from gpufleet.analytics.capacity.forecast import forecast_series, mape, mase, seasonal_naive


def diurnal(days: int, seed: int = 1, growth: float = 0.02) -> np.ndarray:
    """Hourly load: a daily cycle that grows a little each day, with multiplicative noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    level = 1000 * (1 + growth) ** (t / 24)
    return level * (1 + 0.6 * np.sin(2 * np.pi * (t % 24) / 24)) * rng.lognormal(0, 0.08, len(t))


def test_ets_beats_naive_baselines_on_noisy_seasonal_history() -> None:
    res = forecast_series(diurnal(10), horizon=24)
    ets, snaive, last = res.backtest("ets"), res.backtest("seasonal_naive"), res.backtest("naive")
    assert res.forecast.method == "ets" and res.message == ""
    assert ets is not None and snaive is not None and last is not None
    assert ets.mase < snaive.mase < last.mase
    assert ets.mape_pct < snaive.mape_pct
    # the baseline is always reported beside the model
    assert res.baseline.method == "seasonal_naive" and len(res.baseline.mean) == 24
    assert all(lo <= m <= hi for lo, m, hi in zip(res.forecast.lower, res.forecast.mean, res.forecast.upper, strict=True))


def test_seasonal_model_beats_naive_on_simulated_fleet(sim_con, request_forecasts) -> None:
    assert request_forecasts, "the simulated fleet serves requests"
    series = hourly_demand(sim_con, "requests")
    assert {r["key"] for r in request_forecasts} == set(series)
    for row in request_forecasts:
        assert row["method"] == "ets" and row["history_h"] == len(series[row["key"]]) >= 72
        assert row["mase"] < row["last_value_mase"]
        assert row["mape_pct"] < row["last_value_mape_pct"]
        assert row["baseline_mase"] is not None and row["baseline_mape_pct"] is not None


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
