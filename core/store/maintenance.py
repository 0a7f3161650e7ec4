"""Rollups (1 minute, 1 hour) and retention, run by the writer between batches.

Rollups are recomputed for every (series, bucket) that has raw data at or after the oldest
timestamp written since the last run (``dirty_from``), so late and backfilled samples reach
them; buckets whose raw data retention already dropped keep their rollups. Retention counts
back from the newest sample and cuts on hour boundaries, so no rollup bucket is ever half raw.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

__all__ = ["Retention", "maintain"]


@dataclass(frozen=True)
class Retention:
    """How long each resolution is kept, in days."""

    raw_days: float = 15.0
    minute_days: float = 90.0
    hour_days: float = 730.0


_AT = "make_timestamp(CAST(? * 1e6 AS BIGINT))"  # epoch seconds -> TIMESTAMP, independent of the session zone

# table -> (select computing the rollup from raw rows with ts >= ?, key columns of a rollup row)
_ROLLUPS = {
    "gauges": ("""SELECT series_id, time_bucket(INTERVAL 1 {unit}, ts) AS ts, count(*) AS count, sum(value) AS sum,
                         min(value) AS min, max(value) AS max, arg_max(value, ts) AS last
                  FROM gauges WHERE ts >= ? GROUP BY ALL""", ("series_id", "ts")),
    "counters": ("""SELECT series_id, time_bucket(INTERVAL 1 {unit}, ts) AS ts, sum(delta) AS delta,
                           arg_max(value, ts) AS last
                    FROM counters WHERE ts >= ? GROUP BY ALL""", ("series_id", "ts")),
    "histogram_buckets": ("""SELECT series_id, time_bucket(INTERVAL 1 {unit}, ts) AS ts, le, sum(delta) AS delta
                             FROM histogram_buckets WHERE ts >= ? GROUP BY ALL""", ("series_id", "ts")),
    "gpu_allocations": ("""SELECT time_bucket(INTERVAL 1 {unit}, ts) AS ts, gpu_uuid, cluster, node, namespace, pod,
                                  container, sum(interval_s * share) AS gpu_seconds
                           FROM gpu_allocations WHERE ts >= ? GROUP BY ALL""", ("gpu_uuid", "ts")),
}
_RESOLUTIONS = {"1m": ("minute", ("gauges", "counters", "histogram_buckets")),
                "1h": ("hour", ("gauges", "counters", "histogram_buckets", "gpu_allocations"))}


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> object:
    row = con.execute(sql, params or []).fetchone()
    return row[0] if row else None


def _rebuild(con: duckdb.DuckDBPyConnection, table: str, res: str, unit: str, start: object) -> None:
    select, keys = _ROLLUPS[table]
    con.execute(f"CREATE OR REPLACE TEMP TABLE fresh_rollup AS {select.format(unit=unit)}", [start])
    match = " AND ".join(f"r.{k} = f.{k}" for k in keys)
    con.execute(f"""DELETE FROM {table}_{res} r WHERE r.ts >= ? AND EXISTS (
                        SELECT 1 FROM fresh_rollup f WHERE {match})""", [start])
    con.execute(f"INSERT INTO {table}_{res} SELECT * FROM fresh_rollup")
    con.execute("DROP TABLE fresh_rollup")


def maintain(con: duckdb.DuckDBPyConnection, retention: Retention = Retention()) -> None:
    """Bring rollups up to date and drop data past retention, in one transaction."""
    dirty = _scalar(con, "SELECT CAST(value AS DOUBLE) FROM meta WHERE key = 'dirty_from'")
    con.begin()
    try:
        if dirty is not None:
            for res, (unit, tables) in _RESOLUTIONS.items():
                start = _scalar(con, f"SELECT date_trunc('{unit}', {_AT})", [dirty])
                for table in tables:
                    _rebuild(con, table, res, unit, start)
            con.execute("DELETE FROM meta WHERE key = 'dirty_from'")
        newest = _scalar(con, "SELECT max(ts) FROM gauges")
        if newest is not None:
            for tables, days in (
                (("gauges", "counters", "histogram_buckets", "gpu_allocations"), retention.raw_days),
                (("gauges_1m", "counters_1m", "histogram_buckets_1m"), retention.minute_days),
                (("gauges_1h", "counters_1h", "histogram_buckets_1h", "gpu_allocations_1h", "events",
                  "probe_results"), retention.hour_days),
            ):
                cut = _scalar(con, "SELECT date_trunc('hour', ?::TIMESTAMP - to_microseconds(?::BIGINT))",
                              [newest, int(days * 86400e6)])
                for table in tables:
                    con.execute(f"DELETE FROM {table} WHERE ts < ?", [cut])
        con.commit()
    except Exception:
        con.rollback()
        raise
