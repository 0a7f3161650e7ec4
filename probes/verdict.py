"""Degraded-GPU verdicts: each GPU against its node peers, its model's fleet baseline and its datasheet.

A figure is judged against up to three references, each a robust one:

* **peers** — the median of the same figure on the other GPUs of its node (at least ``min_group`` GPUs);
* **fleet** — the median over every GPU of the same model in the results (at least ``min_group``);
* **datasheet** — the peak times the share a healthy GPU reaches (``EXPECTED_EFFICIENCY``).

Against peers and fleet a figure is flagged when it falls short by more than ``degraded_deficit``
and its robust z-score (MAD-based) is below ``-z_limit``; short by more than ``failed_deficit`` is a
failure. The datasheet check uses wider margins because clocks and cooling move it. A wrong result,
a NaN or a probe error fails the GPU outright. A GPU that another process was using during the
probe is at least degraded, and never failed on its figures alone: the figures include the contention.
Lost throughput is the largest shortfall (1.0 for a failed GPU); times the GPU-hour price it is $/day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gpufleet.probes.results import GpuResult, Measurement, Verdict
from gpufleet.probes.specs import EXPECTED_EFFICIENCY, find_spec
from gpufleet.probes.stats import median, robust_z

__all__ = ["Thresholds", "judge", "VERDICTS", "PriceLookup", "family_of"]

VERDICTS = ("healthy", "degraded", "failed")
JUDGED = ("hbm_bandwidth", "matmul", "pcie_bandwidth")  # higher is better; per-GPU figures

# model family -> ($/GPU-hour, where the price came from); (None, None) when no price is known
PriceLookup = Callable[[str], tuple[float | None, str | None]]


@dataclass(frozen=True)
class Thresholds:
    """Margins of the verdicts (shares of the reference)."""

    degraded_deficit: float = 0.10
    failed_deficit: float = 0.40
    datasheet_degraded_deficit: float = 0.15
    datasheet_failed_deficit: float = 0.50
    z_limit: float = 3.5
    min_group: int = 3


@dataclass(frozen=True)
class _Check:
    key: str
    reference: str
    ref_value: float
    deficit: float
    severity: int  # 0 healthy, 1 degraded, 2 failed


def family_of(gpu_model: str) -> str:
    """The model family (``H100``) of an NVML name, or the name itself when unknown."""
    spec = find_spec(gpu_model)
    return spec.family if spec else gpu_model


def _expected(m: Measurement) -> float | None:
    if not m.peak:
        return None
    eff = EXPECTED_EFFICIENCY.get(m.probe) or EXPECTED_EFFICIENCY.get(m.key)
    return m.peak * eff if eff else None


def judge(gpus: Iterable[GpuResult], prices: PriceLookup | None = None,
          thresholds: Thresholds = Thresholds()) -> list[Verdict]:
    """One verdict per GPU, in the order given."""
    gpus = list(gpus)
    t = thresholds
    by_node: dict[tuple[str | None, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    by_model: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for g in gpus:
        for m in g.measurements:
            if m.probe in JUDGED and m.ok:
                by_node[(g.cluster, g.node)][m.key].append(m.value)
                by_model[family_of(g.gpu_model)][m.key].append(m.value)
    out = []
    for g in gpus:
        fam = family_of(g.gpu_model)
        reasons: list[str] = []
        checks: list[_Check] = []
        broken = False
        for m in g.measurements:
            if m.probe not in JUDGED:
                continue
            if not m.ok:
                broken = True
                why = m.error or ("result did not match the reference" if not m.correct else "no finite value")
                reasons.append(f"{m.key}: {why}")
                continue
            groups = (("node peers", by_node[(g.cluster, g.node)][m.key]), ("fleet " + fam, by_model[fam][m.key]))
            for name, values in groups:
                if len(values) < t.min_group:
                    continue
                ref = median(values)
                deficit = 1 - m.value / ref if ref > 0 else 0.0
                z = robust_z(m.value, values)
                sev = 0
                if deficit > t.degraded_deficit and z < -t.z_limit:
                    sev = 2 if deficit > t.failed_deficit else 1
                checks.append(_Check(m.key, name, ref, deficit, sev))
            expected = _expected(m)
            if expected:
                deficit = 1 - m.value / expected
                sev = 2 if deficit > t.datasheet_failed_deficit else 1 if deficit > t.datasheet_degraded_deficit else 0
                checks.append(_Check(m.key, "datasheet", expected, deficit, sev))
        worst: dict[str, _Check] = {}
        for c in checks:
            if c.severity and (c.key not in worst or c.deficit > worst[c.key].deficit):
                worst[c.key] = c
        for c in sorted(worst.values(), key=lambda c: -c.deficit):
            reasons.append(f"{c.key} {c.deficit:.0%} below {c.reference} ({_fmt(c.key, c.ref_value)})")
        severity = max((c.severity for c in checks), default=0)
        shortfall = max((c.deficit for c in checks if c.severity), default=0.0)
        if g.other_processes:
            n = len(g.other_processes)
            reasons.insert(0, f"shared: {n} other compute process{'es' if n > 1 else ''} on the GPU during the "
                              f"probe (pids {', '.join(map(str, g.other_processes[:5]))})")
            severity = min(max(severity, 1), 1)
            shortfall = max((c.deficit for c in checks), default=0.0)
        if broken:
            severity = 2
        verdict = VERDICTS[severity]
        lost = 1.0 if severity == 2 else max(0.0, min(shortfall, 1.0)) if severity == 1 else 0.0
        price, source = prices(fam) if prices else (None, None)
        usd = lost * price * 24 if price is not None else None
        out.append(Verdict(g.gpu_uuid, g.node, g.gpu_model, verdict, reasons, round(lost, 4), price, source,
                           round(usd, 2) if usd is not None else None, g.cluster))
    return out


def _fmt(key: str, value: float) -> str:
    if key.startswith("matmul"):
        return f"{value / 1e12:,.0f} TFLOP/s"
    return f"{value / 1e9:,.0f} GB/s"
