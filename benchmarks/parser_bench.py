"""Exposition parser throughput beside prometheus_client's parser, on the same large payload.

The payload is a fleet-sized text-format exposition: ``--gpus`` GPUs with dcgm-style gauges and
counters plus vLLM-style histograms with escaped label values. Both parsers read it; the script
checks that they return identical samples (name, labels, value, timestamp; the counter is
named with `_total` since prometheus_client renames counter samples to that), then prints the
best-of-``--repeat`` time of each parse alone and the ratio: once as a repeated scrape (the
label-body cache warm, as in a collector scraping the same series again) and once with the
cache cleared before every run.

    python benchmarks/parser_bench.py [--gpus 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from gpufleet.collectors.exposition import clear_cache, parse

LE = ("0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf")
GAUGES = ("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED",
          "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE")


def payload(gpus: int) -> str:
    """A text-format exposition with ``gpus`` GPUs' series (~30 samples per GPU)."""
    out: list[str] = []
    for g in GAUGES:
        out.append(f"# HELP {g} a gauge.\n# TYPE {g} gauge\n")
        for i in range(gpus):
            out.append(f'{g}{{gpu="{i % 8}",UUID="GPU-{i:08x}-aaaa",Hostname="node-{i // 8}",'
                       f'modelName="NVIDIA H100 80GB HBM3"}} {(i * 7.25) % 100:.3f}\n')
    out.append("# TYPE gpufleet_gpu_energy_joules_total counter\n")
    for i in range(gpus):
        out.append(f'gpufleet_gpu_energy_joules_total{{gpu="{i % 8}",UUID="GPU-{i:08x}-aaaa"}} {i * 1e6:.0f}\n')
    out.append("# HELP vllm:time_to_first_token_seconds TTFT.\n# TYPE vllm:time_to_first_token_seconds histogram\n")
    for i in range(gpus):
        lab = f'model_name="meta/llama \\"{i % 5}\\"",engine="{i}"'
        for j, le in enumerate(LE):
            out.append(f'vllm:time_to_first_token_seconds_bucket{{{lab},le="{le}"}} {i + j * 3}.0\n')
        out.append(f"vllm:time_to_first_token_seconds_sum{{{lab}}} {i * 0.5}\n")
        out.append(f"vllm:time_to_first_token_seconds_count{{{lab}}} {i + 39}.0\n")
    out.append("# TYPE odd gauge\nodd NaN\nodd{k=\"inf\"} +Inf 1700000000000\nodd{k=\"ninf\"} -Inf\n")
    return "".join(out)


def _key(name: str, labels: dict[str, str] | tuple[tuple[str, str], ...], value: float,
         ts: float | None) -> tuple[str, tuple[tuple[str, str], ...], str, float | None]:
    items = labels.items() if isinstance(labels, dict) else labels
    return name, tuple(sorted(items)), "nan" if math.isnan(value) else repr(float(value)), ts


def ours(text: str) -> list[tuple[str, tuple[tuple[str, str], ...], str, float | None]]:
    """Samples from gpufleet's parser."""
    result = parse(text)
    if result.errors:
        raise SystemExit(f"gpufleet parser reported errors: {result.errors[:3]}")
    return [_key(s.name, s.labels, s.value, s.timestamp) for f in result.families.values() for s in f.samples]


def theirs(text: str) -> list[tuple[str, tuple[tuple[str, str], ...], str, float | None]]:
    """Samples from prometheus_client's parser (timestamps there are seconds, as ours)."""
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            ts = None if s.timestamp is None else float(s.timestamp)
            out.append(_key(s.name, s.labels, s.value, ts))
    return out


def best_interleaved(fns: list[tuple[Callable[[str], object], Callable[[], None]]], text: str,
                     repeat: int) -> list[float]:
    """Best wall time of each ``fn(text)`` (its ``before`` runs untimed ahead of it), the runs interleaved.

    Interleaving makes a busy machine slow every contender alike rather than whichever ran
    during the busy moment, so the ratio stays meaningful on a shared host.
    """
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, (fn, before) in enumerate(fns):
            before()
            t = time.perf_counter()
            fn(text)
            times[i].append(time.perf_counter() - t)
    return [min(t) for t in times]


def parse_ours(text: str) -> object:
    """gpufleet's parser, nothing else."""
    return parse(text)


def parse_theirs(text: str) -> object:
    """prometheus_client's parser, every family and sample materialised."""
    return [fam.samples for fam in text_string_to_metric_families(text)]


def main() -> int:
    """Run the comparison and print the ratio."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gpus", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    text = payload(args.gpus)
    a, b = ours(text), theirs(text)
    if sorted(a) != sorted(b):
        diff = sorted(set(a) ^ set(b))[:5]
        raise SystemExit(f"samples differ ({len(a)} vs {len(b)}): {diff}")
    parse_ours(text)  # a collector has seen these series before: warm the label cache once
    t_ours, t_cold, t_theirs = best_interleaved([(parse_ours, lambda: None), (parse_ours, clear_cache),
                                                 (parse_theirs, lambda: None)], text, args.repeat)
    mb = len(text.encode()) / 1e6
    print(f"payload: {len(a):,} samples, {mb:.1f} MB; identical samples: yes")
    print(f"gpufleet parser, repeat scrape:   {t_ours * 1e3:8.1f} ms  {len(a) / t_ours / 1e6:6.2f} M samples/s")
    print(f"gpufleet parser, cold label cache: {t_cold * 1e3:7.1f} ms  {len(a) / t_cold / 1e6:6.2f} M samples/s")
    print(f"prometheus_client parser:          {t_theirs * 1e3:7.1f} ms  {len(b) / t_theirs / 1e6:6.2f} M samples/s")
    print(f"ratio, repeat scrape: {t_theirs / t_ours:.1f}x; cold label cache: {t_theirs / t_cold:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
