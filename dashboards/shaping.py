"""Cut big frames down to what a screen shows (pure: no Streamlit): time bins, per-node tallies, first rows.

A 30-day window of a 1,000-GPU fleet holds about a thousand XID events on 125 nodes and a thousand GPUs;
a page shows their counts per time bin and the worst nodes and GPUs first, with the full rows a download away.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import polars as pl

__all__ = ["SEVERITIES", "EVERY", "bin_every", "xid_timeline", "xid_nodes", "first_rows", "formatted", "MINUTES"]

SEVERITIES = ("critical", "warning", "application")
MINUTES = "%Y-%m-%d %H:%M"  # how tables write timestamps
EVERY = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "1d": timedelta(days=1)}  # bin widths by name


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


def first_rows(frame: pl.DataFrame, limit: int) -> tuple[pl.DataFrame, str | None]:
    """The first ``limit`` rows and, when rows were left out, a caption saying how many are shown of how many."""
    if frame.height <= limit:
        return frame, None
    return frame.head(limit), f"Showing {limit:,} of {frame.height:,} rows."


def formatted(frame: pl.DataFrame, formats: Mapping[str, str]) -> pl.DataFrame:
    """``frame`` with each column named in ``formats`` turned into text by its format (``"{:.1%}"``, ``"${:,.2f}"``).

    Nulls stay null; columns ``formats`` names that ``frame`` lacks are ignored. Timestamps not named are
    written to the minute (``MINUTES``): the stores keep whole minutes, and a page's markdown renderer would
    read ``00:00:00`` as an emoji code and load its emoji tables before showing the page.
    """
    cols = [pl.col(c).map_elements(spec.format, return_dtype=pl.String, skip_nulls=True).alias(c)
            for c, spec in formats.items() if c in frame.columns]
    times = [pl.col(c).dt.strftime(MINUTES).alias(c) for c, t in frame.schema.items()
             if c not in formats and isinstance(t, pl.Datetime)]
    return frame.with_columns(*cols, *times) if cols or times else frame
