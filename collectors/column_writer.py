"""The store's single writer, with counter deltas computed a whole replayed scrape at a time.

:class:`ColumnWriter` is a :class:`~gpufleet.core.store.StoreWriter` (the same connection, tables,
transaction and idempotency) that takes a faster road for a :class:`ReplayBatch` whose every
counter and bucket already has a previous value, all older than the scrape: it looks the
previous values up in one pass, computes deltas (Prometheus' reset rule; a histogram resets as a
whole when any bucket went down) and XID events with numpy, and hands the same rows to the same
insert. Any other batch (a new series, an out-of-order sample, a plain :class:`Batch`) goes
through :class:`StoreWriter`'s own per-sample path, so both roads land identical rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np

from gpufleet.collectors.repeat import ReplayBatch
from gpufleet.core.store import Batch, StoreWriter, WriteReport
from gpufleet.core.store.batch import SeriesDef
from gpufleet.core.store.writer import MAX_INTERVAL_S, _Rows

__all__ = ["ColumnWriter"]

_State = dict[tuple[int, float], tuple[float, float]]


class ColumnWriter(StoreWriter):
    """A :class:`StoreWriter` that computes replayed scrapes' deltas column-wise."""

    def write(self, batches: Iterable[Batch]) -> WriteReport:
        """Append batches in one transaction, as :meth:`StoreWriter.write` does."""
        batches = list(batches)
        if not any(isinstance(b, ReplayBatch) for b in batches):
            return super().write(batches)
        report = WriteReport()
        landed_keys = self._landed_keys(batches)
        todo: list[Batch] = []
        seen: set[tuple[str, int]] = set()
        for b in batches:
            key = (b.target, round(b.scrape_ts * 1e6))
            if key in landed_keys or key in seen:
                report.skipped += 1
                continue
            seen.add(key)
            todo.append(b)
        if not todo:
            return report
        todo.sort(key=lambda b: b.scrape_ts)
        rows = _Rows()
        new_state: _State = {}
        target_last = dict(self._target_last)
        new_series: dict[int, SeriesDef] = {}
        for b in todo:
            known_target = b.target in target_last
            if not self._defs.keys() >= b.series.keys():
                self._defs.update(b.series)
            if not self._known_series.issuperset(b.series):
                for sid, sdef in b.series.items():
                    if sid not in self._known_series and sid not in new_series:
                        new_series[sid] = sdef
            accepted = self._deltas(b, known_target, new_state, rows, report)
            prev = target_last.get(b.target)
            cap = max(MAX_INTERVAL_S, 2 * b.interval_hint_s)
            interval = min(b.scrape_ts - prev, cap) if prev is not None else b.interval_hint_s
            target_last[b.target] = max(b.scrape_ts, prev or b.scrape_ts)
            rows.add_dimensions(b, max(interval, 0.0))
            rows.batches.append((b.target, b.scrape_ts, accepted, len(b.rejected) + rows.rejected_in_batch))
            report.rejected.extend(f"{b.target}: {r}" for r in b.rejected)
            report.samples += accepted
            report.landed += 1
        try:
            self.con.begin()
            self._insert(rows, new_series, new_state)
            self.con.commit()
        except Exception:
            self.con.rollback()
            raise
        self._state.update(new_state)
        self._known_series.update(new_series)
        self._target_last = target_last
        return report

    def _deltas(self, b: Batch, known_target: bool, new_state: _State, rows: _Rows, report: WriteReport) -> int:
        """Deltas and events of one batch: column-wise for a fitting replayed batch, else per sample."""
        accepted = self._column_deltas(b, new_state, rows) if isinstance(b, ReplayBatch) else None
        if accepted is None:
            accepted = super()._deltas(b, known_target, new_state, rows, report)
        return accepted

    def _column_deltas(self, b: ReplayBatch, new_state: _State, rows: _Rows) -> int | None:
        """Deltas of a replayed batch, or None (nothing done) when it needs the per-sample path."""
        plan, values = b.plan, b.state_values
        if plan is None or values is None:
            return None
        keys = plan.state_keys
        nc, nb = len(plan.counter_sids), len(plan.bucket_sids)
        if len(b.counters) != nc or len(b.buckets) != nb or len(keys) != nc + nb:
            return None
        if new_state and not new_state.keys().isdisjoint(keys):
            return None  # a second scrape of the target in this transaction: the exact path chains them
        prevs = list(map(self._state.get, keys))
        if None in prevs:
            return None  # a series without a previous value: the per-sample path knows the rules
        ts = b.scrape_ts
        prev = np.array(prevs, dtype=np.float64).reshape(len(keys), 2)
        if bool((prev[:, 0] >= ts).any()):
            return None  # out of order: the per-sample path rejects and reports it
        before = prev[:, 1]
        rows.rejected_in_batch = 0
        rows.gauges.extend(b.gauges)
        counters, cprev = values[:nc], before[:nc]
        cdelta = np.where(counters < cprev, counters, counters - cprev)
        buckets, bprev = values[nc:], before[nc:]
        bdelta = buckets - bprev
        if nb:
            groups = plan.bucket_group
            went_down = np.bincount(groups, weights=buckets < bprev, minlength=int(groups[-1]) + 1) > 0
            bdelta = np.where(went_down[groups], buckets, bdelta)
        at = itertools.repeat(ts)
        new_state.update(zip(keys, zip(at, values.tolist(), strict=False), strict=True))
        cd = cdelta.tolist()
        rows.counters.extend(zip(plan.counter_sids, at, counters.tolist(), cd, strict=False))
        for i in plan.xid_rows:
            if cd[i] > 0:
                rows.maybe_event(b.target, self._defs[plan.counter_sids[i]], ts, cd[i])
        rows.buckets.extend(zip(plan.bucket_sids, at, plan.bucket_les, buckets.tolist(), bdelta.tolist(),
                                strict=False))
        return len(b.gauges) + nc + nb
