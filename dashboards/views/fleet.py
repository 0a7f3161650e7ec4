"""Fleet page: GPUs by model and state, live health, lost GPUs, XIDs."""

from __future__ import annotations

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.analytics.fleet import STATES
from gpufleet.dashboards import cached
from gpufleet.dashboards.context import Context
from gpufleet.dashboards.shaping import EVERY, SEVERITIES, bin_every, live_table, xid_nodes, xid_timeline
from gpufleet.dashboards.views.common import chart_kit, csv_download, plot, table

__all__ = ["render", "LIVE_ROWS", "NODE_ROWS", "LIVE_FORMATS"]

COLORS = {"lost": "#7f1d1d", "critical": "#dc2626", "warning": "#f59e0b", "healthy": "#16a34a"}
XID_COLORS = {"critical": "#dc2626", "warning": "#f59e0b", "application": "#6b7280"}
LIVE_ROWS = 25  # GPUs listed under "Live health", least healthy first; the rest are in the download
NODE_ROWS = 20  # nodes listed under "XIDs by node", worst first
LIVE_FORMATS = {"utilization_ratio": "{:.0%}", "temperature_celsius": "{:.0f}", "power_watts": "{:,.0f}",
                "memory_used_gib": "{:.1f}"}
COUNT_FORMATS = {s: "{:,.0f}" for s in (*SEVERITIES, "total")}


def _states(ctx: Context, by_model: pl.DataFrame) -> None:
    st.subheader("GPUs by model and state")
    long = by_model.unpivot(index="gpu_model", on=list(STATES), variable_name="state", value_name="gpus")
    plot(ctx, chart_kit(ctx).bars(long, "gpus", "gpu_model", "state", order=STATES, colors=COLORS,
                                  value_title="GPUs"))
    table(by_model)


def _live(gpus: pl.DataFrame) -> None:
    st.subheader("Live health")
    live = live_table(gpus)
    table(live, formats=LIVE_FORMATS, limit=LIVE_ROWS, download="gpufleet-live-health.csv",
          note="Least healthy first.")


def _xids(ctx: Context, events: pl.DataFrame, xids: pl.DataFrame) -> None:
    st.subheader("XIDs")
    if xids.height == 0:
        st.success("No XID errors in this window.", icon=":material/check_circle:")
        return
    table(xids, formats={"events": "{:,.0f}"})
    every = bin_every(ctx.start, ctx.end)
    plot(ctx, chart_kit(ctx).time_bars(xid_timeline(events, every), "ts", "events", "severity", EVERY[every],
                                       order=SEVERITIES, colors=XID_COLORS, value_title=f"events per {every}"))
    st.markdown("**XIDs by node**, most critical first")
    table(xid_nodes(events), formats=COUNT_FORMATS, limit=NODE_ROWS, download="gpufleet-xid-nodes.csv")
    csv_download(f"Download all {events.height:,} XID events (CSV)", events, "gpufleet-xid-events.csv",
                 "fleet_xid_dl")


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

    _states(ctx, snap.by_model_state)

    st.subheader("Lost GPUs")
    if snap.lost.height:
        table(snap.lost)
    else:
        st.success("No GPU is lost: every GPU answered its last scrape.", icon=":material/check_circle:")

    _live(snap.gpus)
    _xids(ctx, snap.events, snap.xids)
