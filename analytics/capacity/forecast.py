"""Load forecasts with prediction intervals, chosen by a rolling-origin backtest against naive baselines.

The seasonal models are additive Holt-Winters (ETS(A,N,A)) on log(y + shift), so seasonal peaks scale with
the level, fitted by statsmodels (imported lazily): one with a daily period and, once there are two weeks of
history before every backtest origin, one with a weekly period (daily shape and weekday/weekend together).
Every model and both naive baselines (the same hour one season earlier; the last value) are backtested on
the last ``origins`` seasons of history, each forecast from the history before it, and the errors averaged.
The forecast comes from the method with the lowest backtest MASE, seasonal naive included, so a seasonal
model is used only where it beat the baseline on this series. Too little history for a seasonal model
falls back to the naive forecasts with a message.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Forecast", "Backtest", "ForecastResult", "forecast_series", "seasonal_naive", "naive", "holt_winters",
           "mape", "mase", "NORMAL_Z"]

NORMAL_Z = {0.8: 1.2815515655446004, 0.9: 1.6448536269514722, 0.95: 1.959963984540054, 0.99: 2.5758293035489004}


@dataclass(frozen=True)
class Forecast:
    """Point forecast and a central prediction interval at ``level`` for ``len(mean)`` steps ahead."""

    method: str  # holt_winters_daily | holt_winters_weekly | seasonal_naive | naive
    mean: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    level: float


@dataclass(frozen=True)
class Backtest:
    """Errors of a method on held-out history (MAPE in percent; MASE against in-sample seasonal naive).

    ``holdout`` points per origin, averaged over ``origins`` rolling origins.
    """

    method: str
    holdout: int
    mape_pct: float | None
    mase: float | None
    origins: int = 1


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


def _log(y: np.ndarray) -> tuple[np.ndarray, float]:
    shift = max(1.0, 0.01 * float(np.mean(np.abs(y))))
    return np.log(np.clip(y, 0.0, None) + shift), shift


def holt_winters(y: np.ndarray, horizon: int, period: int, level: float = 0.9) -> Forecast:
    """Additive Holt-Winters on log(y + shift) with closed-form ETS(A,N,A) prediction intervals.

    The h-step variance is sigma^2 (1 + (h - 1) alpha^2 + k gamma (2 alpha + gamma)) with k the number of
    whole seasons before step h (Hyndman et al., Forecasting with Exponential Smoothing, class 1 models);
    sigma^2 is the in-sample one-step residual variance. Needs two seasons of history.
    """
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = np.asarray(y, dtype=float)
    if len(y) < 2 * period:
        raise ValueError(f"Holt-Winters with period {period} needs {2 * period} points, got {len(y)}")
    z, shift = _log(y)
    init = "heuristic" if len(z) >= 2 * period + 10 else "estimated"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ExponentialSmoothing(z, trend=None, seasonal="add", seasonal_periods=period,
                                   initialization_method=init).fit()
        mean = np.asarray(fit.forecast(horizon), dtype=float)
    alpha = float(fit.params["smoothing_level"])
    gamma = float(fit.params.get("smoothing_seasonal") or 0.0)
    resid = z - np.asarray(fit.fittedvalues, dtype=float)
    sigma2 = float(np.mean(resid[period:] ** 2)) if len(resid) > period else float(np.mean(resid ** 2))
    h = np.arange(1, horizon + 1)
    var = sigma2 * (1 + (h - 1) * alpha**2 + ((h - 1) // period) * gamma * (2 * alpha + gamma))
    half = _z(level) * np.sqrt(var)
    if not np.all(np.isfinite(mean + half)):
        raise ValueError("the Holt-Winters fit did not give finite forecasts")
    name = "holt_winters_weekly" if period > 24 and period % 7 == 0 else "holt_winters_daily"
    return Forecast(name, _clip(np.exp(mean) - shift), _clip(np.exp(mean - half) - shift),
                    _clip(np.exp(mean + half) - shift), level)


def _backtest(method: str, fn: Callable[[np.ndarray, int], Forecast], y: np.ndarray, hold: int, origins: int,
              season: int) -> Backtest:
    """Forecast each of the last ``origins`` blocks of ``hold`` points from the history before it; mean errors."""
    mapes: list[float] = []
    mases: list[float] = []
    for o in range(origins):
        end = len(y) - o * hold
        train, test = y[:end - hold], y[end - hold:end]
        pred = np.asarray(fn(train, hold).mean)
        m, s = mape(test, pred), mase(test, pred, train, season)
        if m is not None:
            mapes.append(m)
        if s is not None:
            mases.append(s)
    return Backtest(method, hold, round(float(np.mean(mapes)), 3) if mapes else None,
                    round(float(np.mean(mases)), 4) if mases else None, origins)


def _rank(b: Backtest) -> tuple[float, float]:
    return (b.mase if b.mase is not None else math.inf, b.mape_pct if b.mape_pct is not None else math.inf)


def forecast_series(values: np.ndarray | list[float], horizon: int, season: int = 24, level: float = 0.9,
                    holdout: int | None = None, origins: int = 7) -> ForecastResult:
    """Forecast ``horizon`` steps of an evenly spaced, gap-free series (NaN are not allowed).

    ``season`` is the daily period in steps (24 for hourly data); the weekly model uses ``7 * season``.
    The backtest holds out ``holdout`` steps (default one season) at up to ``origins`` rolling origins.
    """
    y = np.asarray(values, dtype=float)
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 step, got {horizon}")
    if season < 2:
        raise ValueError(f"season must be >= 2 steps, got {season}")
    if not 0 < level < 1:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    if origins < 1:
        raise ValueError(f"backtest origins must be >= 1, got {origins}")
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
            tests = (_backtest("seasonal_naive", lambda t, h: seasonal_naive(t, h, season, level), y, hold, 1,
                               season),)
        return ForecastResult(baseline, baseline, tests, msg, len(y), season)
    n_orig = max(1, min(origins, (len(y) - 2 * season) // hold))
    week = 7 * season
    models: dict[str, Callable[[np.ndarray, int], Forecast]] = {
        "holt_winters_daily": lambda t, h: holt_winters(t, h, season, level)}
    if len(y) - n_orig * hold >= 2 * week:
        models["holt_winters_weekly"] = lambda t, h: holt_winters(t, h, week, level)
    tests_list = [_backtest("seasonal_naive", lambda t, h: seasonal_naive(t, h, season, level), y, hold, n_orig,
                            season),
                  _backtest("naive", lambda t, h: naive(t, h, level), y, hold, n_orig, season)]
    notes: list[str] = []
    msg = ""
    fitted: list[Backtest] = []
    for name, fn in models.items():
        try:
            fitted.append(_backtest(name, fn, y, hold, n_orig, season))
        except ImportError:
            msg = "statsmodels is not installed (pip install 'gpufleet[forecast]'): seasonal-naive forecast"
            break
        except (ValueError, np.linalg.LinAlgError) as exc:
            notes.append(f"{name} skipped: {exc}")
    tests_list = fitted + tests_list
    # seasonal naive first, so that it wins ties (a flat series): a model must beat it to be used
    best = min([tests_list[len(fitted)], *fitted], key=_rank)
    fc = baseline
    if best.method in models:
        try:
            fc = models[best.method](y, horizon)
        except (ValueError, np.linalg.LinAlgError) as exc:
            msg = f"the {best.method} fit failed ({exc}): seasonal-naive forecast"
    elif fitted and not msg:
        msg = "seasonal naive beat the seasonal models in the backtest: seasonal-naive forecast"
    if not math.isclose(level, 0.9):
        notes.append(f"intervals at {level:.0%}")
    return ForecastResult(fc, baseline, tuple(tests_list), msg, len(y), season, tuple(notes))
