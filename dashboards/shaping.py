"""Cut big frames down to what a screen shows (pure: no Streamlit): time bins, node tallies, live health, first rows.

A 30-day window of a 1,000-GPU fleet holds about a thousand XID events on 125 nodes and a thousand GPUs;
a page shows their counts per time bin and the worst nodes and GPUs first, with the full rows a download away.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import polars as pl

from gpufleet.analytics.fleet import STATES
from gpufleet.dashboards.labels import number

__all__ = ["SEVERITIES", "EVERY", "bin_every", "xid_timeline", "xid_nodes", "live_table", "first_rows", "formatted",
           "MINUTES"]

SEVERITIES = ("critical", "warning", "application")
MINUTES = "%Y-%m-%d %H:%M"  # how tables write timestamps
EVERY = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "1d": timedelta(days=1)}  # bin widths by name
_LIVE_COLUMNS = ("state", "reason", "cluster", "node", "gpu_index", "gpu_model", "utilization_ratio",
                 "temperature_celsius", "power_watts", "memory_used_bytes", "namespace", "pod", "team", "gpu_uuid")


def bin_every(start: datetime, end: datetime, max_bins: int = 100) -> str:
    """The coarsest-needed bin (``"1h"``, ``"6h"`` or ``"1d"``) that keeps ``[start, end]`` within ``max_bins`` bins."""
    span = end - start
    return next((every for every, width in EVERY.items() if span / width <= max_bins), "1d")


def xid_timeline(events: pl.DataFrame, every: str) -> pl.DataFrame:
    """XID events per time bin and severity: columns ``ts`` (bin start), ``severity``, ``events``.

    ``events`` is :attr:`FleetSnapshot.events` (``ts``, ``severity``, ``count``); bins with no event are absent.
    """
    if events.height == 0:
        return pl.DataFrame(schema={"ts": pl.Datetime("us"), "severity": pl.String, "events": pl.Float64})
    return (events.with_columns(pl.col("ts").dt.truncate(every))
            .group_by("ts", "severity").agg(pl.col("count").sum().alias("events"))
            .sort("ts", "severity"))


def xid_nodes(events: pl.DataFrame) -> pl.DataFrame:
    """XID events per node, one column per severity, worst first (most critical, then most in all, then name)."""
    cols = ["cluster", "node", *SEVERITIES, "total", "last_ts"]
    if events.height == 0:
        return pl.DataFrame(schema={"cluster": pl.String, "node": pl.String, **{s: pl.Float64 for s in SEVERITIES},
                                    "total": pl.Float64, "last_ts": pl.Datetime("us")})
    per = events.group_by("cluster", "node").agg(
        *[pl.col("count").filter(pl.col("severity") == s).sum().alias(s) for s in SEVERITIES],
        pl.col("count").sum().alias("total"), pl.col("ts").max().alias("last_ts"))
    return per.sort(["critical", "total", "node"], descending=[True, True, False]).select(cols)


def live_table(gpus: pl.DataFrame) -> pl.DataFrame:
    """One row per GPU, least healthy first (lost, critical, warning, healthy; then node and index), memory in GiB."""
    order = {s: i for i, s in enumerate(STATES)}
    live = gpus.with_columns(pl.col("state").replace_strict(order, default=len(STATES)).alias("_o"))
    live = live.sort("_o", "node", "gpu_index").select([c for c in _LIVE_COLUMNS if c in live.columns])
    if "memory_used_bytes" in live.columns:
        live = live.with_columns((pl.col("memory_used_bytes") / 2**30).round(1).alias("memory_used_bytes")).rename(
            {"memory_used_bytes": "memory_used_gib"})
    return live


def first_rows(frame: pl.DataFrame, limit: int) -> tuple[pl.DataFrame, str | None]:
    """The first ``limit`` rows and, when rows were left out, a caption saying how many are shown of how many."""
    if frame.height <= limit:
        return frame, None
    return frame.head(limit), f"Showing {limit:,} of {frame.height:,} rows."


def formatted(frame: pl.DataFrame, formats: Mapping[str, str]) -> pl.DataFrame:
    """``frame`` with every value written as text, as a table shows it.

    Each column named in ``formats`` is written by its format (``"{:.1%}"``, ``"{:,.2f}"``), other numbers by
    :func:`labels.number` (integers grouped by thousands), booleans as yes/no. Nulls stay null; columns
    ``formats`` names that ``frame`` lacks are ignored. Timestamps not named are written to the minute
    (``MINUTES``): the stores keep whole minutes, and a page's markdown renderer would read ``00:00:00`` as an
    emoji code and load its emoji tables before showing the page.
    """
    cols = [pl.col(c).map_elements(spec.format, return_dtype=pl.String, skip_nulls=True).alias(c)
            for c, spec in formats.items() if c in frame.columns]
    rest = {c: t for c, t in frame.schema.items() if c not in formats}
    times = [pl.col(c).dt.strftime(MINUTES).alias(c) for c, t in rest.items() if isinstance(t, pl.Datetime)]
    ints = [pl.col(c).map_elements("{:,}".format, return_dtype=pl.String, skip_nulls=True).alias(c)
            for c, t in rest.items() if t.is_integer()]
    floats = [pl.col(c).map_elements(number, return_dtype=pl.String, skip_nulls=True).alias(c)
              for c, t in rest.items() if t.is_float()]
    flags = [pl.col(c).replace_strict({True: "yes", False: "no"}, return_dtype=pl.String).alias(c)
             for c, t in rest.items() if t == pl.Boolean]
    changed = [*cols, *times, *ints, *floats, *flags]
    return frame.with_columns(*changed) if changed else frame
