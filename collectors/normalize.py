"""Turn one parsed scrape into a canonical :class:`Batch`.

Prometheus' rules where they exist: a duplicate series keeps its first sample; a histogram
whose buckets are not cumulative, or that lacks ``+Inf``, is rejected whole; NaN and infinite
sample values are rejected (they would poison sums downstream). Every rejection names the
series; the rest of the scrape lands.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from gpufleet.collectors.adapters import FamilyMap, lookup
from gpufleet.collectors.adapters.engines import LABEL_SPLITS
from gpufleet.collectors.adapters.registry import split_for
from gpufleet.collectors.dimensions import derive_dimensions
from gpufleet.collectors.exposition import ParseResult
from gpufleet.collectors.target import Target
from gpufleet.core.samples import Labels, MetricFamily
from gpufleet.core.store.batch import Batch, SeriesDef, series_id_for

__all__ = ["normalize", "Limits", "Trace"]


@dataclass(frozen=True)
class Limits:
    """Per-scrape limits; a series over a label limit is rejected, the scrape goes on."""

    max_labels: int = 30
    max_label_value_length: int = 2048
    max_samples: int = 200_000


@dataclass
class Trace:
    """Where each output row came from: ``(flat sample index, scale)`` per gauge, counter and bucket row.

    The flat index counts samples family by family in ``ParseResult.families`` order; a bucket's
    scale is 1 (its bound, not its value, is scaled). The repeat-scrape path replays a trace.
    """

    gauges: list[tuple[int, float]] = field(default_factory=list)
    counters: list[tuple[int, float]] = field(default_factory=list)
    buckets: list[tuple[int, float]] = field(default_factory=list)


def normalize(result: ParseResult, target: Target, scrape_ts: float, *, interval_hint_s: float = 0.0,
              limits: Limits = Limits(), trace: Trace | None = None) -> Batch:
    """Map a parse result onto canonical series and samples for ``target`` at ``scrape_ts``.

    With ``trace``, also record the source sample of every row (see :class:`Trace`).
    """
    batch = Batch(target.name, scrape_ts, interval_hint_s)
    batch.rejected.extend(str(e) for e in result.errors)
    # When a scrape carries both dialects (our exporter renders both), the native one wins.
    present = set(result.families)
    state = _State(batch, target, limits, trace)
    for fam in result.families.values():
        fmap = lookup(fam.name)
        offset = state.offset
        state.offset += len(fam.samples)
        if fmap is not None and fmap.source == "dcgm" and fmap.canonical in present:
            continue
        if state.total >= limits.max_samples:
            batch.rejected.append(f"sample limit {limits.max_samples} reached; {fam.name} and later families dropped")
            break
        state.family(fam, fmap, offset)
    derive_dimensions(batch)
    return batch


# ((target, target labels), metric, kind, raw labels, sample name) -> series definition. Scrapes of one
# target repeat the same series, so this turns per-sample label work into one dict lookup.
_SERIES_CACHE: dict[tuple[tuple[str, Labels], str, str, Labels, str], SeriesDef] = {}
_SERIES_CACHE_MAX = 2_000_000


class _State:
    def __init__(self, batch: Batch, target: Target, limits: Limits, trace: Trace | None) -> None:
        self.batch = batch
        self.trace = trace
        self.offset = 0
        self.target = target
        self.limits = limits
        self.seen: set[tuple[str, Labels]] = set()
        self.total = 0
        self.tkey = (target.name, tuple(sorted(target.labels.items())))

    def series(self, metric: str, kind: str, raw: Labels, fmap: FamilyMap | None, source: str) -> int | None:
        key = (self.tkey, metric, kind, raw, source)
        sdef = _SERIES_CACHE.get(key)
        if sdef is None:
            lim = self.limits
            if raw and (len(raw) > lim.max_labels or max(len(v) for _, v in raw) > lim.max_label_value_length):
                why = (f"{len(raw)} labels exceed the limit of {lim.max_labels}" if len(raw) > lim.max_labels
                       else f"a label value exceeds {lim.max_label_value_length} characters")
                self.batch.rejected.append(f"{source}{_fmt(raw)}: {why}")
                return None
            labels = self.labels(raw, fmap)
            sdef = SeriesDef(series_id_for(self.target.name, metric, labels), metric, kind, self.target.name, labels,
                             source)
            if len(_SERIES_CACHE) >= _SERIES_CACHE_MAX:
                _SERIES_CACHE.clear()
            _SERIES_CACHE[key] = sdef
        self.batch.series[sdef.series_id] = sdef
        return sdef.series_id

    def labels(self, raw: Labels, fmap: FamilyMap | None) -> dict[str, str]:
        if fmap is None:
            out = dict(raw)
        else:
            out = {fmap.labels.get(k, k): v for k, v in raw}
            out.update(fmap.extra_labels)
        for k, v in self.target.labels.items():
            out.setdefault(k, v)
        return out

    def check(self, name: str, raw: Labels, value: float, kind: str) -> bool:
        why = None
        if not math.isfinite(value) and not (kind == "gauge" and math.isinf(value)):
            why = f"non-finite value {value}"
        elif (name, raw) in self.seen:
            why = "duplicate series in one scrape (first sample kept)"
        if why:
            self.batch.rejected.append(f"{name}{_fmt(raw)}: {why}")
            return False
        self.seen.add((name, raw))
        return True

    def family(self, fam: MetricFamily, fmap: FamilyMap | None, offset: int) -> None:
        base = fmap.canonical if fmap else fam.name
        scale = fmap.scale if fmap else 1.0
        if fam.type in ("histogram", "gaugehistogram"):
            self.histogram(fam, fmap, base, scale, offset)
            return
        splits = fmap is None and fam.name in LABEL_SPLITS
        trace = self.trace
        for i, s in enumerate(fam.samples, offset):
            if s.name.endswith("_created"):
                continue
            if splits:
                found = split_for(fam.name, s.labels)
                if found is not None:
                    if self.split_sample(s.name, found[0], found[1], s.labels, s.value, s.timestamp) \
                            and trace is not None:
                        trace.gauges.append((i, 1.0))
                    continue
            if fam.type == "counter" or (fam.type == "summary" and s.name != fam.name):
                kind = "counter"
                metric = _counter_name(s.name, fam.name, base)
            else:
                kind = "gauge"
                metric = base if s.name == fam.name else s.name
            if not self.check(s.name, s.labels, s.value, kind):
                continue
            value = s.value * scale
            ts = s.timestamp if s.timestamp is not None else self.batch.scrape_ts
            sid = self.series(metric, kind, s.labels, fmap, s.name)
            if sid is None:
                continue
            (self.batch.counters if kind == "counter" else self.batch.gauges).append((sid, ts, value))
            if trace is not None:
                (trace.counters if kind == "counter" else trace.gauges).append((i, scale))
            self.total += 1

    def split_sample(self, name: str, fmap: FamilyMap, rest: Labels, raw: Labels, value: float,
                     at: float | None) -> bool:
        """One gauge of a label-keyed family (TensorRT-LLM's backend) under its canonical name."""
        if not self.check(name, raw, value, "gauge"):
            return False
        sid = self.series(fmap.canonical, "gauge", rest, fmap, name)
        if sid is None:
            return False
        self.batch.gauges.append((sid, at if at is not None else self.batch.scrape_ts, value))
        self.total += 1
        return True

    def histogram(self, fam: MetricFamily, fmap: FamilyMap | None, base: str, scale: float, offset: int) -> None:
        groups: dict[Labels, list[tuple[float, float, float | None, int]]] = {}
        bucket_name = fam.name + "_bucket"
        trace = self.trace
        for i, s in enumerate(fam.samples, offset):
            if s.name.endswith("_created"):
                continue
            if not self.check(s.name, s.labels, s.value, "counter"):
                continue
            if s.name == bucket_name:
                split = _LE_SPLIT.get(s.labels)
                if split is None:
                    split = _split_le(s.labels)
                le, rest = split
                if le != le:
                    self.batch.rejected.append(f"{s.name}{_fmt(s.labels)}: missing or invalid 'le' label")
                    continue
                groups.setdefault(rest, []).append((le * scale if le != math.inf else le, s.value, s.timestamp, i))
            else:
                suffix = s.name[len(fam.name):]
                value = s.value * scale if suffix in ("_sum", "_gsum") else s.value
                ts = s.timestamp if s.timestamp is not None else self.batch.scrape_ts
                sid = self.series(base + suffix, "counter", s.labels, fmap, s.name)
                if sid is None:
                    continue
                self.batch.counters.append((sid, ts, value))
                if trace is not None:
                    trace.counters.append((i, scale if suffix in ("_sum", "_gsum") else 1.0))
                self.total += 1
        for rest, buckets in groups.items():
            buckets.sort()
            problem = None
            if buckets[-1][0] != math.inf:
                problem = "histogram has no le=\"+Inf\" bucket"
            elif any(b[1] < a[1] for a, b in zip(buckets, buckets[1:], strict=False)):
                problem = "histogram buckets are not cumulative"
            if problem:
                self.batch.rejected.append(f"{fam.name}_bucket{_fmt(rest)}: {problem}; the histogram was dropped")
                continue
            sid = self.series(base, "histogram", rest, fmap, fam.name)
            if sid is None:
                continue
            for le, value, at, i in buckets:
                self.batch.buckets.append((sid, at if at is not None else self.batch.scrape_ts, le, value))
                if trace is not None:
                    trace.buckets.append((i, 1.0))
            self.total += len(buckets)


_LE_SPLIT: dict[Labels, tuple[float, Labels]] = {}


def _split_le(labels: Labels) -> tuple[float, Labels]:
    """A bucket's bound and its other labels (NaN for a missing or invalid ``le``), remembered."""
    le_text = dict(labels).get("le")
    try:
        le = float(le_text) if le_text is not None else math.nan
    except ValueError:
        le = math.nan
    if len(_LE_SPLIT) > 1_000_000:
        _LE_SPLIT.clear()
    found = _LE_SPLIT[labels] = (le, tuple((k, v) for k, v in labels if k != "le"))
    return found


def _counter_name(sample: str, family: str, base: str) -> str:
    """Canonical counter names end in ``_total``; summary ``_sum``/``_count`` keep their suffix."""
    if sample != family and not sample.endswith("_total") and sample.startswith(family):
        return base + sample[len(family):]
    return base if base.endswith(("_total", "_sum", "_count")) else base + "_total"


def _fmt(labels: Iterable[tuple[str, str]]) -> str:
    pairs = list(labels)
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}" if pairs else ""
