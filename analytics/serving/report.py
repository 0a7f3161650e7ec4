"""The serving report: efficiency and goodput per model and engine over a window of the store.

Thin glue: reads frames through :class:`ServingSource`, prices GPU time with the cost part's catalog
(stored prices override it), and hands everything to the pure functions of this package.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from gpufleet.analytics.cost.allocation import price_allocations
from gpufleet.analytics.cost.pricing import Catalog
from gpufleet.analytics.cost.report import price_map
from gpufleet.analytics.serving.coverage import coverage_problem, e2e_counts_all
from gpufleet.analytics.serving.efficiency import efficiency
from gpufleet.analytics.serving.goodput import Estimate, Goodput, GoodputError, check_slos, goodput
from gpufleet.analytics.serving.histograms import bucket_totals
from gpufleet.analytics.serving.query import LABELS, ServingSource, Window
from gpufleet.analytics.serving.series import goodput_series
from gpufleet.analytics.slo.catalog import LATENCY

__all__ = ["GroupGoodput", "ServingReport", "serving_report", "gpu_cost", "goodput_over_time"]

GROUP = ["model", "engine"]
E2E = LATENCY["e2e"].canonical
QUEUE = LATENCY["queue"].canonical


@dataclass(frozen=True)
class GroupGoodput:
    """Goodput of one group (by default a model on an engine), or why it could not be computed."""

    group: dict[str, str | None]
    result: Goodput | None
    error: str | None = None

    @property
    def model(self) -> str | None:
        """The group's model label, when grouped by model."""
        return self.group.get("model")

    @property
    def engine(self) -> str | None:
        """The group's engine label, when grouped by engine."""
        return self.group.get("engine")

    def row(self) -> dict[str, Any]:
        """A flat dict for tables and JSON."""
        g = self.result
        out: dict[str, Any] = dict(self.group)
        if g is None:
            return {**out, "goodput_rps": None, "error": self.error}
        f, o = g.fraction, g.outer
        out.update({
            "requests": g.requests, "requests_per_s": g.request_rps,
            "slo_fractions": {m.key: m.sli.good for m in g.marginals},
            "slo_thresholds_s": {m.key: m.threshold_s for m in g.marginals},
            "interpolation_error": {m.key: m.sli.error_bound for m in g.marginals},
            "joint_fraction_lower": f.lower if f else None,
            "joint_fraction_independent": f.independent if f else None,
            "joint_fraction_upper": f.upper if f else None,
            "joint_fraction_outer_lower": o.lower if o else None,
            "joint_fraction_outer_upper": o.upper if o else None,
            "exact": g.exact, "reported": "exact" if g.exact else g.reported,
            "goodput_rps": g.goodput_rps, "goodput_rps_lower": g.rps("lower"),
            "goodput_rps_independent": g.rps("independent"), "goodput_rps_upper": g.rps("upper"),
            "gpus": g.gpus, "cost_usd": g.cost_usd, "goodput_rps_per_gpu": g.goodput_rps_per_gpu,
            "good_requests_per_usd": g.good_requests_per_usd,
            "error": None if f is not None else ("no completed requests in the window" if g.requests == 0 else
                                                 "an SLO histogram observed none of the requests"),
        })
        return out


@dataclass
class ServingReport:
    """Efficiency rows and goodput per group, with the window, the grouping and any notes."""

    window: Window
    efficiency: pl.DataFrame
    goodput: list[GroupGoodput]
    slos: dict[str, float]
    estimate: Estimate = "lower"
    by: tuple[str, ...] = ("model", "engine")
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"window": {"start": self.window.start.isoformat(), "end": self.window.end.isoformat(),
                           "seconds": self.window.seconds},
                "by": list(self.by), "slos": self.slos, "estimate": self.estimate,
                "efficiency": self.efficiency.to_dicts(), "goodput": [g.row() for g in self.goodput],
                "notes": self.notes}


def gpu_cost(gpu_time: pl.DataFrame, catalog: Catalog, stored_prices: pl.DataFrame | None,
             by: Sequence[str] = GROUP) -> tuple[pl.DataFrame, list[str]]:
    """GPU-seconds and dollars per ``by`` group; a GPU with no price leaves its group's cost empty."""
    keys = list(by)
    schema = {**dict.fromkeys(keys, pl.String), "gpu_seconds": pl.Float64, "cost_usd": pl.Float64}
    notes: list[str] = []
    if gpu_time.height == 0:
        return pl.DataFrame(schema=schema), notes
    prices = price_map(catalog, stored_prices)
    parts = []
    for key, df in gpu_time.group_by(keys, maintain_order=True):
        try:
            cost: float | None = float(price_allocations(df, prices)["cost_usd"].sum())
        except ValueError as exc:
            notes.append(f"{_name(dict(zip(keys, key, strict=True)))}: {exc}")
            cost = None
        parts.append({**dict(zip(keys, key, strict=True)), "gpu_seconds": float(df["gpu_seconds"].sum()),
                      "cost_usd": cost})
    return pl.DataFrame(parts, schema=schema), notes


def _name(group: Mapping[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in group.items())


def _engines(frame: pl.DataFrame, keys: list[str]) -> dict[tuple[object, ...], set[str]]:
    """Engines seen per group in ``frame`` (rows with no engine label are left out)."""
    if frame.height == 0:
        return {}
    agg = frame.group_by(keys).agg(_e=pl.col("engine").drop_nulls().unique())
    return {tuple(r[:-1]): set(r[-1]) for r in agg.iter_rows()}


def _select(df: pl.DataFrame, selector: Mapping[str, str]) -> pl.DataFrame:
    for k, v in selector.items():
        df = df.filter(pl.col(k) == v)
    return df


def serving_report(src: ServingSource, length: dt.timedelta, slos: Mapping[str, float], catalog: Catalog, *,
                   estimate: Estimate = "lower", kv_threshold: float = 0.9, by: Sequence[str] = GROUP,
                   selector: Mapping[str, str] | None = None) -> ServingReport:
    """Efficiency and goodput per ``by`` group over the last ``length`` of serving data.

    ``by`` lists labels of :data:`LABELS` (default model and engine); ``selector`` keeps only series whose
    labels equal the given values (an SLO's selector). The completed-request count behind goodput is the
    e2e histogram's count when every engine of the group observes it, else the largest count among the SLO
    histograms; a group whose engines do not all observe every SLO gets no goodput (see :mod:`.coverage`).
    Errors (a bad SLO for a group's buckets, no histogram, no price) are kept per group; they never stop
    the others.
    """
    check_slos(slos)
    keys = list(by)
    sel = dict(selector or {})
    for k in (*keys, *sel):
        if k not in LABELS:
            raise ValueError(f"label {k!r}: group or select by one of {', '.join(LABELS)}")
    w = src.window(length)
    if w.seconds <= 0:
        raise ValueError(f"window {length} holds a single scrape of serving data; nothing to rate over")
    counters = _select(src.counters(w), sel)
    gauges = _select(src.gauges(w), sel)
    metrics = {key: LATENCY[key].canonical for key in {*slos, "e2e"}}
    buckets = _select(src.buckets(w, [*metrics.values(), QUEUE]), sel)
    by_metric = {m: bucket_totals(buckets.filter(pl.col("metric") == m), keys) for m in {*metrics.values(), QUEUE}}
    engines = _engines(counters, keys)
    observed = {m: _engines(buckets.filter(pl.col("metric") == m), keys) for m in set(metrics.values())}
    opened = w.raw_from if w.rollup_until is not None else w.covered_from
    eff = efficiency(counters, gauges, by_metric[QUEUE], w.seconds, kv_threshold=kv_threshold, by=keys,
                     opened_at=opened)
    cost, notes = gpu_cost(_select(src.gpu_time(w), sel), catalog, src.prices(), keys)
    if w.rollup_until is not None:
        notes.insert(0, f"raw samples start at {w.raw_from:%Y-%m-%d %H:%M}: rates and goodput before that come from "
                        "hourly rollups; KV-cache, running and waiting figures cover the raw "
                        f"{w.raw_seconds / 3600:,.1f} h only")
    groups = sorted({k for m in metrics.values() for k in by_metric[m]} |
                    {tuple(r) for r in eff.select(keys).iter_rows()}, key=lambda k: tuple(str(x) for x in k))
    costs = {tuple(r[k] for k in keys): r for r in cost.iter_rows(named=True)}
    results = []
    for key in groups:
        group = {k: None if v is None else str(v) for k, v in zip(keys, key, strict=True)}
        hists = {k: by_metric[metrics[k]][key] for k in metrics if key in by_metric[metrics[k]]}
        c = costs.get(tuple(group.values()))
        present = engines.get(key, set()) | {e for m in metrics.values() for e in observed[m].get(key, ())}
        seen = {k: observed[metrics[k]].get(key, set()) for k in metrics}
        problem = coverage_problem(slos, seen, present)
        if problem:
            results.append(GroupGoodput(group, None, problem))
            continue
        e2e = hists.get("e2e") if e2e_counts_all(seen, present) else None
        try:
            g = goodput(hists, slos, window_s=w.seconds, requests=e2e[1][-1] if e2e else None,
                        gpus=c["gpu_seconds"] / w.seconds if c else None, cost_usd=c["cost_usd"] if c else None,
                        estimate=estimate)
            results.append(GroupGoodput(group, g))
        except GoodputError as exc:
            results.append(GroupGoodput(group, None, str(exc)))
    return ServingReport(w, eff, results, dict(slos), estimate, tuple(keys), notes)


def goodput_over_time(src: ServingSource, length: dt.timedelta, slos: Mapping[str, float], step: dt.timedelta, *,
                      estimate: Estimate = "lower", by: Sequence[str] = GROUP,
                      selector: Mapping[str, str] | None = None) -> pl.DataFrame:
    """Goodput per ``by`` group and ``step`` over the last ``length``: one row per group and step."""
    check_slos(slos)
    keys, sel = list(by), dict(selector or {})
    for k in (*keys, *sel):
        if k not in LABELS:
            raise ValueError(f"label {k!r}: group or select by one of {', '.join(LABELS)}")
    w = src.window(length)
    step_s = step.total_seconds()
    metrics = sorted({LATENCY[k].canonical for k in {*slos, "e2e"}})
    buckets = _select(src.buckets_over_time(w, metrics, step_s), sel)
    seconds = {}
    for t in buckets["t"].unique().to_list() if buckets.height else []:
        seconds[t] = (min(t + step, w.end) - max(t, w.covered_from)).total_seconds()
    return goodput_series(buckets, slos, seconds, by=keys, estimate=estimate).sort([*keys, "t"], nulls_last=True)
