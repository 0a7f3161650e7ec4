"""The store's single writer, with replayed scrapes handled as columns from end to end.

:class:`ColumnWriter` is a :class:`~gpufleet.core.store.StoreWriter` (the same connection, tables,
transaction and idempotency) that takes a faster road for a :class:`ReplayBatch`: it keeps each
replaying target's last counter and bucket values as one array beside its plan, so the next
replay of that plan finds its previous values without a lookup per series; it computes deltas
(Prometheus' reset rule; a histogram resets as a whole when any bucket went down) and XID
events with numpy, and appends gauges, counters, buckets and ``series_state`` as Arrow columns
built straight from those arrays. Any other batch (a new series, an out-of-order sample, a plain
:class:`Batch`) first moves its target's array state back into the per-series dictionary and
goes through :class:`StoreWriter`'s own per-sample path, so both roads land identical rows.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from gpufleet.collectors.repeat import Plan, ReplayBatch
from gpufleet.core.store import Batch, StoreWriter, WriteReport
from gpufleet.core.store.batch import SeriesDef
from gpufleet.core.store.writer import _append, _Rows

__all__ = ["ColumnWriter"]

_State = dict[tuple[int, float], tuple[float, float]]
_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]


@dataclass
class _Columns:
    """A target's counter and bucket values at ``ts``, in its plan's state-key order."""

    plan: Plan
    ts: float
    values: _F64


@dataclass
class _Txn:
    """What one write has changed so far, before its commit."""

    state: _State = field(default_factory=dict)
    columns: dict[str, _Columns] = field(default_factory=dict)
    per_sample: set[str] = field(default_factory=set)  # targets that took the per-sample path


class _ColumnRows(_Rows):
    """The transaction's rows: per-sample rows as tuples, replayed scrapes' rows as array chunks."""

    def __init__(self) -> None:
        super().__init__()
        self.gauge_chunks: list[tuple[_I64, float, _F64]] = []
        self.counter_chunks: list[tuple[_I64, float, _F64, _F64]] = []
        self.bucket_chunks: list[tuple[_I64, float, _F64, _F64, _F64]] = []

    def first_ts_by_series(self) -> dict[int, float]:
        first = super().first_ts_by_series()
        for chunks in (self.gauge_chunks, self.counter_chunks, self.bucket_chunks):
            for chunk in chunks:
                sids, ts = chunk[0], chunk[1]
                for sid in sids.tolist():
                    if sid not in first or ts < first[sid]:
                        first[sid] = ts
        return first


def _ts(seconds: _F64) -> pa.Array:
    """Epoch seconds as Arrow microsecond timestamps, rounded as :class:`StoreWriter` rounds them."""
    return pa.array((seconds * 1e6).round().astype(np.int64), type=pa.timestamp("us"))


def _chunk_table(chunks: Sequence[tuple[Any, ...]], columns: tuple[str, ...]) -> pa.Table:
    """One table of array chunks ``(series ids, ts, *column arrays)``: each chunk's ts repeated per id."""
    sids = [c[0] for c in chunks]
    table = {"series_id": pa.array(np.concatenate(sids), pa.int64()),
             "ts": _ts(np.repeat(np.array([c[1] for c in chunks], dtype=np.float64), [len(x) for x in sids]))}
    for i, name in enumerate(columns, 2):
        table[name] = pa.array(np.concatenate([c[i] for c in chunks]), pa.float64())
    return pa.table(table)


class ColumnWriter(StoreWriter):
    """A :class:`StoreWriter` that keeps replaying targets' state and rows as columns."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(path, clock=clock)
        # DuckDB sizes its thread pool from the machine's CPU count, not from the CPUs this process may
        # run on; a pool larger than that only makes its threads wait on each other
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.con.execute(f"SET threads = {max(cpus, 1)}")
        self._columns: dict[str, _Columns] = {}  # committed; authoritative over ``_state`` for its target
        self._txn = _Txn()

    def _to_dicts(self, target: str) -> None:
        """Move ``target``'s array state into the per-series dictionaries the per-sample path reads."""
        txn = self._txn
        txn.per_sample.add(target)
        # the committed columns are true whether or not this write commits; this write's are newer
        for col, into in ((self._columns.pop(target, None), self._state), (txn.columns.pop(target, None), txn.state)):
            if col is not None:
                into.update(zip(col.plan.state_keys, zip(itertools.repeat(col.ts), col.values.tolist(),
                                                         strict=False), strict=True))

    def write(self, batches: Iterable[Batch]) -> WriteReport:
        """Append batches in one transaction, as :meth:`StoreWriter.write` does."""
        self._txn = _Txn()
        return super().write(batches)

    def _new_rows(self) -> _Rows:
        return _ColumnRows()

    def _new_state(self) -> _State:
        return self._txn.state  # the per-sample path's changes, read back by _previous

    def _before_insert(self, new_state: _State) -> None:
        txn = self._txn
        for target in txn.per_sample & txn.columns.keys():
            for k in txn.columns[target].plan.state_keys:  # the columns are newer: one row per key
                new_state.pop(k, None)

    def _committed(self, new_state: _State) -> None:
        super()._committed(new_state)
        for target, col in self._txn.columns.items():
            if target not in self._columns:  # its per-series entries are stale now: the columns hold its state
                for k in col.plan.state_keys:
                    self._state.pop(k, None)
        self._columns.update(self._txn.columns)

    def _deltas(self, b: Batch, known_target: bool, new_state: _State, rows: _Rows, report: WriteReport) -> int:
        """Deltas and events of one batch: column-wise for a fitting replayed batch, else per sample."""
        accepted = None
        if isinstance(b, ReplayBatch) and isinstance(rows, _ColumnRows):
            accepted = self._column_deltas(b, rows)
        if accepted is None:
            self._to_dicts(b.target)
            accepted = super()._deltas(b, known_target, new_state, rows, report)
        return accepted

    def _previous(self, b: ReplayBatch, plan: Plan) -> _F64 | None:
        """The previous values of ``b``'s counters and buckets, or None when one is missing or not older."""
        txn = self._txn
        col = txn.columns.get(b.target) or self._columns.get(b.target)
        if col is not None and col.plan is plan:
            return col.values if col.ts < b.scrape_ts else None
        self._to_dicts(b.target)
        txn.per_sample.discard(b.target)
        state, committed = txn.state, self._state
        prevs = [state.get(k) or committed.get(k) for k in plan.state_keys]
        if None in prevs:
            return None  # a series without a previous value: the per-sample path knows the rules
        prev = np.array(prevs, dtype=np.float64).reshape(len(prevs), 2)
        if bool((prev[:, 0] >= b.scrape_ts).any()):
            return None  # out of order: the per-sample path rejects and reports it
        if any(k in state for k in plan.state_keys):
            txn.per_sample.add(b.target)  # rows of this write hold some of these keys: replace them
        return np.ascontiguousarray(prev[:, 1])

    def _column_deltas(self, b: ReplayBatch, rows: _ColumnRows) -> int | None:
        """Deltas of a replayed batch, or None (nothing done) when it needs the per-sample path."""
        if not b.untouched:
            return None  # its rows were made, so may have changed: the per-sample path reads them
        plan, values, gauges = b.plan, b.state_values, b.gauge_values
        nc, nb = len(plan.counter_sids), len(plan.bucket_sids)
        if len(gauges) != len(plan.gauge_sids) or len(values) != nc + nb:
            return None
        before = self._previous(b, plan)
        if before is None:
            return None
        ts = b.scrape_ts
        rows.rejected_in_batch = 0
        rows.gauge_chunks.append((plan.gauge_sid_arr, ts, gauges))
        rows.gauges.extend(b.extra_gauges)  # the engine's synthetic samples, appended after the plan's
        counters, cprev = values[:nc], before[:nc]
        cdelta = np.where(counters < cprev, counters, counters - cprev)
        buckets, bprev = values[nc:], before[nc:]
        bdelta = buckets - bprev
        if nb:
            groups = plan.bucket_group
            went_down = np.bincount(groups, weights=buckets < bprev, minlength=int(groups[-1]) + 1) > 0
            bdelta = np.where(went_down[groups], buckets, bdelta)
        self._txn.columns[b.target] = _Columns(plan, ts, values)
        rows.counter_chunks.append((plan.counter_sid_arr, ts, counters, cdelta))
        rows.bucket_chunks.append((plan.bucket_sid_arr, ts, plan.bucket_le_arr, buckets, bdelta))
        if plan.xid_rows:
            cd = cdelta.tolist()
            for i in plan.xid_rows:
                if cd[i] > 0:
                    rows.maybe_event(b.target, self._defs[plan.counter_sids[i]], ts, cd[i])
        return len(gauges) + len(b.extra_gauges) + nc + nb

    def _insert(self, rows: _Rows, new_series: dict[int, SeriesDef], new_state: _State) -> None:
        super()._insert(rows, new_series, new_state)
        if not isinstance(rows, _ColumnRows):
            return
        con = self.con
        for table, chunks, columns in (("gauges", rows.gauge_chunks, ("value",)),
                                       ("counters", rows.counter_chunks, ("value", "delta")),
                                       ("histogram_buckets", rows.bucket_chunks, ("le", "value", "delta"))):
            if chunks:
                _append(con, table, _chunk_table(chunks, columns))
        cols = list(self._txn.columns.values())
        if cols:
            _append(con, "series_state", pa.table({
                "series_id": pa.array(np.concatenate([x.plan.state_sid_arr for x in cols]), pa.int64()),
                "le": pa.array(np.concatenate([x.plan.state_le_arr for x in cols]), pa.float64()),
                "ts": _ts(np.repeat(np.array([x.ts for x in cols], dtype=np.float64),
                                    [len(x.values) for x in cols])),
                "value": pa.array(np.concatenate([x.values for x in cols]), pa.float64())}), verb="INSERT OR REPLACE")
