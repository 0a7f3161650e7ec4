"""A process-wide memo of store reads and results, shared by every session and page of the app (no Streamlit).

Streamlit's ``st.cache_data`` keeps one copy per function and arguments and pickles every hit; the pages
of the app read the same frames (allocations, activity gauges, serving counters of one window) through
different report functions. :class:`Memo` computes each key once, even when several threads ask for it at
the same moment, and hands out the same immutable polars frame. :class:`MemoSource` is a
:class:`~gpufleet.analytics.cost.query.CostSource` whose frames come from the memo, keyed on the store
path, its modification time (a new scrape is a new key) and the window.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import polars as pl

from gpufleet.analytics.cost.query import DuckDBSource, Window
from gpufleet.dashboards.data import reading

__all__ = ["Memo", "MemoSource", "MEMO"]

T = TypeVar("T")


class Memo:
    """Values by key, computed once per key (per-key locks), least recently used evicted past ``max_entries``."""

    def __init__(self, max_entries: int = 512) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._pending: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value for ``key``; ``compute()`` runs only if no other call has computed or is computing it."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            lock = self._pending.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._data:
                    self.hits += 1
                    return self._data[key]
            value = compute()
            with self._lock:
                self.misses += 1
                self._data[key] = value
                self._pending.pop(key, None)
                while len(self._data) > self.max_entries:
                    self._data.popitem(last=False)
            return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def drop(self, predicate: Callable[[Hashable], bool]) -> int:
        """Forget every key for which ``predicate(key)`` is true; returns how many."""
        with self._lock:
            gone = [k for k in self._data if predicate(k)]
            for k in gone:
                del self._data[k]
            return len(gone)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()


MEMO = Memo()


class MemoSource:
    """The store's cost frames for the app, read once per store version and window and shared."""

    def __init__(self, db: str, mtime: float, memo: Memo = MEMO) -> None:
        self.db, self.mtime, self.memo = db, mtime, memo

    def _read(self, name: str, *args: Any) -> Any:
        def compute() -> Any:
            with reading(self.db) as con:
                return getattr(DuckDBSource(con), name)(*args)

        return self.memo.get(("source", self.db, self.mtime, name, *args), compute)

    def window(self, length: dt.timedelta) -> Window:
        """The window of ``length`` ending at the newest hour of allocations."""
        w: Window = self._read("window", length)
        return w

    def allocations(self, w: Window) -> pl.DataFrame:
        """GPU-seconds per hour, GPU and holder with pricing facts (see DuckDBSource.allocations)."""
        df: pl.DataFrame = self._read("allocations", w)
        return df

    def utilization(self, w: Window) -> pl.DataFrame:
        """Hourly activity gauges per GPU and holder (``queries.activity_gauges``: same frame, narrower join)."""
        from gpufleet.dashboards.queries import activity_gauges

        def compute() -> pl.DataFrame:
            with reading(self.db) as con:
                return activity_gauges(con, w.start, w.end)

        df: pl.DataFrame = self.memo.get(("source", self.db, self.mtime, "utilization", w), compute)
        return df

    def energy(self, w: Window) -> pl.DataFrame:
        """Joules per hour and GPU."""
        df: pl.DataFrame = self._read("energy", w)
        return df

    def serving(self, w: Window) -> pl.DataFrame:
        """Serving counters over the window."""
        df: pl.DataFrame = self._read("serving", w)
        return df

    def requests(self, w: Window) -> pl.DataFrame:
        """GPU requests per pod and container."""
        df: pl.DataFrame = self._read("requests", w)
        return df

    def probes(self) -> pl.DataFrame:
        """Mean probe value per GPU model and probe."""
        df: pl.DataFrame = self._read("probes")
        return df

    def prices(self) -> pl.DataFrame:
        """The stored price list."""
        df: pl.DataFrame = self._read("prices")
        return df
