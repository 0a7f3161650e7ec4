"""Export the store's hourly rollups as hive-partitioned Parquet (one file per table and day).

Each file holds what a report reads for that day, already joined (node facts, team), so a
:class:`~gpufleet.analytics.sources.parquet.ParquetSource` answers without the store. Re-exporting
a day replaces its files, so an export can be repeated or resumed (``since``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from gpufleet.analytics.cost.query import SERVING_METRICS, DuckDBSource, Window
from gpufleet.analytics.sources.base import conform
from gpufleet.analytics.sources.layout import is_remote, part_path, storage_options

__all__ = ["ExportReport", "export_parquet"]

DAY = dt.timedelta(days=1)


@dataclass
class ExportReport:
    """Days and files written, and rows per table."""

    days: int = 0
    files: int = 0
    rows: dict[str, int] = field(default_factory=dict)


def _pl(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> pl.DataFrame:
    df = pl.from_arrow(con.sql(sql, params=params).to_arrow_table())
    assert isinstance(df, pl.DataFrame)
    return df


def _serving(con: duckdb.DuckDBPyConnection, w: Window) -> pl.DataFrame:
    names = ", ".join(f"'{m}'" for m in SERVING_METRICS)
    return _pl(con, f"""
        SELECT c.ts, s.metric, s.labels->>'model' AS model, s.labels->>'service' AS service,
               s.labels->>'namespace' AS namespace, s.labels->>'pod' AS pod, s.labels->>'node' AS node,
               s.labels->>'outcome' AS outcome, sum(c.delta) AS value
        FROM counters_1h c JOIN series s USING (series_id)
        WHERE s.metric IN ({names}) AND c.ts >= ? AND c.ts < ?
        GROUP BY ALL""", [w.start, w.end])


def _requests(con: duckdb.DuckDBPyConnection, w: Window) -> pl.DataFrame:
    return _pl(con, """
        SELECT g.ts, s.labels->>'namespace' AS namespace, s.labels->>'pod' AS pod,
               s.labels->>'container' AS container, max(g.max) AS gpus_requested
        FROM gauges_1h g JOIN series s USING (series_id)
        WHERE s.metric = 'kube_pod_container_resource_requests' AND s.labels->>'resource' = 'nvidia_com_gpu'
          AND g.ts >= ? AND g.ts < ?
        GROUP BY ALL""", [w.start, w.end])


def _probes(con: duckdb.DuckDBPyConnection, w: Window) -> pl.DataFrame:
    return _pl(con, "SELECT ts, gpu_model, probe, unit, value FROM probe_results "
                    "WHERE gpu_model IS NOT NULL AND ts >= ? AND ts < ?", [w.start, w.end])


def _write(df: pl.DataFrame, path: str, options: Mapping[str, str] | None) -> None:
    if options is None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        df.write_parquet(path)
    else:
        df.write_parquet(path, storage_options=dict(options))


def export_parquet(con: duckdb.DuckDBPyConnection, root: str, *, since: dt.date | None = None,
                   options: Mapping[str, str] | None = None) -> ExportReport:
    """Write the store's rollups under ``root`` (a directory or ``s3://bucket/prefix``), day by day."""
    opts = options if options is not None else storage_options(root)
    if opts is None and is_remote(root):
        raise ValueError(f"--to {root}: no storage options for this URI")
    src = DuckDBSource(con)
    first, last = con.execute("SELECT min(ts), max(ts) FROM gpu_allocations_1h").fetchall()[0]
    report = ExportReport()
    if first is None or last is None:
        return report
    day = max(first.date(), since) if since else first.date()
    while day <= last.date():
        start = dt.datetime.combine(day, dt.time())
        w = Window(start, start + DAY)
        frames = {"gpu_allocations_1h": src.allocations(w),
                  "gpu_utilization_1h": conform("utilization", src.utilization(w)),
                  "gpu_energy_1h": src.energy(w), "serving_1h": _serving(con, w),
                  "gpu_requests_1h": _requests(con, w), "probe_results": _probes(con, w)}
        for table, df in frames.items():
            if df.height:
                _write(df, part_path(root, table, day), opts)
                report.files += 1
                report.rows[table] = report.rows.get(table, 0) + df.height
        report.days += 1
        day += DAY
    prices = src.prices()
    if prices.height:
        _write(prices, part_path(root, "prices", None), opts)
        report.files += 1
        report.rows["prices"] = prices.height
    return report
