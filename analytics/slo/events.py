"""Good and bad events per scrape interval from stored deltas (pure; polars in, polars out).

Two inputs, both as the store keeps them (per-interval deltas, already corrected for counter resets):

- histogram bucket deltas ``(series_id, ts, le, delta)`` of one latency histogram, ``le`` cumulative
  with ``+Inf`` for the total;
- request-outcome counter deltas ``(series_id, ts, engine, outcome, delta)``.

Both become one shape, ``EVENT_COLUMNS``: per ``ts``, the ``total`` events, the ``bad`` estimate and
its bounds ``bad_min`` / ``bad_max``. For availability the bounds equal the estimate. For latency the
good count at a threshold is interpolated inside the straddling bucket (see ``sli.py``); since that
interpolation is linear in the bucket counts, sums over any window of the per-interval estimates and
bounds equal the estimate and bounds of the window's summed histogram.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import polars as pl

from gpufleet.analytics.slo.sli import SliError

__all__ = ["EVENT_COLUMNS", "empty_events", "latency_events", "availability_events", "FINISHED", "ABORTED"]

EVENT_COLUMNS = ("ts", "total", "bad", "bad_min", "bad_max")

# Engines without an outcome split (SGLang) store every finished request as outcome="finished" and the
# aborted ones (errors included, they cannot be told apart) as outcome="abort".
FINISHED = "finished"
ABORTED = "abort"


def empty_events() -> pl.DataFrame:
    """An events frame with no rows."""
    return pl.DataFrame(schema={"ts": pl.Datetime("us"), "total": pl.Float64, "bad": pl.Float64,
                                "bad_min": pl.Float64, "bad_max": pl.Float64})


def _per_ts(df: pl.DataFrame) -> pl.DataFrame:
    if df.is_empty():
        return empty_events()
    return (df.group_by("ts").agg(pl.col("total").sum(), pl.col("bad").sum(), pl.col("bad_min").sum(),
                                  pl.col("bad_max").sum())
            .select(EVENT_COLUMNS).sort("ts")
            .with_columns(pl.col("ts").cast(pl.Datetime("us")),
                          *(pl.col(c).cast(pl.Float64) for c in EVENT_COLUMNS[1:])))


def latency_events(buckets: pl.DataFrame, threshold_s: float, metric: str = "histogram") -> pl.DataFrame:
    """Per-interval events of ``observation > threshold_s`` from bucket deltas of one histogram.

    Each series is placed in its own bucket layout (engines may differ). Raises ``SliError`` naming
    ``metric`` when the threshold is not positive, beyond a series' highest finite bucket, or when a
    series has no ``+Inf`` bucket to count the total from.
    """
    if not threshold_s > 0 or not math.isfinite(threshold_s):
        raise SliError(f"{metric}: threshold {threshold_s!r} s must be a positive number of seconds")
    if buckets.is_empty():
        return empty_events()
    t = float(threshold_s)
    # one row per (series, stamp, bucket): an hourly rollup row may share its stamp with a raw one
    buckets = buckets.group_by("series_id", "ts", "le").agg(pl.col("delta").sum())
    finite = pl.col("le").is_finite()
    # the layout is taken per scrape, so a series whose buckets change (an engine upgrade) stays right
    layout = buckets.group_by("series_id", "ts").agg(
        top=pl.col("le").filter(finite).max(),
        hi=pl.col("le").filter(finite & (pl.col("le") >= t)).min(),
        lo=pl.col("le").filter(pl.col("le") < t).max(),
        has_inf=(pl.col("le") == math.inf).any(),
    )
    bad_layout = layout.filter(pl.col("top").is_null() | (pl.col("top") < t))
    if not bad_layout.is_empty():
        tops = [float(v) for v in bad_layout["top"].drop_nulls().to_list()]
        where = f"le={min(tops):g}" if tops else "no finite bucket"
        raise SliError(f"{metric}: threshold {t:g} s is beyond the highest finite bucket ({where}); pick a "
                       "threshold at or below it (the +Inf bucket says nothing about where inside it)")
    if not layout["has_inf"].all():
        raise SliError(f"{metric}: a series has no le=+Inf bucket, so its request total is unknown")
    layout = layout.with_columns(pl.col("lo").fill_null(0.0))
    keyed = buckets.join(layout.select("series_id", "ts", "lo", "hi"), on=["series_id", "ts"])
    total = keyed.filter(pl.col("le") == math.inf).select("series_id", "ts", total=pl.col("delta"))
    c_hi = keyed.filter(pl.col("le") == pl.col("hi")).select("series_id", "ts", "lo", "hi", c_hi=pl.col("delta"))
    c_lo = keyed.filter(pl.col("le") == pl.col("lo")).select("series_id", "ts", c_lo=pl.col("delta"))
    rows = (total.join(c_hi, on=["series_id", "ts"], how="left")
            .join(c_lo, on=["series_id", "ts"], how="left")
            .with_columns(pl.col("c_hi").fill_null(0.0), pl.col("c_lo").fill_null(0.0)))
    frac = pl.when(pl.col("hi") == t).then(1.0).otherwise((t - pl.col("lo")) / (pl.col("hi") - pl.col("lo")))
    good = pl.col("c_lo") + (pl.col("c_hi") - pl.col("c_lo")) * frac
    rows = rows.with_columns(bad=pl.col("total") - good, bad_min=pl.col("total") - pl.col("c_hi"),
                             bad_max=pl.when(pl.col("hi") == t).then(pl.col("total") - pl.col("c_hi"))
                             .otherwise(pl.col("total") - pl.col("c_lo")))
    return _per_ts(rows)


def availability_events(outcomes: pl.DataFrame, bad_outcomes: Iterable[str]) -> pl.DataFrame:
    """Per-interval events of failed requests from outcome counter deltas.

    A series group with an outcome split (vLLM ``stop|length|abort|error``, TGI/Triton
    ``success|error``): total = every outcome, bad = the outcomes in ``bad_outcomes``. A group without
    one (SGLang): total = ``finished``, bad = ``abort`` (aborted and failed requests together).
    Groups are told apart per engine label.
    """
    bad_set = set(bad_outcomes)
    if outcomes.is_empty():
        return empty_events()
    split = outcomes.group_by("engine").agg(lumped=(pl.col("outcome") == FINISHED).any())
    df = outcomes.join(split, on="engine", how="left")
    is_total = pl.when(pl.col("lumped")).then(pl.col("outcome") == FINISHED).otherwise(True)
    is_bad = (pl.when(pl.col("lumped")).then(pl.col("outcome") == ABORTED)
              .otherwise(pl.col("outcome").is_in(sorted(bad_set))))
    rows = df.select("ts", total=pl.when(is_total).then(pl.col("delta")).otherwise(0.0),
                     bad=pl.when(is_bad).then(pl.col("delta")).otherwise(0.0))
    rows = rows.with_columns(bad_min=pl.col("bad"), bad_max=pl.col("bad"))
    return _per_ts(rows)
