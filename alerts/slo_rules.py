"""Prometheus rule groups for SLOs: error-ratio recording rules and burn-rate, absent-data alerts.

Pure: takes ``SloSpec`` values (``gpufleet.analytics.slo.spec``) and returns rule-file dicts. Every
alert carries ``slo``, ``service`` and a stable ``slo_tier`` (``page`` or ``ticket``) so that an
Alertmanager inhibit rule can let a fast burn silence the slow burn of the same SLO.
"""

from __future__ import annotations

from typing import Any

from gpufleet.alerts.burnrate import BurnWindow, burn_table, windows_of
from gpufleet.analytics.slo import promql
from gpufleet.analytics.slo.spec import SloSpec

__all__ = ["rule_groups", "spec_rules"]

SEVERITY = {"page": "critical", "ticket": "warning"}


def _sel(labels: dict[str, str]) -> str:
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _ids(spec: SloSpec) -> dict[str, str]:
    return {"slo": spec.name, "service": spec.service}


def _has_total(spec: SloSpec) -> bool:
    return not (spec.raw is not None and spec.sli == "raw" and spec.raw.total_query is None)


def _recording(spec: SloSpec, windows: list[int], naming: str, period_s: float) -> list[dict[str, Any]]:
    ids = _ids(spec)
    rules: list[dict[str, Any]] = []
    for w in windows:
        d = promql.duration(w)
        rules.append({"record": f"slo:sli_error:ratio_rate{d}", "expr": spec.error_ratio_query(d, naming),
                      "labels": dict(ids)})
        if _has_total(spec):
            rules.append({"record": f"slo:sli_total:rate{d}", "expr": spec.total_query(d, naming),
                          "labels": dict(ids)})
    period = promql.duration(period_s)
    rules += [
        {"record": "slo:objective:ratio", "expr": f"vector({spec.objective:.6g})", "labels": dict(ids)},
        {"record": "slo:error_budget:ratio", "expr": f"vector({spec.error_budget:.6g})", "labels": dict(ids)},
        {"record": f"slo:sli_error:ratio_rate{period}",
         "expr": f"avg_over_time(slo:sli_error:ratio_rate{promql.duration(windows[0])}{_sel(ids)}[{period}])",
         "labels": dict(ids)},
        {"record": "slo:period_error_budget_remaining:ratio",
         "expr": (f"1 - slo:sli_error:ratio_rate{period}{_sel(ids)}"
                  f" / on (slo, service) slo:error_budget:ratio{_sel(ids)}"),
         "labels": dict(ids)},
    ]
    return rules


def _condition(spec: SloSpec, b: BurnWindow, min_rate: float) -> str:
    sel = _sel(_ids(spec))
    threshold = f"{b.factor:g} * {spec.error_budget:.6g}"
    long_d, short_d = promql.duration(b.long_s), promql.duration(b.short_s)
    cond = (f"(slo:sli_error:ratio_rate{long_d}{sel} > ({threshold}))\n"
            f"and (slo:sli_error:ratio_rate{short_d}{sel} > ({threshold}))")
    if min_rate > 0 and _has_total(spec):
        cond += f"\nand (slo:sli_total:rate{long_d}{sel} >= {min_rate:g})"
    return "(\n" + cond + "\n)"


def _burn_alert(spec: SloSpec, tier: str, table: list[BurnWindow], min_rate: float) -> dict[str, Any]:
    rows = [b for b in table if b.tier == tier]
    expr = "\nor\n".join(_condition(spec, b, min_rate) for b in rows)
    windows = " or ".join(f"{promql.duration(b.long_s)}/{promql.duration(b.short_s)} at {b.factor:g}x" for b in rows)
    labels = {**spec.labels, **_ids(spec), "severity": SEVERITY[tier], "slo_tier": tier}
    if spec.tier:
        labels["service_tier"] = spec.tier
    return {
        "alert": "SloBurnRate",
        "expr": expr,
        "labels": labels,
        "annotations": {
            "summary": f"{spec.service}: SLO {spec.name} is burning its error budget ({tier})",
            "description": (
                f"{spec.service} SLO {spec.name} (objective {spec.objective * 100:g}% over {spec.window}) has an "
                "error ratio of {{ $value | humanizePercentage }} over the long window, above "
                f"{windows} its budget of {spec.error_budget * 100:g}%."
            ),
            "runbook_url": "docs/runbooks/SloBurnRate.md",
        },
    }


def _absent_alert(spec: SloSpec, absent_for: str) -> dict[str, Any]:
    sel = _sel(_ids(spec))
    return {
        "alert": "SloNoData",
        "expr": f"absent(slo:sli_{'total:rate5m' if _has_total(spec) else 'error:ratio_rate5m'}{sel})",
        "for": absent_for,
        "labels": {**spec.labels, **_ids(spec), "severity": "warning", "slo_tier": "ticket"},
        "annotations": {
            "summary": f"{spec.service}: SLO {spec.name} has no data",
            "description": (f"The SLI of {spec.service} SLO {spec.name} has returned no series for {absent_for} "
                            "(value {{ $value }}): its burn-rate alerts cannot fire."),
            "runbook_url": "docs/runbooks/SloNoData.md",
        },
    }


def spec_rules(spec: SloSpec, *, period_s: float | None = None, naming: str = "auto",
               min_rate: float | None = None, absent_for: str = "15m") -> list[dict[str, Any]]:
    """Two rule groups for one SLO: its recording rules and its alerts.

    ``period_s`` overrides the spec's window for the burn table (28d and 30d give the classic tables);
    ``min_rate`` overrides the spec's ``min_request_rate`` traffic guard (events/s over the long window).
    """
    period = period_s if period_s is not None else spec.window_s
    table = burn_table(period)
    windows = sorted({300, *windows_of(table)})
    guard = spec.min_request_rate if min_rate is None else min_rate
    name = f"slo-{spec.service}-{spec.name}".replace("/", "_")
    return [
        {"name": f"{name}-recording", "rules": _recording(spec, windows, naming, period)},
        {"name": f"{name}-alerts", "rules": [
            _burn_alert(spec, "page", table, guard),
            _burn_alert(spec, "ticket", table, guard),
            _absent_alert(spec, absent_for),
        ]},
    ]


def rule_groups(specs: list[SloSpec], **options: Any) -> dict[str, Any]:
    """A whole rule file (``{"groups": [...]}``) for ``specs``."""
    groups: list[dict[str, Any]] = []
    for spec in specs:
        groups += spec_rules(spec, **options)
    return {"groups": groups}
