"""Reliability page: failure taxonomy, MTTF and effective training time from the fault events."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.dashboards import cached
from gpufleet.dashboards.context import Context
from gpufleet.dashboards.labels import duration
from gpufleet.dashboards.views.common import table
from gpufleet.dashboards.warmup import JOB_GPUS

if TYPE_CHECKING:
    from gpufleet.analytics.reliability.report import ReliabilityReport

__all__ = ["render", "mttf_hours"]


def mttf_hours(gpu_hours: float, failures: int) -> float | None:
    """Mean time to failure per GPU: GPU-hours observed over critical failures (None without failures)."""
    return gpu_hours / failures if failures else None


def _ettr_terms(rep: ReliabilityReport) -> str:
    """The checkpointing the ETTR tile assumes, and what Young's interval for this failure rate would give."""
    def span(seconds: float) -> str:
        return duration(timedelta(seconds=seconds))

    text = f"ETTR with checkpoints every {span(rep.checkpoint_interval_s)} and {span(rep.restart_s)} to restart " \
           "after a failure."
    if rep.young_interval_s is not None and rep.young_ettr is not None:
        text += (f" At this failure rate, checkpoints every {span(rep.young_interval_s)} (Young's interval) would "
                 f"give {rep.young_ettr:.1%}.")
    return text


def _report(ctx: Context) -> None:
    st.subheader("Whole store: interruptions, MTTF and ETTR")
    job = st.select_slider("Training job size (GPUs)", [8, 64, 256, 1024, 4096, 16384], value=JOB_GPUS, key="rel_job")
    rep = cached.reliability(ctx.db, ctx.mtime, job)
    c = st.columns(4)
    c[0].metric("Interruptions", f"{rep.interruptions:,}")
    c[1].metric("GPU MTTF", f"{rep.gpu_mttf_hours:,.0f} h" if math.isfinite(rep.gpu_mttf_hours) else "none seen")
    c[2].metric(f"MTTF of a {rep.job_gpus}-GPU job",
                f"{rep.job_mttf_hours:,.1f} h" if math.isfinite(rep.job_mttf_hours) else "none seen")
    c[3].metric("ETTR", f"{rep.ettr:.1%}" if rep.ettr is not None else "-")
    st.caption(_ettr_terms(rep))
    cats = pl.DataFrame([vars(x) for x in rep.categories]) if rep.categories else pl.DataFrame()
    if cats.height:
        table(cats.group_by("category").agg(pl.col("interruptions").sum(), pl.col("warnings").sum())
              .sort("interruptions", descending=True))
    lemons = [n.node for n in rep.nodes if n.lemon]
    if lemons:
        st.warning(f"Lemon nodes (far more interruptions than the fleet median): {', '.join(lemons)}")


def render(ctx: Context) -> None:
    """Draw the Reliability page."""
    st.header("Reliability")
    ev = cached.faults(ctx.db, ctx.mtime, ctx.start, ctx.end, ctx.filters.opt("cluster"))
    hours = (ctx.end - ctx.start).total_seconds() / 3600
    gpu_hours = hours * ctx.info.gpus
    critical = ev.filter(pl.col("severity") == "critical") if ev.height else ev
    n_fail = int(critical["count"].sum()) if critical.height else 0
    mttf = mttf_hours(gpu_hours, n_fail)
    c = st.columns(3)
    c[0].metric("Critical failures", f"{n_fail:,}")
    c[1].metric("MTTF per GPU", f"{mttf:,.0f} h" if mttf else "no failures")
    c[2].metric("Fleet MTTF", f"{mttf / ctx.info.gpus:,.1f} h" if mttf else "no failures")
    _report(ctx)
    if ev.height == 0:
        st.success("No fault events in this window.", icon=":material/check_circle:")
        return
    st.subheader("Failure taxonomy")
    tax = ev.group_by("failure_class", "severity").agg(events=pl.col("count").sum()).sort("events", descending=True)
    table(tax, formats={"events": "{:,.0f}"})
    st.subheader("Events")
    table(ev, formats={"count": "{:,.0f}"}, download="gpufleet-fault-events.csv")
