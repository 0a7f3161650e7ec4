"""Repeat scrapes: replay the last full parse when only the values of a body changed.

A target serves the same series in the same order scrape after scrape; only the numbers move.
After a full parse and normalisation, :func:`build_plan` records a :class:`Plan`: the body's
comment lines, the ``name{labels}`` part of every sample line, and which batch row each line's
value feeds (with its unit scale). :func:`replay` takes the next body of the same target and,
when its comment lines and sample keys are the very same strings, converts only the values and
fills the rows the plan names, vectorised. It gives up (returns ``None``, and the caller does
the full parse) whenever anything could make the full path answer differently: a different
line count, comment line or key, a value that is not a plain finite number, a histogram whose
buckets stopped being cumulative, a carriage return. A plan is only built from a scrape that
the full path took whole: no parse error, no rejected series, no timestamps or exemplars, every
key of the form the parser's bulk reader resolves, every key once.
"""

from __future__ import annotations

import itertools
import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gpufleet.collectors.dimensions import probe_rows
from gpufleet.collectors.exposition import ParseResult, resolve_key
from gpufleet.collectors.normalize import Trace
from gpufleet.core.store.batch import AllocationRow, Batch, GpuRow, NodeRow, SeriesDef
from gpufleet.core.store.writer import SCALAR  # the ``le`` of a plain counter in the writer's state

__all__ = ["Plan", "ReplayBatch", "build_plan", "replay"]

@dataclass(frozen=True, eq=False)
class Plan:
    """How one body's lines become one target's batch rows; see the module docstring."""

    nlines: int
    comment_idx: tuple[int, ...]
    comments: tuple[str, ...]
    sample_idx: tuple[int, ...]
    keys: str  # the sample lines' keys joined by newlines: compared whole, one memcmp
    samples: int
    gauge_line: npt.NDArray[np.intp]
    gauge_scale: npt.NDArray[np.float64] | None  # None when every scale is 1
    gauge_sids: tuple[int, ...]
    counter_line: npt.NDArray[np.intp]
    counter_scale: npt.NDArray[np.float64] | None
    counter_sids: tuple[int, ...]
    bucket_line: npt.NDArray[np.intp]
    bucket_sids: tuple[int, ...]
    bucket_les: tuple[float, ...]
    bucket_same: npt.NDArray[np.bool_]  # row i+1 belongs to the same histogram as row i
    series: dict[int, SeriesDef]
    series_set: frozenset[int]
    gpus: tuple[GpuRow, ...]
    allocations: tuple[AllocationRow, ...]
    nodes: tuple[NodeRow, ...]
    namespaces: dict[str, str | None]
    probes: bool
    # for the column writer: the writer-state keys of the counter rows then the bucket rows,
    # each bucket row's histogram (0, 1, ...), and which counter rows are XID counters
    state_keys: tuple[tuple[int, float], ...]
    bucket_group: npt.NDArray[np.intp]
    xid_rows: tuple[int, ...]
    # the same ids and bounds as arrays, for the column writer's Arrow tables
    gauge_sid_arr: npt.NDArray[np.int64]
    counter_sid_arr: npt.NDArray[np.int64]
    bucket_sid_arr: npt.NDArray[np.int64]
    bucket_le_arr: npt.NDArray[np.float64]
    state_sid_arr: npt.NDArray[np.int64]
    state_le_arr: npt.NDArray[np.float64]


class ReplayBatch(Batch):
    """A replayed batch: its plan and values as arrays, its rows made as any :class:`Batch` has them on demand.

    ``gauges``, ``counters`` and ``buckets`` are built from the arrays the first time they are read
    (the column writer never reads them, so a replayed scrape allocates no row tuples);
    :attr:`untouched` says whether the arrays are still the whole truth. Rows appended after the
    plan's (the engine's own samples) go through :meth:`add_gauges`.
    """

    def __init__(self, target: str, scrape_ts: float, interval_hint_s: float, *, plan: Plan,
                 series: dict[int, SeriesDef], gauge_values: npt.NDArray[np.float64],
                 counter_values: npt.NDArray[np.float64], bucket_values: npt.NDArray[np.float64],
                 gpus: list[GpuRow], nodes: list[NodeRow], namespaces: dict[str, str | None],
                 allocations: list[AllocationRow]) -> None:
        self.plan = plan
        self.gauge_values = gauge_values  # the plan's gauges, in plan.gauge_sids order
        self.state_values = np.concatenate((counter_values, bucket_values))  # the counter rows', then the buckets'
        self.extra_gauges: list[tuple[int, float, float]] = []
        self._rows: dict[str, list[Any]] = {}
        super().__init__(target, scrape_ts, interval_hint_s, series=series, gpus=gpus, nodes=nodes,
                         namespaces=namespaces, allocations=allocations)

    @property
    def untouched(self) -> bool:
        """No row list was made (so none was changed): the arrays hold every sample of the plan."""
        return not self._rows

    def add_gauges(self, rows: list[tuple[int, float, float]]) -> None:
        """Append gauge rows after the plan's."""
        if "gauges" in self._rows:
            self._rows["gauges"].extend(rows)
        else:
            self.extra_gauges.extend(rows)

    @property
    def sample_count(self) -> int:
        """Samples in the batch, counted without making its rows."""
        if not self._rows:
            return len(self.gauge_values) + len(self.state_values) + len(self.extra_gauges)
        return len(self.gauges) + len(self.counters) + len(self.buckets)

    def _made(self, name: str) -> list[Any]:
        rows = self._rows.get(name)
        if rows is None:
            plan, at = self.plan, itertools.repeat(self.scrape_ts)
            nc = len(plan.counter_sids)
            if name == "gauges":
                rows = list(zip(plan.gauge_sids, at, self.gauge_values.tolist(), strict=False)) + self.extra_gauges
            elif name == "counters":
                rows = list(zip(plan.counter_sids, at, self.state_values[:nc].tolist(), strict=False))
            else:
                rows = list(zip(plan.bucket_sids, at, plan.bucket_les, self.state_values[nc:].tolist(),
                                strict=False))
            self._rows[name] = rows
        return rows

    def _set(self, name: str, rows: list[Any]) -> None:
        if rows:  # Batch.__init__ sets empty lists: nothing to keep then
            self._rows[name] = rows

    gauges = property(lambda self: self._made("gauges"), lambda self, rows: self._set("gauges", rows))
    counters = property(lambda self: self._made("counters"), lambda self, rows: self._set("counters", rows))
    buckets = property(lambda self: self._made("buckets"), lambda self, rows: self._set("buckets", rows))


def _split(text: str) -> tuple[list[str], list[int], list[int]] | None:
    """Lines, comment line indices and sample line indices; None for a shape plans do not take."""
    if "\r" in text:
        return None
    lines = text.split("\n")
    comment_idx: list[int] = []
    sample_idx: list[int] = []
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if line.startswith("#") or (i == last and not line):
            comment_idx.append(i)
        elif not line:
            return None
        else:
            sample_idx.append(i)
    return lines, comment_idx, sample_idx


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def build_plan(text: str, result: ParseResult, batch: Batch, trace: Trace) -> Plan | None:
    """The plan of a body that the full path parsed into ``result`` and normalised into ``batch``."""
    if result.errors or batch.rejected:
        return None
    split = _split(text)
    if split is None:
        return None
    lines, comment_idx, sample_idx = split
    flat = [s for fam in result.families.values() for s in fam.samples]
    if len(flat) != len(sample_idx) or len(sample_idx) < 2 or len(comment_idx) < 2:
        return None
    keys: list[str] = []
    line_of: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for k, i in enumerate(sample_idx):
        key, _, value_text = lines[i].rpartition(" ")
        found = resolve_key(key)
        if found is None or "_" in value_text:
            return None
        line_of[found] = k
        keys.append(key)
    if len(line_of) != len(flat):
        return None  # a key twice
    flat_to_line = []
    for s in flat:
        k = line_of.get((s.name, s.labels), -1)
        if k < 0 or s.timestamp is not None or s.exemplar is not None:
            return None
        try:
            value = float(lines[sample_idx[k]].rpartition(" ")[2])
        except ValueError:
            return None
        if not _same(value, s.value):
            return None
        flat_to_line.append(k)
    ts = batch.scrape_ts
    if any(r[1] != ts for r in itertools.chain(batch.gauges, batch.counters, batch.buckets)):
        return None

    def lines_of(rows: list[tuple[int, float]]) -> npt.NDArray[np.intp]:
        return np.array([flat_to_line[j] for j, _ in rows], dtype=np.intp)

    def scales_of(rows: list[tuple[int, float]]) -> npt.NDArray[np.float64] | None:
        scales = np.array([sc for _, sc in rows], dtype=np.float64)
        return None if bool(np.all(scales == 1.0)) else scales

    bucket_sids = tuple(r[0] for r in batch.buckets)
    counter_sids = tuple(r[0] for r in batch.counters)
    gauge_sids = tuple(r[0] for r in batch.gauges)
    bucket_les = tuple(r[2] for r in batch.buckets)
    same = [a == b for a, b in itertools.pairwise(bucket_sids)]
    return Plan(
        nlines=len(lines), comment_idx=tuple(comment_idx), comments=tuple(lines[i] for i in comment_idx),
        sample_idx=tuple(sample_idx), keys="\n".join(keys), samples=len(flat),
        gauge_line=lines_of(trace.gauges), gauge_scale=scales_of(trace.gauges),
        gauge_sids=gauge_sids,
        counter_line=lines_of(trace.counters), counter_scale=scales_of(trace.counters),
        counter_sids=counter_sids,
        bucket_line=lines_of(trace.buckets), bucket_sids=bucket_sids, bucket_les=bucket_les,
        bucket_same=np.array(same, dtype=np.bool_),
        series=dict(batch.series), series_set=frozenset(batch.series),
        gpus=tuple(batch.gpus), allocations=tuple(batch.allocations), nodes=tuple(batch.nodes),
        namespaces=dict(batch.namespaces), probes=bool(batch.probes) or any(
            s.metric.startswith("gpufleet_probe_") for s in batch.series.values()),
        state_keys=tuple((sid, SCALAR) for sid in counter_sids) + tuple((r[0], r[2]) for r in batch.buckets),
        bucket_group=np.cumsum([0, *(not x for x in same)], dtype=np.intp)[:len(bucket_sids)],
        xid_rows=tuple(i for i, sid in enumerate(counter_sids)
                       if batch.series[sid].metric == "gpufleet_gpu_xid_errors_total"),
        gauge_sid_arr=np.array(gauge_sids, dtype=np.int64), counter_sid_arr=np.array(counter_sids, dtype=np.int64),
        bucket_sid_arr=np.array(bucket_sids, dtype=np.int64), bucket_le_arr=np.array(bucket_les, dtype=np.float64),
        state_sid_arr=np.array(counter_sids + bucket_sids, dtype=np.int64),
        state_le_arr=np.array((SCALAR,) * len(counter_sids) + bucket_les, dtype=np.float64),
    )


def replay(plan: Plan, text: str, target: str, scrape_ts: float,
           interval_hint_s: float = 0.0) -> ReplayBatch | None:
    """The batch the full path would make of ``text``, or None when the plan does not fit it."""
    if "\r" in text:
        return None
    lines = text.split("\n")
    if len(lines) != plan.nlines:
        return None
    if operator.itemgetter(*plan.comment_idx)(lines) != plan.comments:
        return None
    keys, _, value_texts = zip(*map(str.rpartition, operator.itemgetter(*plan.sample_idx)(lines),
                                    itertools.repeat(" ")), strict=True)
    if "\n".join(keys) != plan.keys:
        return None
    if "_" in "".join(value_texts):  # Python's float() accepts 1_000; the formats do not
        return None
    try:
        values = np.fromiter(map(float, value_texts), dtype=np.float64, count=len(value_texts))
    except ValueError:
        return None
    if not np.isfinite(values).all():
        return None  # non-finite values have rules of their own: the full path applies them
    buckets = values[plan.bucket_line]
    if buckets.size > 1 and bool(np.any((buckets[1:] < buckets[:-1]) & plan.bucket_same)):
        return None  # a histogram that is not cumulative is rejected whole by the full path
    gauges = values[plan.gauge_line]
    if plan.gauge_scale is not None:
        gauges *= plan.gauge_scale
    counters = values[plan.counter_line]
    if plan.counter_scale is not None:
        counters *= plan.counter_scale
    batch = ReplayBatch(target, scrape_ts, interval_hint_s, plan=plan, series=dict(plan.series),
                        gauge_values=gauges, counter_values=counters, bucket_values=buckets,
                        gpus=list(plan.gpus), nodes=list(plan.nodes), namespaces=dict(plan.namespaces),
                        allocations=list(plan.allocations))
    if plan.probes:
        probe_rows(batch)
    return batch
