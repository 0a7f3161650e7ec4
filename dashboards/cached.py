"""Cached reads for the pages: :mod:`results` behind ``st.cache_data``, keyed on the store, its version and the view.

A new scrape changes the store's modification time, so the next run reads fresh numbers; the same view
asked twice is answered from Streamlit's cache. Underneath, :mod:`results` keeps each store frame and heavy
result once per process in :data:`memo.MEMO`, shared by every page and session and filled ahead of time by
:mod:`warmup` (at server start, and for a session's window after its first page is drawn).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.analytics.capacity.forecast import ForecastResult
from gpufleet.analytics.fleet import FleetSnapshot
from gpufleet.analytics.reliability.report import ReliabilityReport
from gpufleet.dashboards import queries, results
from gpufleet.dashboards.data import StoreInfo

__all__ = ["info", "fleet", "cost", "utilization", "recommendations", "focus", "used_hours", "energy", "latency",
           "requests", "forecast", "faults", "probes", "reliability"]


@st.cache_data(max_entries=16, show_spinner=False)
def info(db: str, mtime: float) -> StoreInfo:
    """Store facts for the filters."""
    return results.info(db, mtime)


@st.cache_data(max_entries=64, show_spinner="Reading the fleet ...")
def fleet(db: str, mtime: float, start: datetime, end: datetime, cluster: str | None, gpu_model: str | None,
          team: str | None) -> FleetSnapshot:
    """The fleet snapshot for a filtered view."""
    return results.fleet(db, mtime, start, end, cluster, gpu_model, team)


@st.cache_data(max_entries=64, show_spinner="Costing ...")
def cost(db: str, mtime: float, start: datetime, end: datetime, by: str) -> pl.DataFrame:
    """Chargeback per team, namespace or model (analytics.cost.report.cost_report)."""
    return results.cost(db, mtime, start, end, by)


@st.cache_data(max_entries=32, show_spinner=False)
def utilization(db: str, mtime: float, start: datetime, end: datetime, by: str) -> pl.DataFrame:
    """Allocated vs used GPU-hours per group (analytics.cost.report.utilization_report)."""
    return results.utilization(db, mtime, start, end, by)


@st.cache_data(max_entries=32, show_spinner=False)
def recommendations(db: str, mtime: float, start: datetime, end: datetime) -> pl.DataFrame:
    """Optimize / Remove / Share advice as a frame (analytics.cost.report.recommendations)."""
    return results.recommendations(db, mtime, start, end)


@st.cache_data(max_entries=16, show_spinner=False)
def focus(db: str, mtime: float, start: datetime, end: datetime) -> bytes:
    """FOCUS 1.2 rows as CSV (analytics.cost.report.focus_export); the Cost page asks only on download."""
    return results.focus(db, mtime, start, end)


@st.cache_data(max_entries=16, show_spinner=False)
def used_hours(db: str, mtime: float, start: datetime, end: datetime) -> tuple[float, float, int]:
    """(used GPU-hours, window hours, GPUs allocated at peak) for the pricing what-if."""
    return results.used_hours(db, mtime, start, end)


@st.cache_data(max_entries=16, show_spinner=False)
def energy(db: str, mtime: float, start: datetime, end: datetime) -> pl.DataFrame:
    """Joules per cluster in the window."""
    return results.energy(db, mtime, start, end)


@st.cache_data(max_entries=32, show_spinner=False)
def latency(db: str, mtime: float, start: datetime, end: datetime, model: str | None) -> pl.DataFrame:
    """Serving latency bucket counts per metric and model."""
    return results.read(queries.latency_buckets, db, mtime, start, end, model)


@st.cache_data(max_entries=32, show_spinner=False)
def requests(db: str, mtime: float, start: datetime, end: datetime, model: str | None) -> pl.DataFrame:
    """Requests per hour."""
    return results.read(queries.hourly_requests, db, mtime, start, end, model)


@st.cache_data(max_entries=32, show_spinner="Forecasting ...")
def forecast(db: str, mtime: float, start: datetime, end: datetime, model: str | None, horizon: int) -> ForecastResult:
    """Forecast of requests per hour (analytics.capacity.forecast), with its backtests."""
    return results.forecast(db, mtime, start, end, model, horizon)


@st.cache_data(max_entries=32, show_spinner=False)
def faults(db: str, mtime: float, start: datetime, end: datetime, cluster: str | None) -> pl.DataFrame:
    """Fault events in the window."""
    return results.read(queries.fault_events, db, mtime, start, end, cluster)


@st.cache_data(max_entries=16, show_spinner=False)
def probes(db: str, mtime: float, cluster: str | None) -> pl.DataFrame:
    """Newest probe results per GPU."""
    return results.read(queries.probe_results, db, mtime, cluster)


@st.cache_data(max_entries=16, show_spinner=False)
def reliability(db: str, mtime: float, job_gpus: int) -> ReliabilityReport:
    """The store's reliability report (analytics.reliability.report): taxonomy, MTTF, ETTR, lemon nodes."""
    return results.reliability(db, mtime, job_gpus)
