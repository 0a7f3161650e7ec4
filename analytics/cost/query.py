"""The query layer: reads what the cost models need from a store into polars frames.

Models never touch DuckDB; they take the frames this module returns. The other data sources (a
Prometheus-compatible API, Parquet rollups) implement the same :class:`CostSource` protocol, known as
``Source`` in :mod:`gpufleet.analytics.sources`, which opens any of them from a ``--source`` string.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

import duckdb
import polars as pl

__all__ = ["Window", "CostSource", "DuckDBSource", "UTILIZATION_METRICS", "SERVING_METRICS", "parse_window"]

UTILIZATION_METRICS = ("gpufleet_gpu_sm_active_ratio", "gpufleet_gpu_graphics_engine_active_ratio",
                       "gpufleet_gpu_utilization_ratio")
SERVING_METRICS = ("gpufleet_serving_prompt_tokens_total", "gpufleet_serving_generation_tokens_total",
                   "gpufleet_serving_prefix_cache_hit_tokens_total", "gpufleet_serving_requests_total",
                   "gpufleet_serving_request_prefill_time_seconds_sum",
                   "gpufleet_serving_request_decode_time_seconds_sum",
                   "gpufleet_serving_time_to_first_token_seconds_sum",
                   "gpufleet_serving_request_queue_time_seconds_sum",
                   "gpufleet_serving_e2e_request_latency_seconds_sum")


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)`` in UTC (naive datetimes, as the store keeps them)."""

    start: dt.datetime
    end: dt.datetime

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def parse_window(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``90m`` or ``2w`` -> a timedelta; anything else is a ValueError naming the input."""
    units = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
    t = text.strip().lower()
    try:
        n = float(t[:-1])
    except ValueError:
        n = -1.0
    if not t or t[-1] not in units or n <= 0:
        raise ValueError(f"window {text!r}: use a positive number and a unit m, h, d or w (e.g. 30d)")
    return dt.timedelta(seconds=n * units[t[-1]])


class CostSource(Protocol):
    """What the cost models read. Every frame is restricted to the window."""

    def window(self, length: dt.timedelta) -> Window: ...
    def allocations(self, w: Window) -> pl.DataFrame: ...
    def utilization(self, w: Window) -> pl.DataFrame: ...
    def energy(self, w: Window) -> pl.DataFrame: ...
    def serving(self, w: Window) -> pl.DataFrame: ...
    def requests(self, w: Window) -> pl.DataFrame: ...
    def probes(self) -> pl.DataFrame: ...
    def prices(self) -> pl.DataFrame: ...


class DuckDBSource:
    """Reads the gpufleet store (hourly rollups) through a read-only DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def _pl(self, sql: str, params: list[object] | None = None) -> pl.DataFrame:
        df = pl.from_arrow(self.con.sql(sql, params=params or None).to_arrow_table())
        assert isinstance(df, pl.DataFrame)
        return df

    def window(self, length: dt.timedelta) -> Window:
        """The window of ``length`` ending at the newest hour of data (not the wall clock)."""
        row = self.con.execute("SELECT max(ts) FROM gpu_allocations_1h").fetchall()[0]
        newest = row[0] if row else None
        if newest is None:
            row = self.con.execute("SELECT date_trunc('hour', max(ts)) FROM gpu_allocations").fetchall()[0]
            newest = row[0] if row else None
        if newest is None:
            raise ValueError("the store holds no GPU allocations yet (nothing to cost)")
        end = newest + dt.timedelta(hours=1)
        return Window(end - length, end)

    def allocations(self, w: Window) -> pl.DataFrame:
        """GPU-seconds per hour, GPU and holder (NULL pod: free), with node pricing facts and team."""
        sql = """
            WITH a AS (
                SELECT ts, gpu_uuid, cluster, node, namespace, pod, container, gpu_seconds FROM gpu_allocations_1h
                WHERE ts >= ? AND ts < ?
            )
            SELECT a.ts, a.gpu_uuid, coalesce(a.cluster, n.cluster) AS cluster, a.node,
                   coalesce(g.gpu_model, n.gpu_model) AS gpu_model, g.mig_profile,
                   n.provider, n.region, n.instance_type, n.pricing_category,
                   a.namespace, ns.team, a.pod, a.container, a.gpu_seconds
            FROM a LEFT JOIN gpus g USING (gpu_uuid) LEFT JOIN nodes n ON n.node = a.node
                   LEFT JOIN namespaces ns ON ns.namespace = a.namespace
        """
        df = self._pl(sql, [w.start, w.end])
        if df.height == 0:  # rollups not built yet: bucket the raw rows
            df = self._pl(sql.replace(
                "SELECT ts, gpu_uuid, cluster, node, namespace, pod, container, gpu_seconds FROM gpu_allocations_1h",
                "SELECT date_trunc('hour', ts) AS ts, gpu_uuid, cluster, node, namespace, pod, container, "
                "sum(interval_s * share) AS gpu_seconds FROM gpu_allocations").replace(
                "WHERE ts >= ? AND ts < ?", "WHERE ts >= ? AND ts < ? GROUP BY ALL"), [w.start, w.end])
        return df

    def utilization(self, w: Window) -> pl.DataFrame:
        """Hourly mean of the three activity gauges per GPU (or MIG instance) and holder."""
        names = ", ".join(f"'{m}'" for m in UTILIZATION_METRICS)
        return self._pl(f"""
            SELECT g.ts, s.metric, s.labels->>'gpu_uuid' AS gpu_uuid, s.labels->>'mig_instance' AS mig_instance,
                   s.labels->>'namespace' AS namespace, s.labels->>'pod' AS pod,
                   sum(g.sum) AS sum, sum(g.count) AS count
            FROM gauges_1h g JOIN series s USING (series_id)
            WHERE s.metric IN ({names}) AND g.ts >= ? AND g.ts < ?
            GROUP BY ALL
        """, [w.start, w.end])

    def energy(self, w: Window) -> pl.DataFrame:
        """Joules per hour and GPU from the NVML energy counter."""
        return self._pl("""
            SELECT c.ts, s.labels->>'gpu_uuid' AS gpu_uuid, sum(c.delta) AS joules
            FROM counters_1h c JOIN series s USING (series_id)
            WHERE s.metric = 'gpufleet_gpu_energy_joules_total' AND c.ts >= ? AND c.ts < ?
              AND s.labels->>'mig_instance' IS NULL
            GROUP BY ALL
        """, [w.start, w.end])

    def serving(self, w: Window) -> pl.DataFrame:
        """Serving counters summed over the window per model, service, namespace, pod and metric."""
        names = ", ".join(f"'{m}'" for m in SERVING_METRICS)
        return self._pl(f"""
            SELECT s.metric, s.labels->>'model' AS model, s.labels->>'service' AS service,
                   s.labels->>'namespace' AS namespace, s.labels->>'pod' AS pod, s.labels->>'node' AS node,
                   s.labels->>'outcome' AS outcome, sum(c.delta) AS value
            FROM counters_1h c JOIN series s USING (series_id)
            WHERE s.metric IN ({names}) AND c.ts >= ? AND c.ts < ?
            GROUP BY ALL
        """, [w.start, w.end])

    def requests(self, w: Window) -> pl.DataFrame:
        """The largest GPU request per pod and container (kube-state-metrics)."""
        return self._pl("""
            SELECT s.labels->>'namespace' AS namespace, s.labels->>'pod' AS pod,
                   s.labels->>'container' AS container, max(g.max) AS gpus_requested
            FROM gauges_1h g JOIN series s USING (series_id)
            WHERE s.metric = 'kube_pod_container_resource_requests' AND s.labels->>'resource' = 'nvidia_com_gpu'
              AND g.ts >= ? AND g.ts < ?
            GROUP BY ALL
        """, [w.start, w.end])

    def probes(self) -> pl.DataFrame:
        """Mean probe value per GPU model and probe."""
        return self._pl("SELECT gpu_model, probe, unit, avg(value) AS value, count(*) AS n FROM probe_results "
                        "WHERE gpu_model IS NOT NULL GROUP BY ALL")

    def prices(self) -> pl.DataFrame:
        """The stored price list."""
        return self._pl("SELECT provider, region, gpu_model, pricing_category, usd_per_gpu_hour, effective_from, "
                        "source FROM prices")
