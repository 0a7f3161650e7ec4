"""Alerts only the analytics can see, as Alertmanager v2 alert objects (pure: rows in, dicts out).

Degraded or failed probe verdicts per GPU (``probe_results`` via ``probes.report.latest_verdicts``) and
services whose forecast peak needs more replicas than they run (``analytics.capacity.report``), and
teams (or namespaces) whose GPU spend in the newest bucket jumps above their baseline
(``analytics.cost.anomaly``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gpufleet.analytics.cost.anomaly import CostAnomaly

__all__ = ["Alert", "capacity_alerts", "cost_alerts", "probe_alerts"]

RUNBOOK = "docs/runbooks/{}.md"


@dataclass(frozen=True)
class Alert:
    """One analytics-side alert: labels identify it, annotations explain it."""

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """A stable identity for the label set (what Alertmanager deduplicates on)."""
        return hashlib.sha256(json.dumps(self.labels, sort_keys=True).encode()).hexdigest()[:16]

    def payload(self, starts_at: str, ends_at: str, generator_url: str = "") -> dict[str, Any]:
        """The v2 ``postableAlert`` object."""
        out: dict[str, Any] = {"labels": self.labels, "annotations": self.annotations,
                               "startsAt": starts_at, "endsAt": ends_at}
        if generator_url:
            out["generatorURL"] = generator_url
        return out


def probe_alerts(verdicts: list[dict[str, Any]]) -> list[Alert]:
    """``GpuProbeDegraded`` / ``GpuProbeFailed`` for each GPU whose latest verdict is not healthy."""
    out = []
    for v in verdicts:
        if v["verdict"] not in ("degraded", "failed"):
            continue
        name = "GpuProbeDegraded" if v["verdict"] == "degraded" else "GpuProbeFailed"
        lost = f"{v['lost_ratio'] * 100:.1f}%"
        usd = v.get("lost_usd_per_day")
        cost = f", about ${usd:.2f}/day of paid capacity" if usd is not None else ""
        labels = {"alertname": name, "severity": "warning" if v["verdict"] == "degraded" else "critical",
                  "source": "gpufleet-analytics", "gpu_uuid": v["gpu_uuid"], "node": str(v["node"] or ""),
                  "gpu_model": str(v["gpu_model"] or "")}
        if v.get("cluster"):
            labels["cluster"] = str(v["cluster"])
        out.append(Alert(labels, {
            "summary": f"Probe verdict {v['verdict']} on {labels['node']} GPU {v['gpu_uuid']}",
            "description": (f"The latest probe run ({v['ts']}) measured GPU {v['gpu_uuid']} ({labels['gpu_model']}) on "
                            f"{labels['node']} {lost} below its expected throughput{cost}."),
            "runbook_url": RUNBOOK.format(name),
        }))
    return out


def capacity_alerts(rows: list[dict[str, Any]]) -> list[Alert]:
    """``CapacityExhaustion`` for each service whose forecast peak needs more replicas than it runs."""
    out = []
    for r in rows:
        need, have = r.get("replicas"), r.get("replicas_now")
        if need is None or have is None or need <= have:
            continue
        out.append(Alert(
            {"alertname": "CapacityExhaustion", "severity": "warning", "source": "gpufleet-analytics",
             "service": str(r["service"])},
            {"summary": f"{r['service']} will run out of capacity at its forecast peak",
             "description": (f"Service {r['service']} is forecast to peak at {r['peak_rps']:.2f} req/s, which needs "
                             f"{need} replica(s) for its latency target; it runs {have}."),
             "runbook_url": RUNBOOK.format("CapacityExhaustion")}))
    return out


def _span(hours: float) -> str:
    return f"{hours / 24:g}d" if hours >= 24 and hours % 24 == 0 else f"{hours:g}h"


def cost_alerts(anomalies: list[CostAnomaly]) -> list[Alert]:
    """``GpuCostAnomaly`` for each group whose newest bucket of spend is far above its baseline."""
    out = []
    for a in anomalies:
        span = _span(a.bucket_hours)
        ratio = f" ({a.ratio:.1f}x)" if a.ratio is not None else " (new spend)"
        out.append(Alert(
            {"alertname": "GpuCostAnomaly", "severity": "warning", "source": "gpufleet-analytics", a.by: a.group},
            {"summary": f"GPU spend of {a.by} {a.group} jumped{ratio} in the last {span}",
             "description": (f"{a.by.capitalize()} {a.group} spent ${a.cost_usd:,.2f} on GPUs in the {span} from "
                             f"{a.bucket_start:%Y-%m-%d %H:%M} UTC against a baseline median of "
                             f"${a.baseline_usd:,.2f} per {span} (alert threshold ${a.threshold_usd:,.2f})."),
             "runbook_url": RUNBOOK.format("GpuCostAnomaly")}))
    return out
