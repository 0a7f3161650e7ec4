"""Each page's store reads and heavy results, computed once per store version and window (no Streamlit).

Every function is keyed on the store path, its modification time (a new scrape is a new key) and the
view's arguments, and keeps its result in the process-wide :data:`memo.MEMO`, shared by every page and
session. The app's cached layer (:mod:`cached`) and the warm-up (:mod:`warmup`) both call these, so a
value the warm-up computed before any browser connected is the one the page shows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta

import polars as pl

from gpufleet.analytics.capacity.forecast import ForecastResult
from gpufleet.analytics.cost.pricing import Catalog
from gpufleet.analytics.fleet import FleetSnapshot, load_snapshot
from gpufleet.analytics.reliability.report import ReliabilityReport
from gpufleet.dashboards import queries
from gpufleet.dashboards.data import StoreInfo, reading, store_info
from gpufleet.dashboards.memo import MEMO, MemoSource

__all__ = ["info", "fleet", "cost", "utilization", "recommendations", "energy", "read", "forecast", "reliability",
           "used_hours", "focus", "catalog", "season_for", "span"]


def info(db: str, mtime: float) -> StoreInfo:
    """Store facts for the filters."""
    def compute() -> StoreInfo:
        with reading(db) as con:
            return store_info(con, db)

    return MEMO.get(("info", db, mtime), compute)


def span(start: datetime, end: datetime) -> timedelta:
    """The window length the cost reports are asked for (at least an hour)."""
    return max(end - start, timedelta(hours=1))


@functools.cache
def catalog() -> Catalog:
    """The default price catalogue (read once per process)."""
    from gpufleet.analytics.cost.pricing import load_catalog

    return load_catalog()


def fleet(db: str, mtime: float, start: datetime, end: datetime, cluster: str | None = None,
          gpu_model: str | None = None, team: str | None = None) -> FleetSnapshot:
    """The fleet snapshot for a filtered view."""
    def compute() -> FleetSnapshot:
        with reading(db) as con:
            return load_snapshot(con, start, end, cluster=cluster, gpu_model=gpu_model, team=team)

    return MEMO.get(("fleet", db, mtime, start, end, cluster, gpu_model, team), compute)


def cost(db: str, mtime: float, start: datetime, end: datetime, by: str) -> pl.DataFrame:
    """Chargeback per team, namespace or model (analytics.cost.report.cost_report)."""
    from gpufleet.analytics.cost.report import cost_report

    return MEMO.get(("cost", db, mtime, start, end, by),
                    lambda: cost_report(MemoSource(db, mtime), catalog(), span(start, end), by))


def utilization(db: str, mtime: float, start: datetime, end: datetime, by: str) -> pl.DataFrame:
    """Allocated vs used GPU-hours per group (analytics.cost.report.utilization_report)."""
    from gpufleet.analytics.cost.report import utilization_report

    return MEMO.get(("utilization", db, mtime, start, end, by),
                    lambda: utilization_report(MemoSource(db, mtime), span(start, end), by))


def recommendations(db: str, mtime: float, start: datetime, end: datetime) -> pl.DataFrame:
    """Optimize / Remove / Share advice as a frame (analytics.cost.report.recommendations)."""
    from gpufleet.analytics.cost.report import recommendations as recs

    def compute() -> pl.DataFrame:
        rows = [asdict(r) for r in recs(MemoSource(db, mtime), catalog(), span(start, end))]
        return pl.DataFrame(rows) if rows else pl.DataFrame(
            schema={"namespace": pl.String, "pod": pl.String, "action": pl.String, "monthly_savings_usd": pl.Float64})

    return MEMO.get(("recommendations", db, mtime, start, end), compute)


def focus(db: str, mtime: float, start: datetime, end: datetime) -> bytes:
    """FOCUS 1.2 rows as CSV (analytics.cost.report.focus_export); not memoised: asked for only on download."""
    from gpufleet.analytics.cost.report import focus_export

    return focus_export(MemoSource(db, mtime), catalog(), span(start, end)).write_csv().encode()


def used_hours(db: str, mtime: float, start: datetime, end: datetime) -> tuple[float, float, int]:
    """(used GPU-hours, window hours, GPUs allocated at peak) for the pricing what-if."""
    def compute() -> tuple[float, float, int]:
        w = MemoSource(db, mtime).window(span(start, end))
        util = utilization(db, mtime, start, end, "namespace")
        with reading(db) as con:
            gpus = con.execute("SELECT count(*) FROM gpus").fetchall()[0][0]
        return float(util["used_gpu_hours"].sum()) if util.height else 0.0, w.hours, int(gpus)

    return MEMO.get(("used_hours", db, mtime, start, end), compute)


def energy(db: str, mtime: float, start: datetime, end: datetime) -> pl.DataFrame:
    """Joules per cluster in the window (``cluster``, ``joules``).

    The store's hourly energy per GPU is summed here, once per view: a 30-day window of 1,000 GPUs is
    720,000 rows, and the page's PUE, price and grid sliders only scale the per-cluster sums.
    """
    def compute() -> pl.DataFrame:
        src = MemoSource(db, mtime)
        e = src.energy(src.window(span(start, end)))
        with reading(db) as con:
            gpus = pl.from_arrow(con.sql("SELECT g.gpu_uuid, n.cluster FROM gpus g JOIN nodes n "
                                         "USING (node)").to_arrow_table())
        assert isinstance(gpus, pl.DataFrame)
        return (e.join(gpus, on="gpu_uuid", how="left").group_by("cluster")
                .agg(pl.col("joules").sum()).sort("cluster"))

    return MEMO.get(("energy", db, mtime, start, end), compute)


def read(query: Callable[..., pl.DataFrame], db: str, mtime: float, *args: object) -> pl.DataFrame:
    """``query(con, *args)`` from :mod:`queries` over a read-only connection, memoised."""
    def compute() -> pl.DataFrame:
        with reading(db) as con:
            return query(con, *args)

    return MEMO.get((query.__name__, db, mtime, *args), compute)


def season_for(hours: int) -> int:
    """The daily season in hours, shortened for a history under two days."""
    return 24 if hours >= 48 else max(2, hours // 2)


def forecast(db: str, mtime: float, start: datetime, end: datetime, model: str | None,
             horizon: int) -> ForecastResult:
    """Forecast of requests per hour (analytics.capacity.forecast), with its backtests."""
    from gpufleet.analytics.capacity.forecast import forecast_series

    def compute() -> ForecastResult:
        hist = read(queries.hourly_requests, db, mtime, start, end, model)
        return forecast_series(hist["requests"].to_numpy(), horizon, season=season_for(hist.height), level=0.9)

    return MEMO.get(("forecast", db, mtime, start, end, model, horizon), compute)


def reliability(db: str, mtime: float, job_gpus: int) -> ReliabilityReport:
    """The store's reliability report (analytics.reliability.report): taxonomy, MTTF, ETTR, lemon nodes."""
    from gpufleet.analytics.reliability.report import reliability_report

    def compute() -> ReliabilityReport:
        with reading(db) as con:
            return reliability_report(con, period="day", job_gpus=job_gpus)

    return MEMO.get(("reliability", db, mtime, job_gpus), compute)
