"""The pages' charts as Vega-Lite specs (Altair, no Streamlit): bars per group, events per time bin, a forecast.

Streamlit draws Vega-Lite with a few hundred kilobytes of JavaScript; a new browser tab of a page with even
one Plotly chart evaluates several megabytes more before it shows anything (see docs/benchmarks.md,
Dashboards), so the pages chart with these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import altair as alt
import polars as pl

__all__ = ["bars", "time_bars", "forecast_band", "ROW_HEIGHT"]

ROW_HEIGHT = 36  # pixels per category of a horizontal bar chart
LABEL_LIMIT = 240  # pixels of a category label before it is cut


def _color(part: str, order: Sequence[str] | None, colors: Mapping[str, str] | None) -> alt.Color:
    if order is None:
        return alt.Color(f"{part}:N", title=None, legend=alt.Legend(orient="bottom"))
    domain = list(order)
    scale = alt.Scale(domain=domain, range=[colors.get(p, "#9ca3af") for p in domain]) if colors is not None \
        else alt.Scale(domain=domain)
    return alt.Color(f"{part}:N", scale=scale, title=None, legend=alt.Legend(orient="bottom"))


def _with_rank(frame: pl.DataFrame, part: str, order: Sequence[str] | None) -> pl.DataFrame:
    """``frame`` with ``_rank``: the position of each row's ``part`` in ``order`` (stack and legend order)."""
    ranks = {p: i for i, p in enumerate(order or ())}
    return frame.with_columns(pl.col(part).replace_strict(ranks, default=len(ranks), return_dtype=pl.Int64)
                              .alias("_rank"))


def bars(frame: pl.DataFrame, value: str, category: str, part: str, *, order: Sequence[str] | None = None,
         colors: Mapping[str, str] | None = None, grouped: bool = False, value_title: str | None = None) -> alt.Chart:
    """Horizontal bars of ``value`` per ``category``, split by ``part``: stacked, or side by side when ``grouped``.

    ``frame`` is long: one row per category and part. ``order`` fixes the parts' stack and legend order and
    ``colors`` their colours. Each category gets ``ROW_HEIGHT`` pixels.
    """
    data = _with_rank(frame.select(category, part, value), part, order)
    enc: dict[str, object] = {
        "x": alt.X(f"{value}:Q", title=value_title if value_title is not None else value,
                   stack=None if grouped else "zero"),
        # whole GPU model and team names, which the theme's default cut short
        "y": alt.Y(f"{category}:N", title=None, sort=None, axis=alt.Axis(labelLimit=LABEL_LIMIT)),
        "color": _color(part, order, colors),
        "order": alt.Order("_rank:Q"),
        "tooltip": [alt.Tooltip(f"{category}:N"), alt.Tooltip(f"{part}:N"), alt.Tooltip(f"{value}:Q", format=",.2f")],
    }
    if grouped:
        enc["yOffset"] = alt.YOffset(f"{part}:N", sort=list(order) if order is not None else "ascending")
    return alt.Chart(data).mark_bar().encode(**enc).properties(height=alt.Step(ROW_HEIGHT))


def time_bars(frame: pl.DataFrame, ts: str, value: str, part: str, every: timedelta, *,
              order: Sequence[str] | None = None, colors: Mapping[str, str] | None = None,
              value_title: str | None = None, height: int = 260) -> alt.Chart:
    """Stacked bars of ``value`` per time bin and ``part``; a bin starts at ``ts`` and lasts ``every``."""
    data = _with_rank(frame.select(ts, part, value), part, order).with_columns(
        (pl.col(ts) + every).alias("_bin_end"))
    return alt.Chart(data).mark_bar(binSpacing=1).encode(
        x=alt.X(f"{ts}:T", title=None), x2=alt.X2("_bin_end:T"),
        y=alt.Y(f"{value}:Q", title=value_title if value_title is not None else value, stack="zero"),
        color=_color(part, order, colors),
        order=alt.Order("_rank:Q"),
        tooltip=[alt.Tooltip(f"{ts}:T", format="%Y-%m-%d %H:%M"), alt.Tooltip(f"{part}:N"),
                 alt.Tooltip(f"{value}:Q", format=",.0f")],
    ).properties(height=height)


def forecast_band(history: pl.DataFrame, future: pl.DataFrame, *, value_title: str = "requests / h",
                  height: int = 320) -> alt.LayerChart:
    """The history line (``ts``, ``requests``), the forecast's mean line and its ``lower``-``upper`` band."""
    hist = alt.Chart(history.select("ts", "requests")).mark_line(color="#2563eb").encode(
        # a nice domain starts on a tick boundary, so a midnight tick (labelled with its day) is drawn
        x=alt.X("ts:T", title=None, scale=alt.Scale(nice=True)), y=alt.Y("requests:Q", title=value_title),
        tooltip=[alt.Tooltip("ts:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("requests:Q", format=",.0f")])
    fut = alt.Chart(future.select("ts", "mean", "lower", "upper"))
    band = fut.mark_area(opacity=0.25, color="#f59e0b").encode(x="ts:T", y="lower:Q", y2="upper:Q")
    mean = fut.mark_line(color="#d97706").encode(
        x="ts:T", y="mean:Q",
        tooltip=[alt.Tooltip("ts:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("mean:Q", format=",.0f"),
                 alt.Tooltip("lower:Q", format=",.0f"), alt.Tooltip("upper:Q", format=",.0f")])
    return alt.LayerChart(layer=[band, hist, mean]).properties(height=height)
