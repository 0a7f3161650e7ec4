"""Exposition parser throughput beside prometheus_client's parser, on the same large payload.

The payload is a fleet-sized text-format exposition: ``--gpus`` GPUs with dcgm-style gauges and
counters plus vLLM-style histograms with escaped label values. Both parsers read it; the script
checks that they return identical samples (name, labels, value, timestamp; the counter is
named with `_total` since prometheus_client renames counter samples to that), then prints the
best-of-``--repeat`` time of each and the ratio.

    python benchmarks/parser_bench.py [--gpus 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from gpufleet.collectors.exposition import parse

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


def best(fn: Callable[[str], object], text: str, repeat: int) -> float:
    """Best wall time of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - t)
    return min(times)


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
    t_ours = best(ours, text, args.repeat)
    t_theirs = best(theirs, text, args.repeat)
    mb = len(text.encode()) / 1e6
    print(f"payload: {len(a):,} samples, {mb:.1f} MB; identical samples: yes")
    print(f"gpufleet parser:          {t_ours * 1e3:8.1f} ms  {len(a) / t_ours / 1e6:6.2f} M samples/s")
    print(f"prometheus_client parser: {t_theirs * 1e3:8.1f} ms  {len(b) / t_theirs / 1e6:6.2f} M samples/s")
    print(f"ratio: {t_theirs / t_ours:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
