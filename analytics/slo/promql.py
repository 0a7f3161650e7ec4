"""PromQL for an SLO's SLI (canonical or engine names) and recognition of serving SLIs in foreign PromQL.

A latency threshold that falls between two bucket bounds is expressed the way gpufleet computes it
from the store: the good rate is linearly interpolated between the two neighbouring ``le`` buckets.
``le`` values are matched both as ``1`` and ``1.0`` (Prometheus 3 writes the latter).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from gpufleet.analytics.slo.catalog import (
    ENGINE_LABELS,
    LATENCY,
    OUTCOMES,
    REQUESTS_TOTAL,
    SGLANG_ABORTED,
    SGLANG_REQUESTS,
    VLLM_REQUESTS,
    metric_for_name,
)


class RawSli(Protocol):
    """The PromQL an SLO file gave (``spec.RawSli``)."""

    @property
    def error_query(self) -> str | None: ...
    @property
    def total_query(self) -> str | None: ...
    @property
    def good_query(self) -> str | None: ...
    @property
    def error_ratio_query(self) -> str | None: ...


class _Latency(Protocol):
    @property
    def metric(self) -> str: ...
    @property
    def threshold_s(self) -> float: ...
    @property
    def buckets(self) -> tuple[float, ...]: ...


class _Availability(Protocol):
    @property
    def bad_outcomes(self) -> tuple[str, ...]: ...


class SloSpec(Protocol):
    """What PromQL rendering needs of ``spec.SloSpec``."""

    @property
    def id(self) -> str: ...
    @property
    def sli(self) -> str: ...
    @property
    def selector(self) -> dict[str, str]: ...
    @property
    def latency(self) -> _Latency | None: ...
    @property
    def availability(self) -> _Availability | None: ...
    @property
    def raw(self) -> RawSli | None: ...

__all__ = ["duration", "selector_of", "recognise", "error_query", "total_query", "error_ratio_query",
           "le_matcher", "bucket_edges", "NAMINGS"]

NAMINGS = ("auto", "canonical", "vllm", "sglang")
WINDOW_PLACEHOLDER = "{{.window}}"


def duration(seconds: float) -> str:
    """A Prometheus duration for ``seconds`` in the largest whole unit (``28d``, ``6h``, ``5m``, ``30s``)."""
    s = int(round(seconds))
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0 and unit != "w":
            return f"{s // size}{unit}"
    return f"{s}s"


def _num(v: float) -> str:
    return f"{v:g}" if v != int(v) else str(int(v))


def le_matcher(threshold: float) -> str:
    """``le`` matcher for a bound, matching both ``1`` and ``1.0`` spellings of whole numbers."""
    if threshold == int(threshold):
        return f'le=~"{int(threshold)}(\\\\.0)?"'
    return f'le="{_num(threshold)}"'


def bucket_edges(buckets: tuple[float, ...], threshold: float) -> tuple[float, float]:
    """The bounds ``(lo, hi)`` with ``lo <= threshold <= hi``; ``lo`` is 0 below the first bucket.

    Raises ValueError past the highest finite bound (the +Inf bucket says nothing about where inside it).
    """
    if not buckets or threshold > buckets[-1]:
        raise ValueError(f"threshold {threshold:g}s is beyond the highest finite bucket "
                         f"({buckets[-1] if buckets else 'none'}s); pick a threshold at or below it")
    lo = 0.0
    for b in buckets:
        if threshold <= b:
            return (threshold, threshold) if threshold == b else (lo, b)
        lo = b
    raise AssertionError("unreachable")


def _labels(spec: SloSpec, naming: str, extra: list[str] | None = None) -> str:
    rename = ENGINE_LABELS[naming]
    parts = [f'{rename.get(k, k)}="{v}"' for k, v in sorted(spec.selector.items())
             if not (naming != "canonical" and k == "engine")]
    return "{" + ",".join([*parts, *(extra or [])]) + "}"


def _latency_name(spec: SloSpec, naming: str) -> str:
    assert spec.latency is not None
    m = LATENCY[spec.latency.metric]
    if naming == "canonical":
        return m.canonical
    if naming not in m.engines:
        raise ValueError(f"{spec.id}: {naming} exposes no {m.description} histogram; use canonical names")
    return m.engines[naming]


def _good_latency(spec: SloSpec, window: str, naming: str) -> str:
    assert spec.latency is not None
    name = _latency_name(spec, naming) + "_bucket"
    t = spec.latency.threshold_s
    lo, hi = bucket_edges(spec.latency.buckets, t)

    def rate(bound: float) -> str:
        return f"sum(rate({name}{_labels(spec, naming, [le_matcher(bound)])}[{window}]))"

    if lo == hi:
        return rate(t)
    frac = (t - lo) / (hi - lo)
    if lo == 0:
        return f"({rate(hi)} * {frac:.6g})"
    return f"({rate(lo)} + ({rate(hi)} - {rate(lo)}) * {frac:.6g})"


def _raw(query: str | None, window: str) -> str:
    assert query is not None
    return query.replace(WINDOW_PLACEHOLDER, window)


def _naming(spec: SloSpec, naming: str) -> str:
    """``auto``: the PromQL a spec file gave (``raw``) when there is some, else canonical names."""
    if naming not in NAMINGS:
        raise ValueError(f"naming {naming!r} is not one of {list(NAMINGS)}")
    if naming == "auto":
        return "raw" if spec.raw is not None else "canonical"
    return naming


def total_query(spec: SloSpec, window: str, naming: str = "auto") -> str:
    """PromQL for the rate of events (requests, or token gaps for ITL) over ``window``.

    ``naming``: ``auto`` (the spec's own PromQL if it came with some, else canonical), ``canonical``
    (``gpufleet_serving_*``), ``vllm`` or ``sglang`` (the engine's exposed names and labels).
    """
    naming = _naming(spec, naming)
    if naming != "raw" and spec.sli == "latency":
        return f"sum(rate({_latency_name(spec, naming)}_count{_labels(spec, naming)}[{window}]))"
    if naming != "raw" and spec.sli == "availability":
        if naming == "sglang":
            return f"sum(rate({SGLANG_REQUESTS}{_labels(spec, naming)}[{window}]))"
        name = VLLM_REQUESTS if naming == "vllm" else REQUESTS_TOTAL
        return f"sum(rate({name}{_labels(spec, naming)}[{window}]))"
    assert spec.raw is not None
    if spec.raw.total_query is None:
        raise ValueError(f"{spec.id}: the SLI is a bare error ratio; it has no total query")
    return _raw(spec.raw.total_query, window)


def error_query(spec: SloSpec, window: str, naming: str = "auto") -> str:
    """PromQL for the rate of bad events over ``window`` (``naming`` as for ``total_query``)."""
    naming = _naming(spec, naming)
    if naming != "raw" and spec.sli == "latency":
        return f"({total_query(spec, window, naming)} - {_good_latency(spec, window, naming)})"
    if naming != "raw" and spec.sli == "availability":
        assert spec.availability is not None
        if naming == "sglang":  # no outcome split: every aborted request counts as bad
            return f"sum(rate({SGLANG_ABORTED}{_labels(spec, naming)}[{window}]))"
        name = VLLM_REQUESTS if naming == "vllm" else REQUESTS_TOTAL
        label = ENGINE_LABELS[naming].get("outcome", "outcome")
        bad = label + '=~"' + "|".join(spec.availability.bad_outcomes) + '"'
        return f"sum(rate({name}{_labels(spec, naming, [bad])}[{window}]))"
    assert spec.raw is not None
    if spec.raw.error_query:
        return _raw(spec.raw.error_query, window)
    if spec.raw.good_query and spec.raw.total_query:
        return f"(({_raw(spec.raw.total_query, window)}) - ({_raw(spec.raw.good_query, window)}))"
    raise ValueError(f"{spec.id}: the SLI is a bare error ratio; it has no error query")


def error_ratio_query(spec: SloSpec, window: str, naming: str = "auto") -> str:
    """PromQL for the bad-event ratio over ``window`` (``naming`` as for ``total_query``)."""
    if _naming(spec, naming) == "raw" and spec.raw is not None and spec.raw.error_ratio_query:
        return _raw(spec.raw.error_ratio_query, window)
    return f"({error_query(spec, window, naming)})\n/\n({total_query(spec, window, naming)})"


# --------------------------------------------------------------------------- recognition

_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"')
_BACK = {"model_name": "model", "finished_reason": "outcome"}
_KEEP = ("service", "model", "engine", "namespace", "cluster", "pod")


def _matchers(body: str) -> list[tuple[str, str, str]]:
    return [(k, op, v) for k, op, v in _MATCHER.findall(body)]


def selector_of(query: str) -> dict[str, str]:
    """Equality matchers on serving labels in a query (engine label names mapped to canonical ones)."""
    out: dict[str, str] = {}
    for _, body in _SELECTOR.findall(query):
        for k, op, v in _matchers(body):
            k = _BACK.get(k, k)
            if op == "=" and k in _KEEP:
                out[k] = v
    return out


def recognise(raw: RawSli) -> tuple[Any, dict[str, str], dict[str, Any]] | None:
    """``(kind, selector, detail)`` when PromQL is a serving availability or latency SLI, else None.

    Latency: a ``*_bucket`` of a known histogram with an ``le`` matcher (``detail``: metric,
    threshold_s). Availability: the finished-request counter selected by outcome (``detail``:
    bad_outcomes), or SGLang's aborted/total counters.
    """
    text = " ".join(q for q in (raw.error_query, raw.good_query, raw.total_query, raw.error_ratio_query) if q)
    selector = selector_of(raw.total_query or raw.error_ratio_query or text)
    for name, body in _SELECTOR.findall(text):
        if not name.endswith("_bucket"):
            continue
        m = metric_for_name(name)
        if m is None:
            continue
        for k, _op, v in _matchers(body):
            if k == "le":
                try:
                    t = float(v.replace("\\\\", "\\").replace("(\\.0)?", "").split("|")[0])
                except ValueError:
                    return None
                return "latency", selector, {"metric": m.key, "threshold_s": t}
    bad_text = raw.error_query or raw.error_ratio_query or ""
    if SGLANG_ABORTED in bad_text:
        return "availability", selector, {"bad_outcomes": ("abort", "error")}
    for name, body in _SELECTOR.findall(bad_text):
        if name not in (REQUESTS_TOTAL, VLLM_REQUESTS):
            continue
        for k, op, v in _matchers(body):
            if _BACK.get(k, k) != "outcome":
                continue
            values = tuple(x for x in v.split("|") if x)
            if op in ("!=", "!~"):
                values = tuple(o for o in OUTCOMES if o not in values)
            if values and set(values) <= set(OUTCOMES):
                return "availability", selector, {"bad_outcomes": values}
    return None
