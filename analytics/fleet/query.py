"""Read the fleet's state from a store (read-only connection) into polars frames for :mod:`.health`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from gpufleet.analytics.fleet.health import HealthRules, by_model_state, classify, lost_gpus, xid_summary

__all__ = ["FleetSnapshot", "load_snapshot", "store_range", "LATEST_METRICS"]

# Native GPU gauges read for live health; the column name is the metric without ``gpufleet_gpu_``.
LATEST_METRICS = (
    "gpufleet_gpu_up", "gpufleet_gpu_utilization_ratio", "gpufleet_gpu_temperature_celsius",
    "gpufleet_gpu_power_watts", "gpufleet_gpu_memory_used_bytes", "gpufleet_gpu_row_remap_failure",
    "gpufleet_gpu_sm_active_ratio", "gpufleet_gpu_tensor_active_ratio",
)
_PREFIX = "gpufleet_gpu_"


@dataclass(frozen=True)
class FleetSnapshot:
    """The fleet as of ``end``, with the XIDs of ``[start, end]``."""

    start: datetime
    end: datetime
    gpus: pl.DataFrame  # one row per GPU: identity, latest readings, holder, state, reason
    by_model_state: pl.DataFrame
    lost: pl.DataFrame
    events: pl.DataFrame  # XID events in the window
    xids: pl.DataFrame  # per code

    @property
    def state_counts(self) -> dict[str, int]:
        """GPUs per state."""
        counts = dict.fromkeys(("lost", "critical", "warning", "healthy"), 0)
        for state, n in self.gpus.group_by("state").len().iter_rows():
            counts[state] = int(n)
        return counts


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql, params=params).to_arrow_table())  # type: ignore[return-value]


def store_range(con: duckdb.DuckDBPyConnection) -> tuple[datetime, datetime] | None:
    """First and last scrape time in the store, or None for an empty store."""
    rows = con.execute("SELECT min(scrape_ts), max(scrape_ts) FROM batches").fetchall()
    row = rows[0] if rows else None
    if not row or row[0] is None:
        return None
    return row[0], row[1]


def _where(cluster: str | None, gpu_model: str | None, alias: str = "g") -> tuple[str, list[Any]]:
    clauses, params = [], []
    if cluster:
        clauses.append(f"{alias}.cluster = ?")
        params.append(cluster)
    if gpu_model:
        clauses.append(f"{alias}.gpu_model = ?")
        params.append(gpu_model)
    return (" AND " + " AND ".join(clauses)) if clauses else "", params


def load_snapshot(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, *, cluster: str | None = None,
                  gpu_model: str | None = None, team: str | None = None, rules: HealthRules = HealthRules(),
                  lookback_s: float = 6 * 3600) -> FleetSnapshot:
    """GPUs of the filtered fleet as of ``end`` with their state; XIDs between ``start`` and ``end``.

    ``team`` keeps the GPUs held (at ``end``) by a namespace of that team.
    """
    if end < start:
        raise ValueError(f"time range: end {end} is before start {start}")
    where, params = _where(cluster, gpu_model)
    inventory = _frame(con, f"""
        SELECT g.gpu_uuid, g.cluster, g.node, g.gpu_index, g.gpu_model, g.mig_profile, n.pricing_category,
               least(g.last_ts, ?) AS last_ts
        FROM gpus g LEFT JOIN nodes n USING (node)
        WHERE g.first_ts <= ?{where}
        ORDER BY g.node, try_cast(g.gpu_index AS INTEGER), g.gpu_uuid""", [end, end, *params])
    metrics = ", ".join(f"'{m}'" for m in LATEST_METRICS)
    readings = _frame(con, f"""
        SELECT s.labels->>'gpu_uuid' AS gpu_uuid, s.metric, arg_max(v.value, v.ts) AS value, max(v.ts) AS ts
        FROM gauges v JOIN series s USING (series_id)
        WHERE s.metric IN ({metrics}) AND v.ts > ? AND v.ts <= ? AND s.labels->>'mig_instance' IS NULL
        GROUP BY ALL""", [end - timedelta(seconds=lookback_s), end])
    if readings.height:
        seen = readings.group_by("gpu_uuid").agg(pl.col("ts").max().alias("seen_ts"))
        latest = (readings.with_columns(pl.col("metric").str.strip_prefix(_PREFIX))
                  .pivot(on="metric", index="gpu_uuid", values="value").join(seen, on="gpu_uuid"))
        inventory = inventory.join(latest.select("gpu_uuid", "seen_ts"), on="gpu_uuid", how="left").with_columns(
            pl.coalesce("seen_ts", "last_ts").alias("last_ts")).drop("seen_ts")
        latest = latest.drop("seen_ts")
    else:
        latest = pl.DataFrame(schema={"gpu_uuid": pl.Utf8})
    holders = _frame(con, """
        WITH last AS (SELECT gpu_uuid, max(ts) AS ts FROM gpu_allocations WHERE ts > ? AND ts <= ? GROUP BY 1)
        SELECT a.gpu_uuid, string_agg(DISTINCT a.namespace, ', ' ORDER BY a.namespace) AS namespace,
               string_agg(DISTINCT a.pod, ', ' ORDER BY a.pod) AS pod,
               string_agg(DISTINCT ns.team, ', ' ORDER BY ns.team) AS team
        FROM gpu_allocations a JOIN last USING (gpu_uuid, ts) LEFT JOIN namespaces ns USING (namespace)
        WHERE a.pod IS NOT NULL GROUP BY 1""", [end - timedelta(seconds=lookback_s), end])
    events = _frame(con, f"""
        SELECT e.ts, e.cluster, e.node, e.gpu_uuid, g.gpu_model, e.code, e.severity, e.failure_class, e.count,
               e.message
        FROM events e LEFT JOIN gpus g USING (gpu_uuid)
        WHERE e.kind = 'xid' AND e.ts >= ? AND e.ts <= ?{where.replace('g.cluster', 'e.cluster')}
        ORDER BY e.ts DESC""", [start, end, *params])
    gpus = classify(inventory, latest, events, end, rules)
    gpus = gpus.join(holders, on="gpu_uuid", how="left") if holders.height else gpus.with_columns(
        pl.lit(None, dtype=pl.Utf8).alias("namespace"), pl.lit(None, dtype=pl.Utf8).alias("pod"),
        pl.lit(None, dtype=pl.Utf8).alias("team"))
    if team:
        gpus = gpus.filter(pl.col("team").fill_null("").str.split(", ").list.contains(team))
        events = events.filter(pl.col("gpu_uuid").is_in(gpus["gpu_uuid"].implode()))
    return FleetSnapshot(start=start, end=end, gpus=gpus, by_model_state=by_model_state(gpus), lost=lost_gpus(gpus),
                         events=events, xids=xid_summary(events))
