"""Load forecasts with prediction intervals, backtested against a seasonal-naive baseline.

The seasonal model is an ETS model (additive error and daily seasonality; Holt-Winters in state-space
form, with a damped trend once there are four seasons of history) from statsmodels, imported lazily.
Every forecast is backtested on the last season of history held out, and the seasonal-naive
forecast (the same hour one season earlier) is always reported beside it with its own errors.
Too little history for a seasonal model falls back to the naive forecasts with a message.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Forecast", "Backtest", "ForecastResult", "forecast_series", "seasonal_naive", "naive", "mape", "mase",
           "NORMAL_Z"]

NORMAL_Z = {0.8: 1.2815515655446004, 0.9: 1.6448536269514722, 0.95: 1.959963984540054, 0.99: 2.5758293035489004}


@dataclass(frozen=True)
class Forecast:
    """Point forecast and a central prediction interval at ``level`` for ``len(mean)`` steps ahead."""

    method: str  # ets | seasonal_naive | naive
    mean: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    level: float


@dataclass(frozen=True)
class Backtest:
    """Errors of a method on held-out history (MAPE in percent; MASE against in-sample seasonal naive)."""

    method: str
    holdout: int
    mape_pct: float | None
    mase: float | None


@dataclass(frozen=True)
class ForecastResult:
    """The chosen forecast, the seasonal-naive baseline beside it, and both backtests."""

    forecast: Forecast
    baseline: Forecast
    backtests: tuple[Backtest, ...] = ()
    message: str = ""
    history: int = 0
    season: int = 24
    notes: tuple[str, ...] = field(default_factory=tuple)

    def backtest(self, method: str) -> Backtest | None:
        """The backtest of ``method``, if one ran."""
        return next((b for b in self.backtests if b.method == method), None)


def _z(level: float) -> float:
    if level in NORMAL_Z:
        return NORMAL_Z[level]
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def _clip(a: np.ndarray) -> tuple[float, ...]:
    return tuple(float(x) for x in np.clip(a, 0.0, None))


def naive(y: np.ndarray, horizon: int, level: float = 0.9) -> Forecast:
    """Last value carried forward; the interval widens with sqrt(h) by the one-step difference spread."""
    y = np.asarray(y, dtype=float)
    if len(y) == 0:
        raise ValueError("cannot forecast an empty series")
    sd = float(np.std(np.diff(y), ddof=1)) if len(y) > 2 else 0.0
    h = np.arange(1, horizon + 1)
    mean = np.full(horizon, y[-1])
    half = _z(level) * sd * np.sqrt(h)
    return Forecast("naive", _clip(mean), _clip(mean - half), _clip(mean + half), level)


def seasonal_naive(y: np.ndarray, horizon: int, season: int, level: float = 0.9) -> Forecast:
    """The value one season earlier; the interval widens with sqrt(seasons ahead)."""
    y = np.asarray(y, dtype=float)
    if len(y) < season:
        raise ValueError(f"seasonal naive needs at least one season ({season} points), got {len(y)}")
    h = np.arange(horizon)
    mean = y[len(y) - season + (h % season)]
    diffs = y[season:] - y[:-season]
    sd = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0
    half = _z(level) * sd * np.sqrt(h // season + 1)
    return Forecast("seasonal_naive", _clip(mean), _clip(mean - half), _clip(mean + half), level)


def mape(actual: np.ndarray, predicted: np.ndarray) -> float | None:
    """Mean absolute percentage error over points with a non-zero actual (None when there are none)."""
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    mask = np.abs(a) > 1e-12
    if not mask.any():
        return None
    return float(np.mean(np.abs((a[mask] - p[mask]) / a[mask])) * 100)


def mase(actual: np.ndarray, predicted: np.ndarray, train: np.ndarray, season: int) -> float | None:
    """Mean absolute scaled error: MAE over the in-sample MAE of the seasonal (or, if too short, lag-1) naive."""
    train = np.asarray(train, float)
    lag = season if len(train) > season else 1
    if len(train) <= lag:
        return None
    scale = float(np.mean(np.abs(train[lag:] - train[:-lag])))
    if scale <= 1e-12:
        return None
    return float(np.mean(np.abs(np.asarray(actual, float) - np.asarray(predicted, float))) / scale)


def _ets(y: np.ndarray, horizon: int, season: int, level: float) -> Forecast:
    """ETS on log(y + shift): multiplicative seasonality and errors, so peaks scale with the level."""
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    shift = max(1.0, 0.01 * float(np.mean(np.abs(y))))
    z = np.log(np.clip(y, 0.0, None) + shift)
    damped = len(y) >= 4 * season
    model = ETSModel(pd.Series(z), error="add", trend="add" if damped else None, damped_trend=damped,
                     seasonal="add", seasonal_periods=season)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(disp=False, maxiter=300)
        frame = fit.get_prediction(start=len(z), end=len(z) + horizon - 1).summary_frame(alpha=1 - level)
    mean, lower, upper = (np.exp(frame[c].to_numpy()) - shift for c in ("mean", "pi_lower", "pi_upper"))
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(upper))):
        raise ValueError("the ETS fit did not give finite forecasts")
    return Forecast("ets", _clip(mean), _clip(lower), _clip(upper), level)


def _score(method: str, fc: Forecast, actual: np.ndarray, train: np.ndarray, season: int) -> Backtest:
    pred = np.asarray(fc.mean)
    m = mape(actual, pred)
    s = mase(actual, pred, train, season)
    return Backtest(method, len(actual), None if m is None else round(m, 3), None if s is None else round(s, 4))


def forecast_series(values: np.ndarray | list[float], horizon: int, season: int = 24, level: float = 0.9,
                    holdout: int | None = None) -> ForecastResult:
    """Forecast ``horizon`` steps of an evenly spaced, gap-free series (NaN are not allowed)."""
    y = np.asarray(values, dtype=float)
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 step, got {horizon}")
    if season < 2:
        raise ValueError(f"season must be >= 2 steps, got {season}")
    if not 0 < level < 1:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    if len(y) == 0:
        raise ValueError("no history to forecast from")
    if not np.all(np.isfinite(y)):
        raise ValueError("history has missing or non-finite values; fill gaps before forecasting")
    hold = season if holdout is None else holdout
    if len(y) < season:
        fc = naive(y, horizon, level)
        return ForecastResult(fc, fc, (), f"only {len(y)} points, less than one season ({season}): naive forecast",
                              len(y), season)
    baseline = seasonal_naive(y, horizon, season, level)
    if len(y) < 2 * season + hold:
        msg = (f"only {len(y)} points; a seasonal model needs {2 * season + hold} (two seasons plus a held-out "
               f"season): seasonal-naive forecast")
        tests: tuple[Backtest, ...] = ()
        if len(y) >= season + hold and hold > 0:
            train, test = y[:-hold], y[-hold:]
            tests = (_score("seasonal_naive", seasonal_naive(train, hold, season, level), test, train, season),)
        return ForecastResult(baseline, baseline, tests, msg, len(y), season)
    train, test = y[:-hold], y[-hold:]
    tests_list = [_score("seasonal_naive", seasonal_naive(train, hold, season, level), test, train, season),
                  _score("naive", naive(train, hold, level), test, train, season)]
    notes: list[str] = []
    try:
        tests_list.insert(0, _score("ets", _ets(train, hold, season, level), test, train, season))
        fc = _ets(y, horizon, season, level)
        msg = ""
    except ImportError:
        fc = baseline
        msg = "statsmodels is not installed (pip install 'gpufleet[forecast]'): seasonal-naive forecast"
    except (ValueError, np.linalg.LinAlgError) as exc:
        fc = baseline
        msg = f"the ETS fit failed ({exc}): seasonal-naive forecast"
    if not math.isclose(level, 0.9):
        notes.append(f"intervals at {level:.0%}")
    return ForecastResult(fc, baseline, tuple(tests_list), msg, len(y), season, tuple(notes))
