"""Capacity page: request-load forecast with intervals, replicas for a latency objective, slider what-ifs."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.analytics.capacity.erlang import servers_for_slo
from gpufleet.dashboards import cached
from gpufleet.dashboards.context import Context
from gpufleet.dashboards.labels import header
from gpufleet.dashboards.views.common import chart_kit, plot

__all__ = ["render"]


def _forecast(ctx: Context) -> float | None:
    hist = cached.requests(ctx.db, ctx.mtime, ctx.start, ctx.end, ctx.filters.opt("model"))
    if hist.height < 3:
        st.info("Not enough hourly request history in this window to forecast (need 3 hours or more).",
                icon=":material/filter_alt_off:")
        return None
    horizon = st.slider("Forecast horizon (hours)", 6, 168, 24, key="cap_horizon")
    res = cached.forecast(ctx.db, ctx.mtime, ctx.start, ctx.end, ctx.filters.opt("model"), horizon)
    fc = res.forecast
    last = hist["ts"].max()
    future = pl.DataFrame({"ts": [last + timedelta(hours=i + 1) for i in range(horizon)],  # type: ignore[operator]
                           "mean": fc.mean, "lower": fc.lower, "upper": fc.upper})
    peak = float(max(fc.upper))
    c = st.columns(3)
    c[0].metric("Peak hour (history)", f"{float(hist['requests'].to_numpy().max()):,.0f} req/h")
    c[1].metric("Forecast peak (90% upper)", f"{peak:,.0f} req/h")
    c[2].metric("Method", header(fc.method))
    plot(ctx, chart_kit(ctx).forecast_band(hist, future))
    st.caption("Blue: requests per hour; orange: the forecast and its 90% interval.")
    model, base = res.backtest(fc.method), res.backtest("seasonal_naive")
    if model is not None and base is not None and fc.method != "seasonal_naive":
        st.caption(f"Backtest over the last {model.origins} day(s): MASE {model.mase} vs {base.mase} for seasonal "
                   f"naive (MAPE {model.mape_pct}% vs {base.mape_pct}%).")
    if res.message:
        st.caption(res.message[:1].upper() + res.message[1:])
    return peak / 3600


def render(ctx: Context) -> None:
    """Draw the Capacity page."""
    st.header("Capacity")
    rate = _forecast(ctx)
    st.subheader("Replicas for a queueing-delay objective (M/M/c)")
    c = st.columns(4)
    arrival = c[0].number_input("Arrivals (req/s)", 0.0, 1e6, round(rate or 10.0, 2), key="cap_rate")
    growth = c[1].slider("Traffic growth", 0.5, 3.0, 1.0, 0.05, key="cap_growth")
    service = c[2].number_input("Requests/s one replica serves", 0.01, 1e4, 2.0, key="cap_service")
    wait = c[3].select_slider("p99 queue wait (s)", [0.05, 0.1, 0.25, 0.5, 1.0, 2.0], value=0.5, key="cap_wait")
    sizing = servers_for_slo(arrival * growth, service, wait, quantile=0.99, max_utilization=0.9)
    m = st.columns(4)
    m[0].metric("Replicas needed", f"{sizing.servers}")
    m[1].metric("Utilization", f"{sizing.utilization:.0%}")
    m[2].metric("p99 queue wait", f"{sizing.wait_quantile_s:.3f} s")
    m[3].metric("Bound by", sizing.binding)
