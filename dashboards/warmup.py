"""Warm-up: compute every page's default view for a window in a background thread (no Streamlit).

The store is opened read-only and its path is known at launch, so the server warms the windows of the
ranges it is told (by default the app's default range and the whole store) as soon as it starts, before any
browser connects; a session that opens another window warms that one after its first page is drawn. Each
window is warmed once per store version; values land in :data:`memo.MEMO` through :mod:`results`.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from typing import TextIO

from gpufleet.dashboards import queries, results
from gpufleet.dashboards.context import DEFAULT_CHARTS, chart_module, store_mtime
from gpufleet.dashboards.filters import RANGES, Filters, window
from gpufleet.dashboards.memo import MEMO

__all__ = ["JOB_GPUS", "PRELOAD", "enabled", "steps", "warm", "warm_store", "parse_ranges", "preload"]

JOB_GPUS = 1024  # the Reliability page's default training-job size
PRELOAD = ("gpufleet.analytics.cost.report", "gpufleet.analytics.capacity.forecast",
           "gpufleet.analytics.reliability.report", "gpufleet.dashboards.charts")
_warmed: set[tuple[str, float, datetime, datetime]] = set()
_lock = threading.Lock()


def enabled() -> bool:
    """Whether warming is on: ``GPUFLEET_DASHBOARD_WARM=0`` turns off both the server-start and the session warm-up."""
    return os.environ.get("GPUFLEET_DASHBOARD_WARM", "1") != "0"


def preload(names: Sequence[str] = PRELOAD) -> list[str]:
    """Import the modules the warm-up's steps import lazily (call before starting it beside other threads).

    A module that cannot be imported (a missing extra) is skipped: its page says so when asked for.
    Returns the names skipped.
    """
    skipped = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            skipped.append(name)
    return skipped


def _preload_charts(charts: str = DEFAULT_CHARTS) -> None:
    """Build and serialise one tiny chart of the app's library.

    The first chart in a process loads Altair's schema or Plotly's validators (~0.1-0.5 s).
    """
    import polars as pl

    chart = chart_module(charts).bars(pl.DataFrame({"g": ["warm"], "p": ["x"], "v": [1.0]}), "v", "g", "p")
    if charts == "plotly":
        chart.to_json()
    else:
        chart.to_dict()


def steps(db: str, mtime: float, start: datetime, end: datetime) -> list[Callable[[], object]]:
    """The reads and results behind every page's default view of ``[start, end]``, Fleet first."""
    return [
        lambda: results.fleet(db, mtime, start, end),
        lambda: results.utilization(db, mtime, start, end, "namespace"),
        lambda: results.recommendations(db, mtime, start, end),
        lambda: results.cost(db, mtime, start, end, "team"),
        lambda: results.used_hours(db, mtime, start, end),
        lambda: results.energy(db, mtime, start, end),
        lambda: results.read(queries.latency_buckets, db, mtime, start, end, None),
        lambda: results.forecast(db, mtime, start, end, None, 24),
        lambda: results.read(queries.fault_events, db, mtime, start, end, None),
        lambda: results.read(queries.probe_results, db, mtime, None),
        lambda: results.reliability(db, mtime, JOB_GPUS),
    ]


def _run(todo: Sequence[Callable[[], object]]) -> None:
    for step in todo:
        try:
            step()
        except Exception:  # noqa: BLE001 - a page shows its own error when its view is asked for
            continue
    _freeze()


def _freeze() -> None:
    """Move every object alive now out of the garbage collector's reach (:func:`gc.freeze`).

    Streamlit runs a full collection after every script run (``runner.postScriptGC``). Once warmed, the server
    holds ~200k long-lived objects (modules, Altair's schema, the memoised views) that such a collection would
    walk again on every page view: 0.1-0.4 s of each fresh tab here. Frozen objects are still freed by
    reference counting when the memo drops them.
    """
    gc.freeze()


def _stale(key: Hashable, db: str, mtime: float) -> bool:
    """A memo key of ``db`` at another modification time."""
    return isinstance(key, tuple) and len(key) > 2 and key[1] == db and key[2] != mtime


def _claim(db: str, mtime: float, start: datetime, end: datetime) -> bool:
    key = (db, mtime, start, end)
    with _lock:
        if key in _warmed:
            return False
        _warmed.add(key)
    return True


def warm(db: str, mtime: float, start: datetime, end: datetime, charts: str = DEFAULT_CHARTS) -> bool:
    """Start computing the default views of every page for this window, once per store version and window.

    Frames of older versions of the same store are dropped from the memo first. Returns whether a new
    warm-up started. ``charts`` is the app's chart library (see :data:`context.CHARTS`).
    """
    if not _claim(db, mtime, start, end):
        return False
    MEMO.drop(lambda k: _stale(k, db, mtime))
    todo = [lambda: _preload_charts(charts), *steps(db, mtime, start, end)]
    threading.Thread(target=_run, args=(todo,), name="gpufleet-warm", daemon=True).start()
    return True


def parse_ranges(text: str) -> list[str]:
    """``"7d,all"`` -> ``["7d", "all"]``; raises ValueError naming a range that the app does not offer."""
    out = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in out if r not in RANGES]
    if bad:
        raise ValueError(f"warm-up range {', '.join(map(repr, bad))} is not one of {', '.join(RANGES)}")
    return out


def warm_store(db: str, ranges: Sequence[str], log: TextIO = sys.stderr, clock: Callable[[], float] = time.perf_counter,
               charts: str = DEFAULT_CHARTS) -> list[tuple[datetime, datetime]]:
    """Warm every page's default view of each range's window (newest data, no other filter), in this thread.

    Logs one line per window and a last line holding ``warm-up done``; returns the windows warmed (a window
    two ranges share is warmed once). A store that cannot be read is logged and left to the pages to report.
    ``charts`` is the app's chart library (see :data:`context.CHARTS`).
    """
    t0 = clock()
    mtime = store_mtime(db)
    try:
        info = results.info(db, mtime)
    except Exception as exc:  # noqa: BLE001 - the page shows the same error with its hint
        print(f"gpufleet dashboard: warm-up skipped: {exc}", file=log, flush=True)
        return []
    _preload_charts(charts)
    done: list[tuple[datetime, datetime]] = []
    for rng in ranges:
        start, end = window(Filters(range=rng), info.first, info.last)
        if not _claim(db, mtime, start, end):
            continue
        t = clock()
        _run(steps(db, mtime, start, end))
        done.append((start, end))
        print(f"gpufleet dashboard: warmed range {rng} ({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}) in "
              f"{clock() - t:.1f} s", file=log, flush=True)
    print(f"gpufleet dashboard: warm-up done: {len(done)} window(s) in {clock() - t0:.1f} s", file=log, flush=True)
    return done
