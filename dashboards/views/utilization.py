"""Utilization page: allocated vs used GPU-hours per team or namespace, idle GPUs and what they would save."""

from __future__ import annotations

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.dashboards import cached
from gpufleet.dashboards.context import Context
from gpufleet.dashboards.views.common import chart_kit, plot, table

__all__ = ["render"]


def render(ctx: Context) -> None:
    """Draw the Utilization page."""
    st.header("Utilization")
    by = st.segmented_control("Group by", ["namespace", "team", "cluster"], default="namespace", key="util_by") \
        or "namespace"
    groups = cached.utilization(ctx.db, ctx.mtime, ctx.start, ctx.end, by)
    chosen = {"team": ctx.filters.team, "cluster": ctx.filters.cluster}.get(by, "")
    if chosen:
        groups = groups.filter(pl.col(by) == chosen)
    if groups.height == 0:
        st.info("No GPU allocations in this window.", icon=":material/filter_alt_off:")
        return
    alloc, used = float(groups["allocated_gpu_hours"].sum()), float(groups["used_gpu_hours"].sum())
    cols = st.columns(3)
    cols[0].metric("Allocated GPU-hours", f"{alloc:,.0f}")
    cols[1].metric("Used GPU-hours", f"{used:,.0f}")
    cols[2].metric("Efficiency", f"{used / alloc:.0%}" if alloc else "-")
    long = groups.unpivot(index=by, on=["allocated_gpu_hours", "used_gpu_hours"], variable_name="kind",
                         value_name="gpu_hours").with_columns(pl.col("kind").str.strip_suffix("_gpu_hours"))
    plot(ctx, chart_kit(ctx).bars(long, "gpu_hours", by, "kind", order=("allocated", "used"),
                                  grouped=True, value_title="GPU-hours"))
    table(groups, formats={"allocated_gpu_hours": "{:,.1f}", "used_gpu_hours": "{:,.1f}", "efficiency": "{:.0%}"})
    st.subheader("Idle and under-used GPUs")
    recs = cached.recommendations(ctx.db, ctx.mtime, ctx.start, ctx.end)
    if recs.height == 0:
        st.success("Every allocated GPU is busy enough: nothing to reclaim.", icon=":material/check_circle:")
        return
    st.metric("Monthly savings if applied", f"${float(recs['monthly_savings_usd'].sum()):,.0f}")
    table(recs, formats={"monthly_savings_usd": "{:,.2f}"}, download="gpufleet-recommendations.csv")
