"""The pages' charts as Plotly figures (no Streamlit): the same three charts as :mod:`charts`, for ``--charts plotly``.

Same arguments and the same picture as the Vega-Lite versions: bars per group (stacked or side by side),
events per time bin, the forecast with its band. Plotly's browser bundle is several megabytes, so a new
tab of a page drawn with these takes about a second longer here (docs/benchmarks.md, Dashboards).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import plotly.graph_objects as go
import polars as pl

from gpufleet.dashboards.charts import ROW_HEIGHT

__all__ = ["bars", "time_bars", "forecast_band"]

_MARGIN = {"l": 0, "r": 0, "t": 32, "b": 0}
# above the plot, in the given order (Plotly lists a stack's traces top-down, reversed, unless told)
_LEGEND = {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0, "traceorder": "normal"}
_DEFAULT_COLOR = "#9ca3af"


def _parts(frame: pl.DataFrame, part: str, order: Sequence[str] | None) -> list[str]:
    """The parts in stack and legend order: ``order`` first, then any others as they come."""
    seen = [p for p in frame[part].unique(maintain_order=True).to_list() if p is not None]
    first = [p for p in (order or ()) if p in seen]
    return first + [p for p in seen if p not in first]


def _color(p: str, colors: Mapping[str, str] | None) -> dict[str, str]:
    return {"color": colors.get(p, _DEFAULT_COLOR)} if colors is not None else {}


def bars(frame: pl.DataFrame, value: str, category: str, part: str, *, order: Sequence[str] | None = None,
         colors: Mapping[str, str] | None = None, grouped: bool = False, value_title: str | None = None) -> go.Figure:
    """Horizontal bars of ``value`` per ``category``, split by ``part``: stacked, or side by side when ``grouped``.

    ``frame`` is long: one row per category and part; categories keep their first-seen order, top to bottom.
    """
    categories = [c for c in frame[category].unique(maintain_order=True).to_list() if c is not None]
    fig = go.Figure()
    for p in _parts(frame, part, order):
        rows = frame.filter(pl.col(part) == p)
        fig.add_trace(go.Bar(
            x=rows[value].to_list(), y=rows[category].to_list(), name=str(p), orientation="h",
            marker=_color(p, colors),
            hovertemplate=f"%{{y}}<br>{p}: %{{x:,.2f}}<extra></extra>"))
    fig.update_layout(
        barmode="group" if grouped else "stack", height=ROW_HEIGHT * max(len(categories), 1) + 80,
        margin=_MARGIN, legend=_LEGEND,
        xaxis={"title": {"text": value_title if value_title is not None else value}},
        yaxis={"categoryorder": "array", "categoryarray": categories, "autorange": "reversed"})
    return fig


def time_bars(frame: pl.DataFrame, ts: str, value: str, part: str, every: timedelta, *,
              order: Sequence[str] | None = None, colors: Mapping[str, str] | None = None,
              value_title: str | None = None, height: int = 260) -> go.Figure:
    """Stacked bars of ``value`` per time bin and ``part``; a bin starts at ``ts`` and lasts ``every``."""
    width_ms = every.total_seconds() * 1000
    fig = go.Figure()
    for p in _parts(frame, part, order):
        rows = frame.filter(pl.col(part) == p)
        fig.add_trace(go.Bar(
            x=(rows[ts] + every / 2).to_list(), y=rows[value].to_list(), width=width_ms * 0.95, name=str(p),
            marker=_color(p, colors), customdata=rows[ts].dt.strftime("%Y-%m-%d %H:%M").to_list(),
            hovertemplate=f"%{{customdata}}<br>{p}: %{{y:,.0f}}<extra></extra>"))
    fig.update_layout(barmode="stack", height=height, margin=_MARGIN, legend=_LEGEND,
                      yaxis={"title": {"text": value_title if value_title is not None else value}})
    return fig


def forecast_band(history: pl.DataFrame, future: pl.DataFrame, *, value_title: str = "requests / h",
                  height: int = 320) -> go.Figure:
    """The history line (``ts``, ``requests``), the forecast's mean line and its ``lower``-``upper`` band."""
    ts = future["ts"].to_list()
    fig = go.Figure([
        go.Scatter(x=ts, y=future["upper"].to_list(), mode="lines", line={"width": 0}, showlegend=False,
                   hoverinfo="skip"),
        go.Scatter(x=ts, y=future["lower"].to_list(), mode="lines", line={"width": 0}, fill="tonexty",
                   fillcolor="rgba(245,158,11,0.25)", name="90 % interval", hoverinfo="skip"),
        go.Scatter(x=history["ts"].to_list(), y=history["requests"].to_list(), mode="lines", name="history",
                   line={"color": "#2563eb"}, hovertemplate="%{x|%Y-%m-%d %H:%M}: %{y:,.0f}<extra></extra>"),
        go.Scatter(x=ts, y=future["mean"].to_list(), mode="lines", name="forecast", line={"color": "#d97706"},
                   customdata=list(zip(future["lower"].to_list(), future["upper"].to_list(), strict=True)),
                   hovertemplate="%{x|%Y-%m-%d %H:%M}: %{y:,.0f} (%{customdata[0]:,.0f} to %{customdata[1]:,.0f})"
                                 "<extra></extra>"),
    ])
    fig.update_layout(height=height, margin=_MARGIN, legend=_LEGEND, yaxis={"title": {"text": value_title}})
    return fig
