"""SLOs page: latency percentiles per model, attainment against TTFT / ITL objectives, error budget left."""

from __future__ import annotations

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.dashboards import cached
from gpufleet.dashboards.context import Context
from gpufleet.dashboards.queries import latency_table
from gpufleet.dashboards.views.common import table

__all__ = ["render", "budget_left"]

TTFT = "gpufleet_serving_time_to_first_token_seconds"
ITL = "gpufleet_serving_inter_token_latency_seconds"


def budget_left(attainment: float, objective: float) -> float:
    """Share of the error budget left: 1 - bad / allowed (negative when the budget is spent)."""
    allowed = 1 - objective
    return 1 - (1 - attainment) / allowed if allowed > 0 else 0.0


def render(ctx: Context) -> None:
    """Draw the SLOs page."""
    st.header("SLOs")
    cols = st.columns(3)
    ttft = cols[0].select_slider("TTFT objective (s)", [0.25, 0.5, 0.75, 1.0, 2.5, 5.0], value=2.5, key="slo_ttft")
    itl = cols[1].select_slider("ITL objective (s)", [0.025, 0.05, 0.075, 0.1, 0.15, 0.2], value=0.1,
                                key="slo_itl")
    objective = cols[2].select_slider("Target", [0.9, 0.95, 0.99, 0.995, 0.999], value=0.99, key="slo_target")
    buckets = cached.latency(ctx.db, ctx.mtime, ctx.start, ctx.end, ctx.filters.opt("model"))
    latency = latency_table(buckets, {TTFT: ttft, ITL: itl})
    if latency.height == 0:
        st.info("No serving latency in this window (no inference engines scraped).", icon=":material/filter_alt_off:")
        return
    slo = latency.filter(pl.col("within_slo").is_not_null()).with_columns(
        budget_left=pl.col("within_slo").map_elements(lambda a: budget_left(a, objective), return_dtype=pl.Float64),
        met=pl.col("within_slo") >= objective)
    met = int(slo["met"].sum())
    c = st.columns(3)
    c[0].metric("SLOs met", f"{met} of {slo.height}")
    worst = slo.sort("within_slo").row(0, named=True)
    c[1].metric("Worst attainment", f"{worst['within_slo']:.2%}", help=f"{worst['metric']} {worst['model']}")
    c[2].metric("Models", f"{latency['model'].n_unique()}")
    st.subheader("Attainment and error budget")
    table(slo.select("metric", "model", "observations", "within_slo", "budget_left", "met"),
          formats={"observations": "{:,.0f}", "within_slo": "{:.2%}", "budget_left": "{:.1%}"})
    st.subheader("Latency percentiles")
    table(latency.drop("within_slo"), formats={"observations": "{:,.0f}"})
