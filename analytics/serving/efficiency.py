"""Serving efficiency per model and engine: token rates, prefix cache, KV-cache pressure, preemptions, queueing.

Pure functions over polars frames in the normalised serving schema (``gpufleet_serving_*``):

- ``counters``: the grouping labels (``by``, default model and engine), ``engine``, ``metric``,
  ``outcome``, ``value`` — each counter's increase over the window (reset-corrected), one row per series
  or already summed.
- ``gauges``: the grouping labels, ``series_id``, ``metric``, ``ts``, ``value`` — raw gauge samples.
- ``queue``: ``{group key: (bounds, cumulative)}`` for ``request_queue_time_seconds``, keyed like ``by``.

Rates divide by ``window_s``. A gauge sample stands for the interval since the previous sample of its
series; the first sample of each series (or any at or before ``opened_at``) only opens it. Time above
a KV-cache threshold is summed over replicas (replica-seconds) and also given as a share of the observed
replica-seconds.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence

import polars as pl

from gpufleet.analytics.serving.histograms import Histogram, histogram_quantile

__all__ = ["SERVING", "GROUP", "COLUMNS", "token_rates", "kv_pressure", "concurrency", "queueing", "efficiency"]

SERVING = "gpufleet_serving_"
GROUP = ["model", "engine"]
KV = SERVING + "kv_cache_usage_ratio"
COLUMNS = {
    "requests_per_s": "completed requests per second",
    "prompt_tokens_per_s": "prompt (input) tokens per second",
    "generation_tokens_per_s": "generated (output) tokens per second",
    "prefix_cache_hit_rate": "prefix-cache hit tokens over queried tokens (SGLang: over prompt tokens)",
    "preemptions_per_s": "requests preempted per second (KV cache ran out)",
    "kv_cache_usage_mean": "mean KV-cache usage ratio over samples",
    "kv_cache_usage_p95": "95th percentile of KV-cache usage samples",
    "kv_cache_above_s": "replica-seconds with KV-cache usage above the threshold",
    "kv_cache_above_ratio": "share of observed replica-seconds above the threshold",
    "requests_running_mean": "mean requests running, summed over replicas",
    "requests_waiting_mean": "mean requests waiting, summed over replicas",
    "requests_waiting_max": "largest waiting queue seen on one replica",
    "queue_time_mean_s": "mean time a request waited before scheduling",
    "queue_time_p95_s": "95th percentile of queue time (histogram interpolation)",
}


def _empty(by: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict.fromkeys(by, pl.String))


def token_rates(counters: pl.DataFrame, window_s: float, by: Sequence[str] = GROUP) -> pl.DataFrame:
    """Requests, prompt and generation tokens, and preemptions per second; the prefix-cache hit rate.

    SGLang's ``requests_total{outcome="finished"}`` already counts aborted requests, so where a group has a
    ``finished`` outcome only that one counts. The hit rate is hits over queried tokens; SGLang exposes no
    query counter, so there it is hits over prompt tokens (``prefix_cache_basis`` says which).
    """
    if not window_s > 0:
        raise ValueError(f"window must be > 0 s, got {window_s}")
    keys = list(by)
    if counters.height == 0:
        return _empty(keys)
    req = SERVING + "requests_total"
    per_engine = list(dict.fromkeys([*keys, "engine"]))
    has_finished = ((pl.col("metric") == req) & (pl.col("outcome") == "finished")).any().over(per_engine)
    kept = counters.filter((pl.col("metric") != req) | ~has_finished | (pl.col("outcome") == "finished"))
    wide = kept.group_by([*per_engine, "metric"]).agg(pl.col("value").sum()).pivot(
        on="metric", index=per_engine, values="value", aggregate_function="first")
    names = ("requests_total", "prompt_tokens_total", "generation_tokens_total", "preemptions_total",
             "prefix_cache_hit_tokens_total", "prefix_cache_query_tokens_total")
    for c in names:
        if SERVING + c not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(SERVING + c))
    hits, queries, prompt = (pl.col(SERVING + n) for n in ("prefix_cache_hit_tokens_total",
                                                            "prefix_cache_query_tokens_total", "prompt_tokens_total"))
    # Per engine first: the hit-rate denominator is queried tokens where counted, else prompt tokens.
    wide = wide.with_columns(
        _denom=pl.when(hits.is_not_null()).then(pl.coalesce(queries, prompt)),
        _basis=pl.when(hits.is_null()).then(pl.lit(None, dtype=pl.String))
        .when(queries.is_not_null()).then(pl.lit("queries")).otherwise(pl.lit("prompt_tokens")))
    summed = wide.group_by(keys).agg(
        *(_nsum(SERVING + c).alias(c) for c in names), _nsum("_denom").alias("_denom"),
        pl.col("_basis").drop_nulls().unique().sort().alias("_bases"))
    return summed.select(
        *keys,
        requests_per_s=pl.col("requests_total") / window_s,
        prompt_tokens_per_s=pl.col("prompt_tokens_total") / window_s,
        generation_tokens_per_s=pl.col("generation_tokens_total") / window_s,
        prefix_cache_hit_rate=pl.when(pl.col("_denom") > 0)
        .then(pl.col("prefix_cache_hit_tokens_total") / pl.col("_denom")).otherwise(None),
        prefix_cache_basis=pl.when(pl.col("_bases").list.len() == 0).then(pl.lit(None, dtype=pl.String))
        .when(pl.col("_bases").list.len() == 1).then(pl.col("_bases").list.first())
        .otherwise(pl.lit("mixed")),
        preemptions_per_s=pl.col("preemptions_total") / window_s,
    )


def _nsum(col: str) -> pl.Expr:
    """Sum that stays null when every value is null (a series no engine of the group exposes)."""
    return pl.when(pl.col(col).is_not_null().any()).then(pl.col(col).sum())


def _intervals(gauges: pl.DataFrame, max_interval_s: float | None) -> pl.DataFrame:
    """Each sample's covered interval (s) since the previous sample of its series; 0 for the first."""
    gap = (pl.col("ts") - pl.col("ts").shift(1).over("series_id")).dt.total_microseconds() / 1e6
    out = gauges.sort(["series_id", "ts"]).with_columns(interval_s=gap.fill_null(0.0))
    if max_interval_s is not None:
        out = out.with_columns(interval_s=pl.col("interval_s").clip(upper_bound=max_interval_s))
    return out


def kv_pressure(gauges: pl.DataFrame, threshold: float = 0.9, max_interval_s: float | None = None,
                by: Sequence[str] = GROUP, opened_at: dt.datetime | None = None) -> pl.DataFrame:
    """KV-cache usage mean and p95 over samples, and the time (replica-seconds and share) above ``threshold``.

    Samples at or before ``opened_at`` (the scrape the window's data starts from) only open their series.
    """
    kv = gauges.filter(pl.col("metric") == KV)
    if kv.height == 0:
        return _empty(by)
    kv = _intervals(kv, max_interval_s)
    if opened_at is not None:
        kv = kv.filter(pl.col("ts") > opened_at)
        if kv.height == 0:
            return _empty(by)
    return kv.group_by(list(by)).agg(
        kv_cache_usage_mean=pl.col("value").mean(),
        kv_cache_usage_p95=pl.col("value").quantile(0.95, interpolation="linear"),
        kv_cache_above_s=pl.col("interval_s").filter(pl.col("value") > threshold).sum(),
        _observed_s=pl.col("interval_s").sum(),
    ).with_columns(
        kv_cache_above_ratio=pl.when(pl.col("_observed_s") > 0)
        .then(pl.col("kv_cache_above_s") / pl.col("_observed_s")).otherwise(None),
    ).drop("_observed_s")


def concurrency(gauges: pl.DataFrame, by: Sequence[str] = GROUP, opened_at: dt.datetime | None = None
                ) -> pl.DataFrame:
    """Mean running and waiting requests (per-replica means summed over replicas) and the largest queue."""
    run, wait = SERVING + "requests_running", SERVING + "requests_waiting"
    g = gauges.filter(pl.col("metric").is_in([run, wait]))
    if opened_at is not None:
        g = g.filter(pl.col("ts") > opened_at)
    if g.height == 0:
        return _empty(by)
    per_series = g.group_by([*by, "metric", "series_id"]).agg(mean=pl.col("value").mean(),
                                                               peak=pl.col("value").max())
    return per_series.group_by(list(by)).agg(
        requests_running_mean=pl.col("mean").filter(pl.col("metric") == run).sum(),
        requests_waiting_mean=pl.col("mean").filter(pl.col("metric") == wait).sum(),
        requests_waiting_max=pl.col("peak").filter(pl.col("metric") == wait).max(),
        _has_run=(pl.col("metric") == run).any(), _has_wait=(pl.col("metric") == wait).any(),
    ).with_columns(
        requests_running_mean=pl.when(pl.col("_has_run")).then(pl.col("requests_running_mean")),
        requests_waiting_mean=pl.when(pl.col("_has_wait")).then(pl.col("requests_waiting_mean")),
    ).drop("_has_run", "_has_wait")


def queueing(counters: pl.DataFrame, queue: Mapping[tuple[object, ...], Histogram],
             by: Sequence[str] = GROUP) -> pl.DataFrame:
    """Mean queue time (``_sum`` over ``_count``) and its p95 from the queue-time histogram."""
    keys = list(by)
    s, c = SERVING + "request_queue_time_seconds_sum", SERVING + "request_queue_time_seconds_count"
    sums = counters.filter(pl.col("metric").is_in([s, c])).group_by(keys).agg(
        _sum=pl.col("value").filter(pl.col("metric") == s).sum(),
        _count=pl.col("value").filter(pl.col("metric") == c).sum())
    rows = [{**{k: None if v is None else str(v) for k, v in zip(keys, key, strict=True)},
             "queue_time_p95_s": histogram_quantile(0.95, *h)} for key, h in queue.items()]
    p95 = pl.DataFrame(rows, schema={**dict.fromkeys(keys, pl.String), "queue_time_p95_s": pl.Float64})
    mean = sums.select(*keys, queue_time_mean_s=pl.when(pl.col("_count") > 0)
                       .then(pl.col("_sum") / pl.col("_count")).otherwise(None))
    mean = mean.with_columns(pl.col(k).cast(pl.String) for k in keys)
    return mean.join(p95, on=keys, how="full", coalesce=True, nulls_equal=True)


def efficiency(counters: pl.DataFrame, gauges: pl.DataFrame, queue: Mapping[tuple[object, ...], Histogram],
               window_s: float, *, kv_threshold: float = 0.9, max_interval_s: float | None = None,
               by: Sequence[str] = GROUP, opened_at: dt.datetime | None = None) -> pl.DataFrame:
    """One row per ``by`` group (model and engine) with every column of :data:`COLUMNS` (``None`` if not exposed)."""
    if not 0 < kv_threshold <= 1 or math.isnan(kv_threshold):
        raise ValueError(f"KV-cache threshold must lie in (0, 1], got {kv_threshold}")
    keys = list(by)
    parts = [token_rates(counters, window_s, keys), kv_pressure(gauges, kv_threshold, max_interval_s, keys, opened_at),
             concurrency(gauges, keys, opened_at), queueing(counters, queue, keys)]
    out = _empty(keys)
    for p in parts:
        p = p.with_columns(pl.col(k).cast(pl.String) for k in keys)
        out = out.join(p, on=keys, how="full", coalesce=True, nulls_equal=True)
    for col in (*COLUMNS, "prefix_cache_basis"):
        if col not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.String if col == "prefix_cache_basis" else pl.Float64)
                                   .alias(col))
    return out.select(*keys, *COLUMNS, "prefix_cache_basis").sort(keys, nulls_last=True)
