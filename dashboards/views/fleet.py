"""Fleet page: GPUs by model and state, live health, lost GPUs, XIDs."""

from __future__ import annotations

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.analytics.fleet import STATES
from gpufleet.dashboards import cached
from gpufleet.dashboards.context import Context
from gpufleet.dashboards.views.common import plotly_ready

__all__ = ["render"]

COLORS = {"lost": "#7f1d1d", "critical": "#dc2626", "warning": "#f59e0b", "healthy": "#16a34a"}


def render(ctx: Context) -> None:
    """Draw the Fleet page."""
    f = ctx.filters
    snap = cached.fleet(ctx.db, ctx.mtime, ctx.start, ctx.end, f.opt("cluster"), f.opt("gpu"), f.opt("team"))
    st.header("Fleet")
    st.caption(f"State as of {ctx.end:%Y-%m-%d %H:%M} UTC; XIDs from {ctx.start:%Y-%m-%d %H:%M} UTC.")
    if snap.gpus.height == 0:
        st.info("No GPUs match these filters.", icon=":material/filter_alt_off:")
        return
    counts = snap.state_counts
    cols = st.columns(6)
    cols[0].metric("GPUs", f"{snap.gpus.height:,}")
    for col, state in zip(cols[1:5], ("healthy", "warning", "critical", "lost"), strict=True):
        col.metric(state.capitalize(), f"{counts[state]:,}")
    critical = snap.events.filter(pl.col("severity") == "critical") if snap.events.height else snap.events
    critical_xids = int(critical["count"].sum()) if critical.height else 0
    cols[5].metric("Critical XIDs", f"{critical_xids:,}")

    st.subheader("GPUs by model and state")
    table = snap.by_model_state
    if plotly_ready():
        import plotly.express as px

        long = table.unpivot(index="gpu_model", on=list(STATES), variable_name="state", value_name="gpus")
        fig = px.bar(long.to_pandas(), x="gpus", y="gpu_model", color="state", orientation="h",
                     color_discrete_map=COLORS, category_orders={"state": list(STATES)}, height=120 + 40 * table.height)
        fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0}, yaxis_title=None, legend_title=None)
        st.plotly_chart(fig, width="stretch")
    st.dataframe(table, hide_index=True, width="stretch")

    st.subheader("Lost GPUs")
    if snap.lost.height:
        st.dataframe(snap.lost, hide_index=True, width="stretch")
    else:
        st.success("No GPU is lost: every GPU answered its last scrape.", icon=":material/check_circle:")

    st.subheader("Live health")
    order = {s: i for i, s in enumerate(STATES)}
    live = snap.gpus.with_columns(pl.col("state").replace_strict(order, default=len(STATES)).alias("_o"))
    shown = [c for c in ("state", "reason", "cluster", "node", "gpu_index", "gpu_model", "utilization_ratio",
                         "temperature_celsius", "power_watts", "memory_used_bytes", "namespace", "pod", "team",
                         "gpu_uuid") if c in live.columns]
    live = live.sort("_o", "node", "gpu_index").select(shown)
    if "memory_used_bytes" in live.columns:
        live = live.with_columns((pl.col("memory_used_bytes") / 2**30).round(1).alias("memory_used_bytes")).rename(
            {"memory_used_bytes": "memory_used_gib"})
    st.dataframe(live, hide_index=True, width="stretch", height=min(38 + 35 * live.height, 420),
                 column_config={"utilization_ratio": st.column_config.ProgressColumn(
                     "utilization", min_value=0.0, max_value=1.0, format="percent")})

    st.subheader("XIDs")
    if snap.xids.height == 0:
        st.success("No XID errors in this window.", icon=":material/check_circle:")
        return
    st.dataframe(snap.xids, hide_index=True, width="stretch")
    if plotly_ready():
        import plotly.express as px

        ev = snap.events.with_columns(pl.col("code").cast(pl.Utf8).alias("xid"))
        fig = px.scatter(ev.to_pandas(), x="ts", y="node", color="severity", symbol="xid", hover_data=["message"],
                         color_discrete_map={"critical": "#dc2626", "warning": "#f59e0b", "application": "#6b7280"},
                         height=160 + 24 * ev["node"].n_unique())
        fig.update_traces(marker={"size": 11})
        fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0}, xaxis_title=None, yaxis_title=None)
        st.plotly_chart(fig, width="stretch")
