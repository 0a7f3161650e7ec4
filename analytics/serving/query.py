"""Read-only store readers for the serving analytics: window counters, gauges, buckets and GPU time.

Every query returns a polars frame; the models in this package never touch DuckDB. A sample at ``ts``
carries the delta since its series' previous sample, so the window ``(start, end]`` covers ``seconds``
of time: from ``start`` (or the first scrape in the store, when later) to ``end``, the newest scrape.

Raw samples are kept 15 days by default; hourly rollups far longer. When a window reaches back past
the oldest raw serving sample, counters, buckets and GPU time of the older, whole hours come from the
hourly rollups (retention cuts raw data on hour boundaries, so no hour is counted twice) and the
window then starts on an hour boundary. Gauge statistics (percentiles, time above a threshold) need raw
samples, so they cover the raw part only: :attr:`Window.raw_from` says from when.
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
HOUR = dt.timedelta(hours=1)


def _hour_ceil(t: dt.datetime) -> dt.datetime:
    floor = t.replace(minute=0, second=0, microsecond=0)
    return floor if floor == t else floor + HOUR


@dataclass(frozen=True)
class Window:
    """``(start, end]`` in UTC (naive, as stored) and ``covered_from``, where its deltas begin.

    ``covered_from`` is the last scrape at or before ``start`` (the first delta after ``start`` covers
    the time since then), or the first data when the store begins later. ``seconds`` is
    ``end - covered_from``. ``rollup_until`` is set when hours before it come from the hourly rollups
    (``raw_from`` is the oldest raw sample).
    """

    start: dt.datetime
    end: dt.datetime
    covered_from: dt.datetime
    raw_from: dt.datetime | None = None
    rollup_until: dt.datetime | None = None

    @property
    def seconds(self) -> float:
        """Seconds of serving data in the window."""
        return (self.end - self.covered_from).total_seconds()

    @property
    def raw_seconds(self) -> float:
        """Seconds the raw samples (and so the gauge statistics) cover."""
        if self.rollup_until is None or self.raw_from is None:
            return self.seconds
        return (self.end - self.raw_from).total_seconds()


class ServingSource:
    """Reads serving series of the gpufleet store through a (read-only) DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def _pl(self, sql: str, params: list[object]) -> pl.DataFrame:
        df = pl.from_arrow(self.con.sql(sql, params=params or None).to_arrow_table())
        assert isinstance(df, pl.DataFrame)
        return df

    def _range(self, table: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        rows = self.con.execute(
            f"SELECT min(c.ts), max(c.ts) FROM {table} c JOIN series s USING (series_id) WHERE s.metric LIKE ?",
            [SERVING + "%"]).fetchall()
        return rows[0] if rows else (None, None)

    def window(self, length: dt.timedelta) -> Window:
        """The window of ``length`` ending at the newest serving sample; ValueError when there is none."""
        raw_from, newest = self._range("counters")
        if newest is None or raw_from is None:
            raise ValueError("the store holds no serving metrics (gpufleet_serving_*) yet: scrape an inference "
                             "engine (vLLM, SGLang, TGI, Triton) first")
        start = newest - length
        if start >= raw_from:
            # Deltas cover the interval since the previous scrape: a window starting between two scrapes
            # really starts at the earlier one (else a window shorter than the scrape interval over-rates).
            rows = self.con.execute(
                "SELECT max(c.ts) FROM counters c JOIN series s USING (series_id) WHERE s.metric LIKE ? AND c.ts <= ?",
                [SERVING + "%", start]).fetchall()
            return Window(start, newest, rows[0][0] or start, raw_from)
        cut = raw_from.replace(minute=0, second=0, microsecond=0)
        rolled_from, _ = self._range("counters_1h")
        if rolled_from is None or rolled_from >= cut:
            return Window(start, newest, raw_from, raw_from)
        begin = _hour_ceil(start)
        return Window(start, newest, max(begin, rolled_from), raw_from, cut)

    def _hours(self, w: Window) -> tuple[dt.datetime, dt.datetime]:
        """Rollup hour range ``[from, until)`` of the window (empty when the raw samples cover it)."""
        if w.rollup_until is None:
            return w.end, w.end
        return w.covered_from, w.rollup_until

    def counters(self, w: Window) -> pl.DataFrame:
        """Counter increase per serving series over the window: labels, metric, outcome, value."""
        h0, h1 = self._hours(w)
        return self._pl(f"""
            WITH c AS (
                SELECT series_id, delta FROM counters WHERE ts > ? AND ts <= ?
                UNION ALL SELECT series_id, delta FROM counters_1h WHERE ts >= ? AND ts < ?
            )
            SELECT {_COLS}, s.metric, s.labels->>'outcome' AS outcome, c.series_id, sum(c.delta) AS value
            FROM c JOIN series s USING (series_id)
            WHERE s.metric LIKE ?
            GROUP BY ALL
        """, [w.covered_from, w.end, h0, h1, SERVING + "%"])

    def gauges(self, w: Window, metrics: Sequence[str] = GAUGE_METRICS) -> pl.DataFrame:
        """Raw gauge samples of ``metrics`` from ``covered_from`` (the opening scrape) to ``end``.

        Columns: the labels, series_id, metric, ts, value.
        """
        return self._pl(f"""
            SELECT {_COLS}, g.series_id, s.metric, g.ts, g.value
            FROM gauges g JOIN series s USING (series_id)
            WHERE s.metric IN (SELECT unnest(?)) AND g.ts >= ? AND g.ts <= ?
        """, [list(metrics), w.covered_from, w.end])

    def buckets(self, w: Window, metrics: Sequence[str]) -> pl.DataFrame:
        """Bucket increases of histograms ``metrics``: labels, metric, series_id, le, count."""
        h0, h1 = self._hours(w)
        return self._pl(f"""
            WITH h AS (
                SELECT series_id, le, delta FROM histogram_buckets WHERE ts > ? AND ts <= ?
                UNION ALL SELECT series_id, le, delta FROM histogram_buckets_1h WHERE ts >= ? AND ts < ?
            )
            SELECT {_COLS}, s.metric, h.series_id, h.le, sum(h.delta) AS count
            FROM h JOIN series s USING (series_id)
            WHERE s.metric IN (SELECT unnest(?))
            GROUP BY ALL
        """, [w.covered_from, w.end, h0, h1, list(metrics)])

    def buckets_over_time(self, w: Window, metrics: Sequence[str], step_s: float) -> pl.DataFrame:
        """Bucket increases per step of ``step_s`` seconds: labels, ``t`` (step start), metric, series_id, le, count.

        Steps are aligned to the epoch (an hourly step starts on the hour). A sample counts in the step
        holding the interval it closes. Hours read from the rollups need a step of whole hours.
        """
        if step_s < 60:
            raise ValueError(f"step {step_s:g} s: use at least 60 s")
        if w.rollup_until is not None and step_s % 3600:
            raise ValueError(f"step {step_s:g} s: this window reaches the hourly rollups, so use whole hours")
        h0, h1 = self._hours(w)
        # A raw sample closes the interval before it, so one exactly on a step boundary belongs to the step
        # that ends there; a rollup row holds the hour that starts at its timestamp.
        raw_t = "make_timestamp(CAST(floor((epoch_us(ts) - 1) / (? * 1e6)) * (? * 1e6) AS BIGINT))"
        hour_t = "make_timestamp(CAST(floor(epoch_us(ts) / (? * 1e6)) * (? * 1e6) AS BIGINT))"
        return self._pl(f"""
            WITH h AS (
                SELECT series_id, {raw_t} AS t, le, delta FROM histogram_buckets WHERE ts > ? AND ts <= ?
                UNION ALL
                SELECT series_id, {hour_t} AS t, le, delta FROM histogram_buckets_1h WHERE ts >= ? AND ts < ?
            )
            SELECT {_COLS}, h.t, s.metric, h.series_id, h.le, sum(h.delta) AS count
            FROM h JOIN series s USING (series_id)
            WHERE s.metric IN (SELECT unnest(?))
            GROUP BY ALL
        """, [step_s, step_s, w.covered_from, w.end, step_s, step_s, h0, h1, list(metrics)])

    def gpu_time(self, w: Window) -> pl.DataFrame:
        """GPU-seconds held by each pod that serves a model, with its labels and the facts pricing needs.

        A pod is matched to the label sets its serving series carry; ``gpu_seconds`` already carries the
        pod's share of a GPU (MIG slice, time-slice). Rows count from ``covered_from`` so that GPU time and
        the counters' deltas span the same seconds.
        """
        h0, h1 = self._hours(w)
        pod_cols = ", ".join(f"labels->>'{k}' AS {k}" for k in LABELS)
        keep = ", ".join(f"p.{k}" for k in LABELS)
        return self._pl(f"""
            WITH pods AS (
                SELECT DISTINCT {pod_cols} FROM series WHERE metric LIKE ? AND labels->>'pod' IS NOT NULL
            ), a AS (
                SELECT gpu_uuid, node, namespace, pod, interval_s * share AS gpu_seconds FROM gpu_allocations
                WHERE ts > ? AND ts <= ?
                UNION ALL SELECT gpu_uuid, node, namespace, pod, gpu_seconds FROM gpu_allocations_1h
                WHERE ts >= ? AND ts < ?
            )
            SELECT {keep}, a.gpu_uuid, coalesce(g.gpu_model, n.gpu_model) AS gpu_model,
                   n.provider, n.region, n.pricing_category, sum(a.gpu_seconds) AS gpu_seconds
            FROM a JOIN pods p ON p.namespace = a.namespace AND p.pod = a.pod
                 LEFT JOIN gpus g USING (gpu_uuid) LEFT JOIN nodes n ON n.node = a.node
            GROUP BY ALL
        """, [SERVING + "%", w.covered_from, w.end, h0, h1])

    def prices(self) -> pl.DataFrame:
        """The stored price list (may be empty: the cost catalog then supplies prices)."""
        return self._pl("SELECT provider, region, gpu_model, pricing_category, usd_per_gpu_hour, effective_from "
                        "FROM prices", [])
