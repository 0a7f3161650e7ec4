"""Cached reads: every query is keyed on the store path, its modification time and the filters.

A new scrape changes the store's modification time, so the next run reads fresh numbers; the same
view asked twice is answered from the cache.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.analytics.cost.pricing import Catalog
from gpufleet.analytics.cost.query import DuckDBSource
from gpufleet.analytics.fleet import FleetSnapshot, load_snapshot
from gpufleet.analytics.reliability.report import ReliabilityReport
from gpufleet.dashboards import queries
from gpufleet.dashboards.data import StoreInfo, reading, store_info

__all__ = ["info", "fleet", "cost", "utilization", "recommendations", "focus", "used_hours", "energy", "latency",
           "requests", "faults", "probes", "reliability"]


@st.cache_data(max_entries=16, show_spinner=False)
def info(db: str, mtime: float) -> StoreInfo:
    """Store facts for the filters."""
    with reading(db) as con:
        return store_info(con, db)


@st.cache_data(max_entries=64, show_spinner="Reading the fleet ...")
def fleet(db: str, mtime: float, start: datetime, end: datetime, cluster: str | None, gpu_model: str | None,
          team: str | None) -> FleetSnapshot:
    """The fleet snapshot for a filtered view."""
    with reading(db) as con:
        return load_snapshot(con, start, end, cluster=cluster, gpu_model=gpu_model, team=team)


def _window(start: datetime, end: datetime) -> timedelta:
    return max(end - start, timedelta(hours=1))


@st.cache_data(max_entries=64, show_spinner="Costing ...")
def cost(db: str, mtime: float, start: datetime, end: datetime, by: str) -> pl.DataFrame:
    """Chargeback per team, namespace or model (analytics.cost.report.cost_report)."""
    from gpufleet.analytics.cost.report import cost_report

    with reading(db) as con:
        return cost_report(DuckDBSource(con), _catalog(), _window(start, end), by)


@st.cache_data(max_entries=32, show_spinner=False)
def utilization(db: str, mtime: float, start: datetime, end: datetime, by: str) -> pl.DataFrame:
    """Allocated vs used GPU-hours per group (analytics.cost.report.utilization_report)."""
    from gpufleet.analytics.cost.report import utilization_report

    with reading(db) as con:
        return utilization_report(DuckDBSource(con), _window(start, end), by)


@st.cache_data(max_entries=32, show_spinner=False)
def recommendations(db: str, mtime: float, start: datetime, end: datetime) -> pl.DataFrame:
    """Optimize / Remove / Share advice as a frame (analytics.cost.report.recommendations)."""
    from dataclasses import asdict

    from gpufleet.analytics.cost.report import recommendations as recs

    with reading(db) as con:
        rows = [asdict(r) for r in recs(DuckDBSource(con), _catalog(), _window(start, end))]
    return pl.DataFrame(rows) if rows else pl.DataFrame(schema={"namespace": pl.String, "pod": pl.String,
                                                                "action": pl.String, "monthly_savings_usd": pl.Float64})


@st.cache_data(max_entries=16, show_spinner=False)
def focus(db: str, mtime: float, start: datetime, end: datetime) -> bytes:
    """FOCUS 1.2 rows as CSV (analytics.cost.report.focus_export)."""
    from gpufleet.analytics.cost.report import focus_export

    with reading(db) as con:
        return focus_export(DuckDBSource(con), _catalog(), _window(start, end)).write_csv().encode()


@st.cache_data(max_entries=16, show_spinner=False)
def used_hours(db: str, mtime: float, start: datetime, end: datetime) -> tuple[float, float, int]:
    """(used GPU-hours, window hours, GPUs allocated at peak) for the pricing what-if."""
    from gpufleet.analytics.cost.report import utilization_report

    with reading(db) as con:
        src = DuckDBSource(con)
        w = src.window(_window(start, end))
        util = utilization_report(src, _window(start, end), "namespace")
        gpus = con.execute("SELECT count(*) FROM gpus").fetchall()[0][0]
    return float(util["used_gpu_hours"].sum()) if util.height else 0.0, w.hours, int(gpus)


@st.cache_data(max_entries=16, show_spinner=False)
def energy(db: str, mtime: float, start: datetime, end: datetime) -> pl.DataFrame:
    """Joules per GPU and hour in the window, with the GPU's node and cluster."""
    with reading(db) as con:
        src = DuckDBSource(con)
        e = src.energy(src.window(_window(start, end)))
        gpus = pl.from_arrow(con.execute("SELECT g.gpu_uuid, g.node, n.cluster FROM gpus g JOIN nodes n "
                                         "USING (node)").to_arrow_table())
    assert isinstance(gpus, pl.DataFrame)
    return e.join(gpus, on="gpu_uuid", how="left")


@st.cache_data(max_entries=32, show_spinner=False)
def latency(db: str, mtime: float, start: datetime, end: datetime, model: str | None) -> pl.DataFrame:
    """Serving latency bucket counts per metric and model."""
    with reading(db) as con:
        return queries.latency_buckets(con, start, end, model)


@st.cache_data(max_entries=32, show_spinner=False)
def requests(db: str, mtime: float, start: datetime, end: datetime, model: str | None) -> pl.DataFrame:
    """Requests per hour."""
    with reading(db) as con:
        return queries.hourly_requests(con, start, end, model)


@st.cache_data(max_entries=32, show_spinner=False)
def faults(db: str, mtime: float, start: datetime, end: datetime, cluster: str | None) -> pl.DataFrame:
    """Fault events in the window."""
    with reading(db) as con:
        return queries.fault_events(con, start, end, cluster)


@st.cache_data(max_entries=16, show_spinner=False)
def probes(db: str, mtime: float, cluster: str | None) -> pl.DataFrame:
    """Newest probe results per GPU."""
    with reading(db) as con:
        return queries.probe_results(con, cluster)


@st.cache_resource(show_spinner=False)
def _catalog() -> Catalog:
    from gpufleet.analytics.cost.pricing import load_catalog

    return load_catalog()


@st.cache_data(max_entries=16, show_spinner=False)
def reliability(db: str, mtime: float, job_gpus: int) -> ReliabilityReport:
    """The store's reliability report (analytics.reliability.report): taxonomy, MTTF, ETTR, lemon nodes."""
    from gpufleet.analytics.reliability.report import reliability_report

    with reading(db) as con:
        return reliability_report(con, period="day", job_gpus=job_gpus)
