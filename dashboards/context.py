"""What a page is given: the store, its facts, the filters and the window they select (no Streamlit)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType

from gpufleet.dashboards.data import StoreInfo
from gpufleet.dashboards.filters import Filters

__all__ = ["Context", "store_mtime", "resolve_db", "resolve_charts", "valid_charts", "chart_module", "CHARTS",
           "DEFAULT_CHARTS", "PAGES"]

# the app's pages: (title, url path, view module, icon)
PAGES = (
    ("Fleet", "fleet", "fleet", ":material/dns:"),
    ("Utilization", "utilization", "utilization", ":material/speed:"),
    ("Cost", "cost", "cost", ":material/payments:"),
    ("SLOs", "slos", "slos", ":material/target:"),
    ("Capacity", "capacity", "capacity", ":material/trending_up:"),
    ("Probes", "probes", "probes", ":material/science:"),
    ("Reliability", "reliability", "reliability", ":material/build:"),
)

# chart libraries the pages can draw with, and the module that builds each one's charts; the first is the default
CHARTS = {"vega": "gpufleet.dashboards.charts", "plotly": "gpufleet.dashboards.plotly_charts"}
DEFAULT_CHARTS = next(iter(CHARTS))


def _app_option(flag: str, env: str, argv: list[str] | None) -> str | None:
    """``flag``'s value among the app's arguments (``streamlit run app.py -- ...``), else ``$env``, else None."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument(flag)
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    value = getattr(known, flag.lstrip("-")) or os.environ.get(env)
    return str(value) if value else None


def resolve_db(argv: list[str] | None = None) -> Path | None:
    """The store path: ``--db`` among the app's arguments, else ``$GPUFLEET_DB``."""
    value = _app_option("--db", "GPUFLEET_DB", argv)
    return Path(value) if value else None


def valid_charts(name: str) -> str:
    """``name`` if it is one of :data:`CHARTS`; else ValueError naming it."""
    if name not in CHARTS:
        raise ValueError(f"charts {name!r} is not one of {', '.join(CHARTS)}")
    return name


def resolve_charts(argv: list[str] | None = None) -> str:
    """The chart library: ``--charts`` among the app's arguments, else ``$GPUFLEET_DASHBOARD_CHARTS``, else vega.

    Raises ValueError naming a value that is not one of :data:`CHARTS`.
    """
    return valid_charts(_app_option("--charts", "GPUFLEET_DASHBOARD_CHARTS", argv) or DEFAULT_CHARTS)


def chart_module(name: str) -> ModuleType:
    """The module building the charts of library ``name`` (same functions, same arguments, either library)."""
    return importlib.import_module(CHARTS[valid_charts(name)])


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
    charts: str = DEFAULT_CHARTS  # the chart library, one of CHARTS
