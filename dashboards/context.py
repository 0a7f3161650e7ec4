"""What a page is given: the store, its facts, the filters and the window they select (no Streamlit)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gpufleet.dashboards.data import StoreInfo
from gpufleet.dashboards.filters import Filters

__all__ = ["Context", "store_mtime", "resolve_db", "resolve_charts", "CHARTS"]

CHARTS = ("vega", "plotly")  # chart libraries the pages can draw with; the first is the default


def resolve_db(argv: list[str] | None = None) -> Path | None:
    """The store path: ``--db`` among the app's arguments (``streamlit run app.py -- ...``), else ``$GPUFLEET_DB``."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--db")
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    value = known.db or os.environ.get("GPUFLEET_DB")
    return Path(value) if value else None


def resolve_charts(argv: list[str] | None = None) -> str:
    """The chart library: ``--charts`` among the app's arguments, else ``$GPUFLEET_DASHBOARD_CHARTS``, else vega.

    Raises ValueError naming a value that is not one of :data:`CHARTS`.
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--charts")
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    value = known.charts or os.environ.get("GPUFLEET_DASHBOARD_CHARTS") or CHARTS[0]
    if value not in CHARTS:
        raise ValueError(f"charts {value!r} is not one of {', '.join(CHARTS)}")
    return str(value)


def store_mtime(db: str | Path) -> float:
    """Newest modification time of the store and its write-ahead log: the cache key of every query."""
    times = [os.stat(p).st_mtime_ns for p in (Path(db), Path(f"{db}.wal")) if p.exists()]
    return max(times, default=0) / 1e9


@dataclass(frozen=True)
class Context:
    """A page's inputs."""

    db: str
    mtime: float
    info: StoreInfo
    filters: Filters
    start: datetime
    end: datetime
    charts: str = CHARTS[0]  # the chart library, one of CHARTS
