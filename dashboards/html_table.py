"""A frame as one static HTML table (pure: no Streamlit): escaped text, numbers right-aligned, a scroll box.

A page's tables are drawn with ``st.html`` as a single element. ``st.table`` turns every cell into a
styled React component and its frame into a pandas Styler on the server; on a 25-row table that was
0.1-0.3 s of the server's script run and a comparable share of a new browser tab's rendering.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import polars as pl

__all__ = ["html_table", "CLASS", "STYLE"]

CLASS = "gpufleet-table"


# the same rules for every table of a page, so a table's own height goes in its own style attribute
STYLE = (f"<style>.{CLASS}{{overflow-x:auto}}"
         f".{CLASS} table{{border-collapse:collapse;width:100%;font-size:0.875rem}}"
         f".{CLASS} th,.{CLASS} td{{padding:0.25rem 0.5rem;text-align:left;white-space:nowrap;"
         "border-bottom:1px solid rgba(128,128,128,0.25)}"
         # a tinted, blurred header reads in the light and the dark theme alike as rows scroll under it
         f".{CLASS} th{{position:sticky;top:0;font-weight:600;background:rgba(128,128,128,0.15);"
         "backdrop-filter:blur(8px)}"
         f".{CLASS} .num{{text-align:right;font-variant-numeric:tabular-nums}}</style>")


def _cell(tag: str, value: object, numeric: bool) -> str:
    text = "" if value is None else escape(str(value))
    return f'<{tag} class="num">{text}</{tag}>' if numeric else f"<{tag}>{text}</{tag}>"


def html_table(shown: pl.DataFrame, numeric: set[str], *, max_height: int | None = None,
               header: Callable[[str], str] = str) -> str:
    """``shown`` (values already formatted) as an HTML table; columns in ``numeric`` are right-aligned.

    Every header and value is HTML-escaped: labels come from the store. ``max_height`` (pixels) makes the
    table scroll under a header that stays put; ``header`` turns a column's name into its heading.
    """
    head = "".join(_cell("th", header(c), c in numeric) for c in shown.columns)
    flags = [c in numeric for c in shown.columns]
    body = "".join("<tr>" + "".join(_cell("td", v, n) for v, n in zip(row, flags, strict=True)) + "</tr>"
                   for row in shown.iter_rows())
    scroll = f' style="max-height:{max_height}px;overflow-y:auto"' if max_height else ""
    return (f'{STYLE}<div class="{CLASS}"{scroll}><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")
