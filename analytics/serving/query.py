"""Read-only store readers for the serving analytics: window counters, gauges, buckets and GPU time.

Every query reads the raw tables (15 days retained by default) through a read-only connection and
returns a polars frame; the models in this package never touch DuckDB. A sample at ``ts`` carries the
delta since its series' previous sample, so the window ``(start, end]`` covers ``seconds`` of time:
from ``start`` (or the first scrape in the store, when later) to ``end``, the newest scrape.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import polars as pl

__all__ = ["Window", "ServingSource", "GAUGE_METRICS", "LABELS"]

SERVING = "gpufleet_serving_"
# Normalised labels every frame carries, so reports can group and filter by any of them.
LABELS = ("model", "engine", "service", "namespace", "cluster", "pod")
_COLS = ", ".join(f"s.labels->>'{k}' AS {k}" for k in LABELS)
GAUGE_METRICS = (SERVING + "kv_cache_usage_ratio", SERVING + "requests_running", SERVING + "requests_waiting")


@dataclass(frozen=True)
class Window:
    """``(start, end]`` in UTC (naive, as stored); ``covered_from``: ``start`` or the first scrape, when later.

    ``seconds`` is ``end - covered_from``: the time the window's deltas account for.
    """

    start: dt.datetime
    end: dt.datetime
    covered_from: dt.datetime

    @property
    def seconds(self) -> float:
        """Seconds of serving data in the window."""
        return (self.end - self.covered_from).total_seconds()


class ServingSource:
    """Reads serving series of the gpufleet store through a (read-only) DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def _pl(self, sql: str, params: list[object]) -> pl.DataFrame:
        df = pl.from_arrow(self.con.sql(sql, params=params or None).to_arrow_table())
        assert isinstance(df, pl.DataFrame)
        return df

    def window(self, length: dt.timedelta) -> Window:
        """The window of ``length`` ending at the newest serving sample; ValueError when there is none."""
        rows = self.con.execute(
            "SELECT min(c.ts), max(c.ts) FROM counters c JOIN series s USING (series_id) "
            "WHERE s.metric LIKE ? ", [SERVING + "%"]).fetchall()
        first, newest = rows[0] if rows else (None, None)
        if newest is None:
            raise ValueError("the store holds no serving metrics (gpufleet_serving_*) yet: scrape an inference "
                             "engine (vLLM, SGLang, TGI, Triton) first")
        start = newest - length
        return Window(start, newest, max(start, first))

    def counters(self, w: Window) -> pl.DataFrame:
        """Counter increase per serving series over the window: labels, metric, outcome, value."""
        return self._pl(f"""
            SELECT {_COLS}, s.metric, s.labels->>'outcome' AS outcome, c.series_id, sum(c.delta) AS value
            FROM counters c JOIN series s USING (series_id)
            WHERE s.metric LIKE ? AND c.ts > ? AND c.ts <= ?
            GROUP BY ALL
        """, [SERVING + "%", w.start, w.end])

    def gauges(self, w: Window, metrics: Sequence[str] = GAUGE_METRICS) -> pl.DataFrame:
        """Raw gauge samples of ``metrics`` in the window: labels, series_id, metric, ts, value."""
        return self._pl(f"""
            SELECT {_COLS}, g.series_id, s.metric, g.ts, g.value
            FROM gauges g JOIN series s USING (series_id)
            WHERE s.metric IN (SELECT unnest(?)) AND g.ts > ? AND g.ts <= ?
        """, [list(metrics), w.start, w.end])

    def buckets(self, w: Window, metrics: Sequence[str]) -> pl.DataFrame:
        """Bucket increases of histograms ``metrics``: labels, metric, series_id, le, count."""
        return self._pl(f"""
            SELECT {_COLS}, s.metric, h.series_id, h.le, sum(h.delta) AS count
            FROM histogram_buckets h JOIN series s USING (series_id)
            WHERE s.metric IN (SELECT unnest(?)) AND h.ts > ? AND h.ts <= ?
            GROUP BY ALL
        """, [list(metrics), w.start, w.end])

    def gpu_time(self, w: Window) -> pl.DataFrame:
        """GPU-seconds held by each pod that serves a model, with its labels and the facts pricing needs.

        A pod is matched to the label sets its serving series carry; ``gpu_seconds`` already carries the
        pod's share of a GPU (MIG slice, time-slice). Rows count from ``covered_from`` so that GPU time and
        the counters' deltas span the same seconds.
        """
        pod_cols = ", ".join(f"labels->>'{k}' AS {k}" for k in LABELS)
        keep = ", ".join(f"p.{k}" for k in LABELS)
        return self._pl(f"""
            WITH pods AS (
                SELECT DISTINCT {pod_cols} FROM series WHERE metric LIKE ? AND labels->>'pod' IS NOT NULL
            )
            SELECT {keep}, a.gpu_uuid, coalesce(g.gpu_model, n.gpu_model) AS gpu_model,
                   n.provider, n.region, n.pricing_category, sum(a.interval_s * a.share) AS gpu_seconds
            FROM gpu_allocations a JOIN pods p ON p.namespace = a.namespace AND p.pod = a.pod
                 LEFT JOIN gpus g USING (gpu_uuid) LEFT JOIN nodes n ON n.node = a.node
            WHERE a.ts > ? AND a.ts <= ?
            GROUP BY ALL
        """, [SERVING + "%", w.covered_from, w.end])

    def prices(self) -> pl.DataFrame:
        """The stored price list (may be empty: the cost catalog then supplies prices)."""
        return self._pl("SELECT provider, region, gpu_model, pricing_category, usd_per_gpu_hour, effective_from "
                        "FROM prices", [])
