"""Rollups (1 minute, 1 hour) and retention, run by the writer between batches.

Rollups are rebuilt from the oldest timestamp written since the last run (``dirty_from``),
so late or backfilled samples reach them too. Retention counts back from the newest sample.
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
_ROLLUPS = {
    "gauges": """INSERT INTO gauges_{res}
        SELECT series_id, time_bucket(INTERVAL 1 {unit}, ts) AS b, count(*), sum(value), min(value), max(value),
               arg_max(value, ts)
        FROM gauges WHERE ts >= ? GROUP BY series_id, b""",
    "counters": """INSERT INTO counters_{res}
        SELECT series_id, time_bucket(INTERVAL 1 {unit}, ts) AS b, sum(delta), arg_max(value, ts)
        FROM counters WHERE ts >= ? GROUP BY series_id, b""",
    "histogram_buckets": """INSERT INTO histogram_buckets_{res}
        SELECT series_id, time_bucket(INTERVAL 1 {unit}, ts) AS b, le, sum(delta)
        FROM histogram_buckets WHERE ts >= ? GROUP BY series_id, b, le""",
}


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> object:
    row = con.execute(sql, params or []).fetchone()
    return row[0] if row else None


def maintain(con: duckdb.DuckDBPyConnection, retention: Retention = Retention()) -> None:
    """Bring rollups up to date and drop data past retention, in one transaction."""
    row = con.execute("SELECT CAST(value AS DOUBLE) FROM meta WHERE key = 'dirty_from'").fetchone()
    con.begin()
    try:
        if row is not None:
            dirty = row[0]
            for res, unit, trunc in (("1m", "minute", "minute"), ("1h", "hour", "hour")):
                start = _scalar(con, f"SELECT date_trunc('{trunc}', {_AT})", [dirty])
                for table, sql in _ROLLUPS.items():
                    con.execute(f"DELETE FROM {table}_{res} WHERE ts >= ?", [start])
                    con.execute(sql.format(res=res, unit=unit), [start])
            start_h = _scalar(con, f"SELECT date_trunc('hour', {_AT})", [dirty])
            con.execute("DELETE FROM gpu_allocations_1h WHERE ts >= ?", [start_h])
            con.execute("""INSERT INTO gpu_allocations_1h
                SELECT time_bucket(INTERVAL 1 hour, ts) AS b, gpu_uuid, cluster, node, namespace, pod, container,
                       sum(interval_s * share)
                FROM gpu_allocations WHERE ts >= ? GROUP BY ALL""", [start_h])
            con.execute("DELETE FROM meta WHERE key = 'dirty_from'")
        newest = _scalar(con, "SELECT max(ts) FROM gauges")
        if newest is not None:
            for tables, days in (
                (("gauges", "counters", "histogram_buckets", "gpu_allocations"), retention.raw_days),
                (("gauges_1m", "counters_1m", "histogram_buckets_1m"), retention.minute_days),
                (("gauges_1h", "counters_1h", "histogram_buckets_1h", "gpu_allocations_1h", "events",
                  "probe_results"), retention.hour_days),
            ):
                for table in tables:
                    con.execute(f"DELETE FROM {table} WHERE ts < ?::TIMESTAMP - to_microseconds(?::BIGINT)",
                                [newest, int(days * 86400e6)])
        con.commit()
    except Exception:
        con.rollback()
        raise
