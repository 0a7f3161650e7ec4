"""Read the SLO inputs from the gpufleet store: histogram bucket deltas and request-outcome deltas.

The edge of the SLO analytics: every function takes an open (read-only) DuckDB connection and returns
polars frames for the pure modules. Recent data comes from the raw tables; the part of a window older
than the oldest raw sample (raw retention is 15 days by default) comes from the hourly rollups. A
rollup row sums the deltas stamped inside its hour, so it is returned stamped with the hour's end (a
delta covers the interval before its stamp) and such windows are accurate to the hour. Timestamps are
naive UTC, as the store keeps them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from gpufleet.analytics.slo.catalog import REQUESTS_TOTAL

__all__ = ["SELECTOR_LABELS", "newest_ts", "histogram_deltas", "outcome_deltas", "series_count",
           "serving_services"]

SELECTOR_LABELS = ("service", "model", "engine", "namespace", "cluster", "pod")

_RAW = {"histogram": ("histogram_buckets", "histogram_buckets_1h"), "counter": ("counters", "counters_1h")}


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> Any:
    """First column of the first row (the result is fetched to the end, as DuckDB wants)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def newest_ts(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """Time of the newest landed scrape, or ``None`` for an empty store."""
    return _scalar(con, "SELECT max(scrape_ts) FROM batches")


def _series_where(metric: str, kind: str, selector: dict[str, str]) -> tuple[str, list[object]]:
    unknown = sorted(set(selector) - set(SELECTOR_LABELS))
    if unknown:
        raise ValueError(f"selector labels {unknown} are not serving labels; use {list(SELECTOR_LABELS)}")
    parts = ["metric = ?", "kind = ?"]
    params: list[object] = [metric, kind]
    for key, value in sorted(selector.items()):
        parts.append(f"json_extract_string(labels, '$.{key}') = ?")
        params.append(value)
    return " AND ".join(parts), params


def series_count(con: duckdb.DuckDBPyConnection, metric: str, kind: str, selector: dict[str, str]) -> int:
    """How many series of ``metric`` (``kind``: histogram or counter) match ``selector``."""
    where, params = _series_where(metric, kind, selector)
    return int(_scalar(con, f"SELECT count(*) FROM series WHERE {where}", params) or 0)


def _raw_cut(con: duckdb.DuckDBPyConnection, raw: str) -> datetime | None:
    """Start of the hour of the oldest raw sample: older data is read from the hourly rollup."""
    value = _scalar(con, f"SELECT date_trunc('hour', min(ts)) FROM {raw}")
    return value if isinstance(value, datetime) else None


def _deltas(con: duckdb.DuckDBPyConnection, kind: str, columns: str, metric: str, selector: dict[str, str],
            start: datetime, end: datetime) -> pl.DataFrame:
    raw, hourly = _RAW[kind]
    where, params = _series_where(metric, kind, selector)
    cut = _raw_cut(con, raw) or end
    sql = f"""
        WITH s AS (SELECT series_id, labels FROM series WHERE {where})
        SELECT {columns} FROM {raw} d JOIN s USING (series_id)
        WHERE d.ts > ? AND d.ts <= ? AND d.ts >= ?
        UNION ALL
        SELECT {columns.replace("d.ts", "d.ts + INTERVAL 1 HOUR AS ts")} FROM {hourly} d JOIN s USING (series_id)
        WHERE d.ts + INTERVAL 1 HOUR > ? AND d.ts + INTERVAL 1 HOUR <= ? AND d.ts < ?
        ORDER BY ts
    """
    args = [*params, start, end, cut, start, end, cut]
    df = pl.from_arrow(con.sql(sql, params=args).to_arrow_table())
    assert isinstance(df, pl.DataFrame)
    return df


def histogram_deltas(con: duckdb.DuckDBPyConnection, metric: str, selector: dict[str, str],
                     start: datetime, end: datetime) -> pl.DataFrame:
    """Bucket deltas ``(series_id, ts, le, delta)`` of histogram ``metric`` in ``(start, end]``."""
    df = _deltas(con, "histogram", "d.series_id, d.ts, d.le, d.delta", metric, selector, start, end)
    return df.cast({"series_id": pl.Int64, "ts": pl.Datetime("us"), "le": pl.Float64, "delta": pl.Float64})


def outcome_deltas(con: duckdb.DuckDBPyConnection, selector: dict[str, str], start: datetime,
                   end: datetime) -> pl.DataFrame:
    """Finished-request deltas ``(series_id, ts, engine, outcome, delta)`` in ``(start, end]``."""
    columns = ("d.series_id, d.ts, coalesce(json_extract_string(s.labels, '$.engine'), '') AS engine, "
               "coalesce(json_extract_string(s.labels, '$.outcome'), '') AS outcome, d.delta")
    df = _deltas(con, "counter", columns, REQUESTS_TOTAL, selector, start, end)
    return df.cast({"series_id": pl.Int64, "ts": pl.Datetime("us"), "engine": pl.Utf8, "outcome": pl.Utf8,
                    "delta": pl.Float64})


def serving_services(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every ``service`` label on the store's serving series, sorted (for default SLOs)."""
    rows = con.execute("""
        SELECT DISTINCT json_extract_string(labels, '$.service') AS service FROM series
        WHERE metric = ? AND service IS NOT NULL ORDER BY service
    """, [REQUESTS_TOTAL]).fetchall()
    return [r[0] for r in rows]


def window_start(end: datetime, window_s: float) -> datetime:
    """``end`` minus a window in seconds."""
    return end - timedelta(seconds=window_s)
