"""Probe results as Prometheus exposition text: the ``gpufleet_probe_*`` gauge families.

This is how probe results reach the store (``gpufleet.collectors.ingest`` parses this text) and how
the node exporter serves them (``--probe-results PATH`` renders :func:`render_results` on each scrape).
Per-GPU series carry ``gpu_uuid``, ``gpu``, ``node``, ``gpu_model`` (and ``cluster`` when known);
NCCL series carry ``node``, ``gpu_model``, ``ranks`` and ``collective``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from gpufleet.probes.results import ProbeRun, load_results
from gpufleet.probes.verdict import VERDICTS

__all__ = ["render_results", "render_file", "load_results", "FAMILIES"]

# family -> help text; every family is a gauge.
FAMILIES: dict[str, str] = {
    "gpufleet_probe_info": "Probe run that produced this GPU's figures (value 1).",
    "gpufleet_probe_run_timestamp_seconds": "When the probe run finished, epoch seconds.",
    "gpufleet_probe_duration_seconds": "Wall time of the probe suite on this GPU.",
    "gpufleet_probe_hbm_bandwidth_bytes_per_second": "Device-memory bandwidth of a STREAM kernel, read+write bytes.",
    "gpufleet_probe_hbm_bandwidth_peak_ratio": "HBM bandwidth as a share of the datasheet peak.",
    "gpufleet_probe_matmul_flops": "Dense matrix-product throughput per dtype, FLOP/s (best shape of the sweep).",
    "gpufleet_probe_matmul_peak_ratio": "Matmul throughput as a share of the datasheet peak (achievable MFU ceiling).",
    "gpufleet_probe_pcie_bandwidth_bytes_per_second": "Host-device copy bandwidth with pinned memory, per direction.",
    "gpufleet_probe_pcie_bandwidth_peak_ratio": "PCIe copy bandwidth as a share of the link's usable bandwidth.",
    "gpufleet_probe_errors": "Probes on this GPU whose result was wrong, NaN or that failed to run.",
    "gpufleet_probe_nccl_busbw_bytes_per_second": "NCCL bus bandwidth (nccl-tests' definition) at the largest size.",
    "gpufleet_probe_nccl_algbw_bytes_per_second": "NCCL algorithm bandwidth (bytes / time) at the largest size.",
    "gpufleet_probe_verdict": "GPU health verdict as a state set: 1 for the current verdict, 0 for the others.",
    "gpufleet_probe_lost_throughput_ratio": "Share of the GPU's throughput lost (1 for a failed GPU).",
    "gpufleet_probe_lost_usd_per_day": "Lost throughput priced at the GPU-hour price, dollars per day.",
}

_PER_GPU = {"hbm_bandwidth", "matmul", "pcie_bandwidth"}


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _labels(d: dict[str, str]) -> str:
    items = [(k, v) for k, v in d.items() if v not in (None, "")]
    return "{" + ",".join(f'{k}="{_esc(str(v))}"' for k, v in items) + "}" if items else ""


def _num(v: float) -> str:
    return repr(float(v))


def render_results(results: ProbeRun | Iterable[ProbeRun]) -> str:
    """Exposition text (Prometheus text format 0.0.4) for one run or several; stable order."""
    runs = [results] if isinstance(results, ProbeRun) else list(results)
    series: dict[str, list[str]] = defaultdict(list)

    def add(family: str, labels: dict[str, str], value: float) -> None:
        series[family].append(f"{family}{_labels(labels)} {_num(value)}")

    for run in runs:
        for g in run.gpus:
            base = {"gpu_uuid": g.gpu_uuid, "gpu": str(g.index), "node": g.node, "gpu_model": g.gpu_model,
                    "cluster": g.cluster or ""}
            add("gpufleet_probe_info", {**base, "suite": run.suite, "backend": run.backend,
                                        "spec": g.spec_key or "unknown"}, 1)
            add("gpufleet_probe_run_timestamp_seconds", base, run.finished_at)
            add("gpufleet_probe_duration_seconds", base, g.duration_s)
            errors = 0
            for m in g.measurements:
                if m.probe not in _PER_GPU:
                    continue
                if not m.ok:
                    errors += 1
                    continue
                add(f"gpufleet_probe_{m.probe}_{m.unit}", {**base, **m.labels}, m.value)
                if m.peak_ratio is not None:
                    add(f"gpufleet_probe_{m.probe}_peak_ratio", {**base, **m.labels}, m.peak_ratio)
            add("gpufleet_probe_errors", base, errors)
        for v in run.verdicts:
            gpu = next((g for g in run.gpus if g.gpu_uuid == v.gpu_uuid), None)
            base = {"gpu_uuid": v.gpu_uuid, "gpu": str(gpu.index) if gpu else "", "node": v.node,
                    "gpu_model": v.gpu_model, "cluster": v.cluster or ""}
            for state in VERDICTS:
                add("gpufleet_probe_verdict", {**base, "verdict": state}, 1.0 if v.verdict == state else 0.0)
            add("gpufleet_probe_lost_throughput_ratio", base, v.lost_ratio)
            if v.lost_usd_per_day is not None:
                add("gpufleet_probe_lost_usd_per_day", base, v.lost_usd_per_day)
        largest: dict[tuple[str | None, str, str], tuple[int, float, float, str | None, int]] = {}
        for c in run.collectives:
            if not c.correct or c.error is not None:
                continue
            k = (c.cluster, c.node, c.collective)
            if k not in largest or c.size_bytes > largest[k][0]:
                largest[k] = (c.size_bytes, c.busbw, c.algbw, c.gpu_model, c.ranks)
        for (cluster, node, coll), (_size, busbw, algbw, model, ranks) in sorted(largest.items(),
                                                                              key=lambda kv: str(kv[0])):
            lab = {"node": node, "gpu_model": model or "", "cluster": cluster or "", "ranks": str(ranks),
                   "collective": coll}
            add("gpufleet_probe_nccl_busbw_bytes_per_second", lab, busbw)
            add("gpufleet_probe_nccl_algbw_bytes_per_second", lab, algbw)
    lines: list[str] = []
    for family, help_text in FAMILIES.items():
        rows = series.get(family)
        if not rows:
            continue
        lines.append(f"# HELP {family} {help_text}")
        lines.append(f"# TYPE {family} gauge")
        lines.extend(rows)
    return "\n".join(lines) + "\n" if lines else ""


def render_file(path: str | Path) -> str:
    """Exposition text for a results file (what the exporter serves for ``--probe-results PATH``)."""
    return render_results(load_results(path))
