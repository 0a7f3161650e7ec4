"""The SLO report: every spec evaluated over the store, each on its own (one SLO's error never stops the others).

For each SLO: the SLI over its window with the interpolation bounds, the burn rate and budget left,
hours to exhaustion at the last hour's burn, the multi-window multi-burn-rate state at the end of the
window, and attainment per day. A spec that cannot be evaluated (a PromQL-only SLI, a threshold beyond
the stored buckets, no matching series, no events in the window) gives a result with ``status``
``error`` or ``no data`` and a message; ratios are then ``None``, never 100 % or 0 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from gpufleet.analytics.slo import events as ev
from gpufleet.analytics.slo import store
from gpufleet.analytics.slo.attainment import Attainment, attainment
from gpufleet.analytics.slo.budget import hours_to_exhaustion
from gpufleet.analytics.slo.catalog import LATENCY, REQUESTS_TOTAL
from gpufleet.analytics.slo.goodput_column import GoodputHook
from gpufleet.analytics.slo.mwmb import BurnState, burn_states, overall_state
from gpufleet.analytics.slo.sli import SliError
from gpufleet.analytics.slo.spec import AvailabilitySli, LatencySli, SloSpec, SpecProblem
from gpufleet.analytics.slo.windows import WindowBudget, window_budget

__all__ = ["SloResult", "evaluate", "slo_report", "default_specs", "problem_result", "STATUSES"]

STATUSES = ("ok", "ticket", "page", "low traffic", "no data", "error")
_LONGEST_BURN_S = 3 * 86400


@dataclass(frozen=True)
class SloResult:
    """One SLO's report row. ``status``: ok, ticket, page (burn alerts), low traffic, no data or error."""

    slo: str
    service: str
    name: str
    sli: str
    objective: float
    window_s: float
    status: str
    message: str = ""
    end: datetime | None = None
    budget: WindowBudget | None = None
    hours_to_exhaustion: float | None = None
    burn: list[BurnState] = field(default_factory=list)
    days: list[Attainment] = field(default_factory=list)
    goodput: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 UTC, ratios as fractions, ``None`` for no data)."""
        b = self.budget
        return {
            "slo": self.slo, "service": self.service, "name": self.name, "sli": self.sli,
            "objective": self.objective, "window_s": self.window_s, "status": self.status, "message": self.message,
            "end": _iso(self.end),
            "start": _iso(b.start) if b else None,
            "events": b.counts.total if b else None, "bad_events": b.counts.bad if b else None,
            "sli_value": b.sli if b else None, "sli_min": b.sli_min if b else None,
            "sli_max": b.sli_max if b else None, "burn_rate": b.burn_rate if b else None,
            "budget_remaining": b.budget_remaining if b else None,
            "hours_to_exhaustion": self.hours_to_exhaustion,
            "burn_windows": [{"severity": s.condition.severity, "long": _dur(s.condition.long_s),
                              "short": _dur(s.condition.short_s), "factor": s.condition.factor,
                              "long_burn": s.long_burn, "short_burn": s.short_burn, "firing": s.firing,
                              "low_traffic": s.low_traffic} for s in self.burn],
            "days": [{"day": d.start.date().isoformat(), "events": d.total, "bad_events": d.bad, "sli": d.sli,
                      "sli_min": d.sli_min, "sli_max": d.sli_max, "burn_rate": d.burn_rate, "met": d.met}
                     for d in self.days],
            "goodput": self.goodput,
        }


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() + "Z" if t else None


def _dur(seconds: float) -> str:
    s = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def sli_label(spec: SloSpec) -> str:
    """Short description of what an SLO measures (``ttft <= 2s``, ``availability``)."""
    if spec.latency is not None:
        return f"{spec.latency.metric} <= {spec.latency.threshold_s:g}s"
    if spec.availability is not None and spec.availability.bad_outcomes != ("error",):
        return f"availability (bad: {'|'.join(spec.availability.bad_outcomes)})"
    return spec.sli


def _base(spec: SloSpec, window_s: float) -> dict[str, Any]:
    return {"slo": spec.id, "service": spec.service, "name": spec.name, "sli": sli_label(spec),
            "objective": spec.objective, "window_s": window_s}


def problem_result(problem: SpecProblem) -> SloResult:
    """An objective the spec loader could not read, as an error row."""
    service, _, name = problem.slo.rpartition("/")
    return SloResult(problem.slo, service, name, "?", 0.0, 0.0, "error", problem.message)


def _load_events(con: duckdb.DuckDBPyConnection, spec: SloSpec, start: datetime, end: datetime) -> pl.DataFrame:
    """Per-interval events for ``spec`` in ``(start, end]``; raises LookupError when no series match."""
    sel = dict(spec.selector)
    if spec.latency is not None:
        metric = LATENCY[spec.latency.metric].canonical
        if store.series_count(con, metric, "histogram", sel) == 0:
            raise LookupError(f"no {metric} series match {sel or 'any labels'} in the store")
        buckets = store.histogram_deltas(con, metric, sel, start, end)
        return ev.latency_events(buckets, spec.latency.threshold_s, metric)
    assert spec.availability is not None
    if store.series_count(con, REQUESTS_TOTAL, "counter", sel) == 0:
        raise LookupError(f"no {REQUESTS_TOTAL} series match {sel or 'any labels'} in the store")
    return ev.availability_events(store.outcome_deltas(con, sel, start, end), spec.availability.bad_outcomes)


def evaluate(con: duckdb.DuckDBPyConnection, spec: SloSpec, end: datetime, window_s: float | None = None,
             goodput: GoodputHook | None = None) -> SloResult:
    """One SLO over ``(end - window, end]`` (``window_s`` overrides the spec's window).

    ``goodput``, when given, is called with the spec and the window and its dict is reported beside the SLO.
    """
    window = float(window_s or spec.window_s)
    base = _base(spec, window)
    if not spec.computable:
        return SloResult(**base, status="error", end=end,
                         message="a PromQL-only SLI: gpufleet cannot compute it from its store; evaluate it in "
                                 "Prometheus (`gpufleet alerts` renders its rules)")
    start = end - timedelta(seconds=window)
    try:
        events = _load_events(con, spec, end - timedelta(seconds=max(window, _LONGEST_BURN_S)), end)
    except LookupError as exc:
        return SloResult(**base, status="no data", end=end, message=str(exc))
    except SliError as exc:
        return SloResult(**base, status="error", end=end, message=str(exc))
    budget = window_budget(events, end, timedelta(seconds=window), spec.objective)
    burn = burn_states(events, end, spec.objective, window, spec.min_request_rate)
    days = attainment(events, start, end, spec.objective)
    extra = goodput(spec, start, end) if goodput is not None else None
    if budget.sli is None or budget.budget_remaining is None:
        return SloResult(**base, status="no data", end=end, budget=budget, burn=burn, days=days, goodput=extra,
                         message=f"no requests in the {_dur(window)} window ending {end:%Y-%m-%d %H:%M} UTC")
    hour_burn = burn[0].long_burn if burn else None
    exhaustion = hours_to_exhaustion(budget.budget_remaining, hour_burn or 0.0, window / 3600)
    status = overall_state(burn)
    message = ""
    if budget.request_rate < spec.min_request_rate:
        status = "low traffic"
        message = (f"{budget.request_rate:.3g} requests/s is under the minimum {spec.min_request_rate:g}/s; "
                   "burn alerts are held")
    elif status == "no data":
        status = "ok"
    return SloResult(**base, status=status, message=message, end=end, budget=budget,
                     hours_to_exhaustion=exhaustion, burn=burn, days=days, goodput=extra)


def slo_report(con: duckdb.DuckDBPyConnection, specs: list[SloSpec], *, end: datetime | None = None,
               window_s: float | None = None, problems: list[SpecProblem] | None = None,
               goodput: GoodputHook | None = None) -> list[SloResult]:
    """Every spec evaluated at ``end`` (default: the newest scrape in the store); problems become error rows."""
    out = [problem_result(p) for p in problems or []]
    at = end or store.newest_ts(con)
    for spec in specs:
        if at is None:
            out.append(SloResult(**_base(spec, float(window_s or spec.window_s)), status="no data",
                                 message="the store holds no scrapes"))
            continue
        try:
            out.append(evaluate(con, spec, at, window_s, goodput))
        except (ValueError, duckdb.Error) as exc:  # one SLO's failure is reported, the others go on
            out.append(SloResult(**_base(spec, float(window_s or spec.window_s)), status="error", end=at,
                                 message=str(exc)))
    return sorted(out, key=lambda r: r.slo)


def default_specs(services: list[str], window_s: float = 30 * 86400.0) -> list[SloSpec]:
    """SLOs for services without a spec file: availability 99.5 % and TTFT <= 2 s for 99 % (MLPerf's llama2-70b)."""
    out = []
    for service in services:
        sel = {"service": service}
        out.append(SloSpec(name="availability", service=service, sli="availability", objective=0.995,
                           window_s=window_s, selector=sel, availability=AvailabilitySli(),
                           source="default", description="finished requests that did not fail"))
        out.append(SloSpec(name="ttft-2s", service=service, sli="latency", objective=0.99, window_s=window_s,
                           selector=sel, latency=LatencySli(metric="ttft", threshold_s=2.0), source="default",
                           description="time to first token within 2 s"))
    return out
