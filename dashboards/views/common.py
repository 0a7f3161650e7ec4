"""Shared pieces of the pages: the "not available" state, tables, charts, downloads and number formats."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.dashboards.context import Context, chart_module
from gpufleet.dashboards.html_table import html_table
from gpufleet.dashboards.labels import header
from gpufleet.dashboards.shaping import first_rows, formatted

__all__ = ["available", "unavailable", "gib", "table", "csv_download", "chart_kit", "plot", "TABLE_ROWS"]

EXTRA_HINT = "pip install 'gpufleet[app]'"
TABLE_ROWS = 25  # rows a page's table shows; the rest are in its CSV download
SCROLL_ROWS = 12  # a table of more rows scrolls inside TABLE_HEIGHT pixels
TABLE_HEIGHT = 440


def available(module: str) -> bool:
    """Whether an analytics module is installed (pages over missing modules say so instead of failing)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def unavailable(what: str, module: str) -> None:
    """The explicit state of a page whose analytics are not in this installation: no numbers at all."""
    st.warning(f"{what} is not available in this installation: the module `{module}` is not installed.",
               icon=":material/block:")


def gib(n_bytes: float | None) -> float | None:
    """Bytes to GiB, None stays None."""
    return None if n_bytes is None else n_bytes / 2**30


def chart_kit(ctx: Context) -> ModuleType:
    """The module building this app's charts: :mod:`charts` (Vega-Lite) or :mod:`plotly_charts`, as started."""
    return chart_module(ctx.charts)


def plot(ctx: Context, chart: Any) -> None:
    """Draw a chart from :func:`chart_kit` across the page: an Altair chart, or a Plotly figure."""
    if ctx.charts == "plotly":
        st.plotly_chart(chart, width="stretch", config={"displaylogo": False})
    else:
        st.altair_chart(chart, width="stretch")


def csv_download(label: str, frame: pl.DataFrame, file_name: str, key: str) -> None:
    """A button downloading ``frame`` as CSV, written only when pressed."""
    st.download_button(label, lambda: frame.write_csv().encode(), file_name=file_name, mime="text/csv", key=key)


def table(frame: pl.DataFrame, *, formats: Mapping[str, str] | None = None, limit: int = TABLE_ROWS,
          download: str | None = None, note: str = "") -> None:
    """A static table of ``frame``'s first ``limit`` rows, values written as ``formats`` says.

    Numbers ``formats`` does not name are written by :func:`labels.number`; columns are headed by
    :func:`labels.header`.
    A table of more than ``SCROLL_ROWS`` rows scrolls inside ``TABLE_HEIGHT`` pixels.

    The table is one ``st.html`` element (:mod:`html_table`): ``st.dataframe``'s data grid makes a new browser
    tab load and start about a megabyte of JavaScript first (0.5-1 s here), and ``st.table`` builds a pandas
    Styler on the server and a React component per cell in the browser. When rows are left out, a caption
    says how many are shown of how many (then ``note``) and a button downloads all of them as CSV (file
    ``download`` or ``gpufleet-table.csv``).
    """
    shown, cut = first_rows(frame, limit)
    if cut:
        st.caption(f"{cut} {note}".strip())
    numeric = {c for c, t in shown.schema.items() if t.is_numeric()}
    st.html(html_table(formatted(shown, formats or {}), numeric, header=header,
                       max_height=TABLE_HEIGHT if shown.height > SCROLL_ROWS else None))
    if cut:
        name = download or "gpufleet-table.csv"
        csv_download(f"Download all {frame.height:,} rows (CSV)", frame, name, f"dl_{name}")
