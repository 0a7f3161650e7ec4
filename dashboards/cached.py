"""Cached reads: every query is keyed on the store path, its modification time and the filters.

A new scrape changes the store's modification time, so the next run reads fresh numbers; the same
view asked twice is answered from the cache. Underneath ``st.cache_data`` (per function, copied on each
hit), the store's frames and the heavy results live once per process in :data:`memo.MEMO`, shared by
every page and session: the Cost and Utilization pages read the window's allocations and activity once.
:func:`warm` computes the default views of every page in a background thread when a session opens, so
the first visit to a page finds its numbers ready.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.analytics.capacity.forecast import ForecastResult
from gpufleet.analytics.cost.pricing import Catalog
from gpufleet.analytics.fleet import FleetSnapshot, load_snapshot
from gpufleet.analytics.reliability.report import ReliabilityReport
from gpufleet.dashboards import queries
from gpufleet.dashboards.data import StoreInfo, reading, store_info
from gpufleet.dashboards.memo import MEMO, MemoSource

__all__ = ["info", "fleet", "cost", "utilization", "recommendations", "focus", "used_hours", "energy", "latency",
           "requests", "forecast", "faults", "probes", "reliability", "warm"]


@st.cache_data(max_entries=16, show_spinner=False)
def info(db: str, mtime: float) -> StoreInfo:
    """Store facts for the filters."""
    with reading(db) as con:
        return store_info(con, db)


@st.cache_data(max_entries=64, show_spinner="Reading the fleet ...")
def fleet(db: str, mtime: float, start: datetime, end: datetime, cluster: str | None, gpu_model: str | None,
          team: str | None) -> FleetSnapshot:
    """The fleet snapshot for a filtered view."""
    return _fleet(db, mtime, start, end, cluster, gpu_model, team)


def _fleet(db: str, mtime: float, start: datetime, end: datetime, cluster: str | None = None,
           gpu_model: str | None = None, team: str | None = None) -> FleetSnapshot:
    def compute() -> FleetSnapshot:
        with reading(db) as con:
            return load_snapshot(con, start, end, cluster=cluster, gpu_model=gpu_model, team=team)

    return MEMO.get(("fleet", db, mtime, start, end, cluster, gpu_model, team), compute)


def _window(start: datetime, end: datetime) -> timedelta:
    return max(end - start, timedelta(hours=1))


def _src(db: str, mtime: float) -> MemoSource:
    return MemoSource(db, mtime)


@st.cache_data(max_entries=64, show_spinner="Costing ...")
def cost(db: str, mtime: float, start: datetime, end: datetime, by: str) -> pl.DataFrame:
    """Chargeback per team, namespace or model (analytics.cost.report.cost_report)."""
    return _cost(db, mtime, start, end, by)


def _cost(db: str, mtime: float, start: datetime, end: datetime, by: str) -> pl.DataFrame:
    from gpufleet.analytics.cost.report import cost_report

    return MEMO.get(("cost", db, mtime, start, end, by),
                    lambda: cost_report(_src(db, mtime), _catalog(), _window(start, end), by))


@st.cache_data(max_entries=32, show_spinner=False)
def utilization(db: str, mtime: float, start: datetime, end: datetime, by: str) -> pl.DataFrame:
    """Allocated vs used GPU-hours per group (analytics.cost.report.utilization_report)."""
    return _utilization(db, mtime, start, end, by)


def _utilization(db: str, mtime: float, start: datetime, end: datetime, by: str) -> pl.DataFrame:
    from gpufleet.analytics.cost.report import utilization_report

    return MEMO.get(("utilization", db, mtime, start, end, by),
                    lambda: utilization_report(_src(db, mtime), _window(start, end), by))


@st.cache_data(max_entries=32, show_spinner=False)
def recommendations(db: str, mtime: float, start: datetime, end: datetime) -> pl.DataFrame:
    """Optimize / Remove / Share advice as a frame (analytics.cost.report.recommendations)."""
    return _recommendations(db, mtime, start, end)


def _recommendations(db: str, mtime: float, start: datetime, end: datetime) -> pl.DataFrame:
    from dataclasses import asdict

    from gpufleet.analytics.cost.report import recommendations as recs

    def compute() -> pl.DataFrame:
        rows = [asdict(r) for r in recs(_src(db, mtime), _catalog(), _window(start, end))]
        return pl.DataFrame(rows) if rows else pl.DataFrame(
            schema={"namespace": pl.String, "pod": pl.String, "action": pl.String, "monthly_savings_usd": pl.Float64})

    return MEMO.get(("recommendations", db, mtime, start, end), compute)


@st.cache_data(max_entries=16, show_spinner=False)
def focus(db: str, mtime: float, start: datetime, end: datetime) -> bytes:
    """FOCUS 1.2 rows as CSV (analytics.cost.report.focus_export); the Cost page asks only on download."""
    from gpufleet.analytics.cost.report import focus_export

    return focus_export(_src(db, mtime), _catalog(), _window(start, end)).write_csv().encode()


@st.cache_data(max_entries=16, show_spinner=False)
def used_hours(db: str, mtime: float, start: datetime, end: datetime) -> tuple[float, float, int]:
    """(used GPU-hours, window hours, GPUs allocated at peak) for the pricing what-if."""
    src = _src(db, mtime)
    w = src.window(_window(start, end))
    util = _utilization(db, mtime, start, end, "namespace")
    with reading(db) as con:
        gpus = con.execute("SELECT count(*) FROM gpus").fetchall()[0][0]
    return float(util["used_gpu_hours"].sum()) if util.height else 0.0, w.hours, int(gpus)


@st.cache_data(max_entries=16, show_spinner=False)
def energy(db: str, mtime: float, start: datetime, end: datetime) -> pl.DataFrame:
    """Joules per GPU and hour in the window, with the GPU's node and cluster."""
    return _energy(db, mtime, start, end)


def _energy(db: str, mtime: float, start: datetime, end: datetime) -> pl.DataFrame:
    def compute() -> pl.DataFrame:
        src = _src(db, mtime)
        e = src.energy(src.window(_window(start, end)))
        with reading(db) as con:
            gpus = pl.from_arrow(con.sql("SELECT g.gpu_uuid, g.node, n.cluster FROM gpus g JOIN nodes n "
                                             "USING (node)").to_arrow_table())
        assert isinstance(gpus, pl.DataFrame)
        return e.join(gpus, on="gpu_uuid", how="left")

    return MEMO.get(("energy", db, mtime, start, end), compute)


@st.cache_data(max_entries=32, show_spinner=False)
def latency(db: str, mtime: float, start: datetime, end: datetime, model: str | None) -> pl.DataFrame:
    """Serving latency bucket counts per metric and model."""
    return _read(queries.latency_buckets, db, mtime, start, end, model)


def _read(query: Callable[..., pl.DataFrame], db: str, mtime: float, *args: object) -> pl.DataFrame:
    def compute() -> pl.DataFrame:
        with reading(db) as con:
            return query(con, *args)

    return MEMO.get((query.__name__, db, mtime, *args), compute)


@st.cache_data(max_entries=32, show_spinner=False)
def requests(db: str, mtime: float, start: datetime, end: datetime, model: str | None) -> pl.DataFrame:
    """Requests per hour."""
    return _read(queries.hourly_requests, db, mtime, start, end, model)


@st.cache_data(max_entries=32, show_spinner="Forecasting ...")
def forecast(db: str, mtime: float, start: datetime, end: datetime, model: str | None, horizon: int) -> ForecastResult:
    """Forecast of requests per hour (analytics.capacity.forecast), with its backtests."""
    return _forecast(db, mtime, start, end, model, horizon)


def season_for(hours: int) -> int:
    """The daily season in hours, shortened for a history under two days."""
    return 24 if hours >= 48 else max(2, hours // 2)


def _forecast(db: str, mtime: float, start: datetime, end: datetime, model: str | None,
              horizon: int) -> ForecastResult:
    from gpufleet.analytics.capacity.forecast import forecast_series

    def compute() -> ForecastResult:
        hist = _read(queries.hourly_requests, db, mtime, start, end, model)
        return forecast_series(hist["requests"].to_numpy(), horizon, season=season_for(hist.height), level=0.9)

    return MEMO.get(("forecast", db, mtime, start, end, model, horizon), compute)


@st.cache_data(max_entries=32, show_spinner=False)
def faults(db: str, mtime: float, start: datetime, end: datetime, cluster: str | None) -> pl.DataFrame:
    """Fault events in the window."""
    return _read(queries.fault_events, db, mtime, start, end, cluster)


@st.cache_data(max_entries=16, show_spinner=False)
def probes(db: str, mtime: float, cluster: str | None) -> pl.DataFrame:
    """Newest probe results per GPU."""
    return _read(queries.probe_results, db, mtime, cluster)


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


def _preload_plotly() -> None:
    """Build one tiny Plotly Express figure: the first one in a process loads templates (~0.9 s)."""
    import importlib.util

    if importlib.util.find_spec("plotly") is not None:
        import plotly.express as px

        px.bar(x=[1.0], y=["warm"], orientation="h").to_json()


def _warm(db: str, mtime: float, start: datetime, end: datetime) -> None:
    """Compute every page's default view for this window into the memo (run in a background thread)."""
    steps: list[Callable[[], object]] = [
        _preload_plotly,
        lambda: _fleet(db, mtime, start, end),
        lambda: _utilization(db, mtime, start, end, "namespace"),
        lambda: _recommendations(db, mtime, start, end),
        lambda: _cost(db, mtime, start, end, "team"),
        lambda: _energy(db, mtime, start, end),
        lambda: _read(queries.latency_buckets, db, mtime, start, end, None),
        lambda: _forecast(db, mtime, start, end, None, 24),
        lambda: _read(queries.fault_events, db, mtime, start, end, None),
        lambda: _read(queries.probe_results, db, mtime, None),
    ]
    for step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001 - a page shows its own error when its view is asked for
            continue


def _stale(key: Hashable, db: str, mtime: float) -> bool:
    """A memo key of ``db`` at another modification time."""
    return isinstance(key, tuple) and len(key) > 2 and key[1] == db and key[2] != mtime


_warmed: set[tuple[str, float, datetime, datetime]] = set()
_warm_lock = threading.Lock()


def warm(db: str, mtime: float, start: datetime, end: datetime) -> bool:
    """Start computing the default views of every page for this window, once per store version and window.

    Frames of older versions of the same store are dropped from the memo first. Returns whether a new
    warm-up started.
    """
    key = (db, mtime, start, end)
    with _warm_lock:
        if key in _warmed:
            return False
        _warmed.add(key)
    MEMO.drop(lambda k: _stale(k, db, mtime))
    threading.Thread(target=_warm, args=key, name="gpufleet-warm", daemon=True).start()
    return True
