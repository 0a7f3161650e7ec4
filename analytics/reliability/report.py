"""Reliability report over a store: taxonomy counts and shares per period, MTTF, ETTR and lemon nodes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import duckdb

from gpufleet.analytics.reliability.goodput import ettr, young_interval_s
from gpufleet.analytics.reliability.mttf import failure_rate, job_mttf_hours, mttf_hours
from gpufleet.analytics.reliability.taxonomy import CATEGORIES, category_of

__all__ = ["CategoryCount", "NodeReliability", "ReliabilityReport", "reliability_report", "INTERRUPTING"]

# Severities that interrupt a job (warnings such as contained ECC or row-remap events are counted apart).
INTERRUPTING = ("critical", "application")


@dataclass(frozen=True)
class CategoryCount:
    """Interruptions of one taxonomy category in one period, with their share of the period's total."""

    period: str
    category: str
    interruptions: int
    share: float
    warnings: int


@dataclass(frozen=True)
class NodeReliability:
    """Interruptions, MTTF and the lemon verdict of one node."""

    node: str
    gpus: int
    hours: float
    interruptions: int
    mttf_hours: float
    lemon: bool


@dataclass(frozen=True)
class ReliabilityReport:
    """The whole report; MTTFs in hours, ETTR for ``job_gpus`` GPUs.

    ``ettr`` is at the given checkpoint interval; ``young_ettr`` at Young's interval ``young_interval_s`` for the
    job's MTTF (None without failures or with free checkpoints, where Young's rule says nothing).
    """

    categories: tuple[CategoryCount, ...]
    nodes: tuple[NodeReliability, ...]
    gpu_hours: float
    interruptions: int
    gpu_mttf_hours: float
    job_gpus: int
    job_mttf_hours: float
    ettr: float | None
    checkpoint_interval_s: float
    restart_s: float
    young_interval_s: float | None = None
    young_ettr: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _lemons(counts: dict[str, int], min_failures: int, factor: float) -> set[str]:
    """Nodes with at least ``min_failures`` interruptions and ``factor`` times the fleet median."""
    if not counts:
        return set()
    values = sorted(counts.values())
    median = values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] +
                                                                 values[len(values) // 2]) / 2
    return {n for n, c in counts.items() if c >= min_failures and c >= factor * max(median, 1)}


def reliability_report(con: duckdb.DuckDBPyConnection, period: str = "day", job_gpus: int = 1024,
                       checkpoint_interval_s: float = 1800.0, restart_s: float = 600.0,
                       checkpoint_cost_s: float = 30.0, lemon_min: int = 3, lemon_factor: float = 3.0
                       ) -> ReliabilityReport:
    """Classify the store's events and size failure figures; ``period`` is hour, day or week."""
    if period not in ("hour", "day", "week"):
        raise ValueError(f"period must be hour, day or week, got {period!r}")
    events = con.execute(f"SELECT date_trunc('{period}', ts), kind, code, failure_class, severity, node, count "
                         "FROM events ORDER BY ts").fetchall()
    per: dict[tuple[str, str], list[int]] = {}
    node_counts: dict[str, int] = {}
    total = 0
    for p, kind, code, fclass, severity, node, count in events:
        cat = category_of(str(kind), code, fclass)
        n = int(round(count or 1))
        slot = per.setdefault((str(p), cat), [0, 0])
        if severity in INTERRUPTING:
            slot[0] += n
            total += n
            if node:
                node_counts[str(node)] = node_counts.get(str(node), 0) + n
        else:
            slot[1] += n
    period_totals: dict[str, int] = {}
    for (p, _), (i, _w) in per.items():
        period_totals[p] = period_totals.get(p, 0) + i
    order = {c: k for k, c in enumerate(CATEGORIES)}
    cats = tuple(CategoryCount(p, c, i, i / period_totals[p] if period_totals[p] else 0.0, w)
                 for (p, c), (i, w) in sorted(per.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99))))
    node_rows = con.execute("SELECT node, coalesce(gpu_count, 0), "
                            "greatest(epoch(last_ts) - epoch(first_ts), 0) / 3600 FROM nodes ORDER BY node").fetchall()
    lemons = _lemons({str(r[0]): node_counts.get(str(r[0]), 0) for r in node_rows}, lemon_min, lemon_factor)
    nodes = tuple(NodeReliability(str(n), int(g), float(h), node_counts.get(str(n), 0),
                                  mttf_hours(node_counts.get(str(n), 0), h) if h > 0 else math.nan, str(n) in lemons)
                  for n, g, h in node_rows)
    gpu_hours = sum(r.gpus * r.hours for r in nodes)
    notes: list[str] = []
    if gpu_hours <= 0:
        notes.append("no node inventory with a time span: MTTF cannot be computed")
        return ReliabilityReport(cats, nodes, 0.0, total, math.nan, job_gpus, math.nan, None,
                                 checkpoint_interval_s, restart_s, notes=tuple(notes))
    rate = failure_rate(total, gpu_hours)
    job_mttf = job_mttf_hours(rate, job_gpus)
    e = ettr(job_mttf * 3600, checkpoint_interval_s, restart_s, checkpoint_cost_s)
    young = young_ettr = None
    if math.isfinite(job_mttf) and checkpoint_cost_s > 0:
        young = young_interval_s(job_mttf * 3600, checkpoint_cost_s)
        young_ettr = ettr(job_mttf * 3600, young, restart_s, checkpoint_cost_s)
    if total == 0:
        notes.append("no interruptions in the window: MTTF is a lower bound")
    return ReliabilityReport(cats, nodes, gpu_hours, total, mttf_hours(total, gpu_hours), job_gpus, job_mttf, e,
                             checkpoint_interval_s, restart_s, young, young_ettr, tuple(notes))
