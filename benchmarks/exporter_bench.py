"""Per-scrape cost and RSS of the exporter on the simulated backend: 8 GPUs, and 64 MIG instances.

For each node shape it runs ``python -m gpufleet.exporters --backend sim`` as its own process and
times ``--scrapes`` keep-alive scrapes of /metrics over loopback (p50/p99), reads the process's RSS,
and, in this process, times rendering the same snapshot two ways side by side: gpufleet's text
encoder against prometheus_client's ``generate_latest`` over the same collector (the peer a
client_python exporter uses), checking both give the same samples.

    python benchmarks/exporter_bench.py --scrapes 300
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from gpufleet.collectors.exposition import parse
from gpufleet.exporters.collector import GpuCollector
from gpufleet.exporters.sampler import Sampler
from gpufleet.exporters.sim import SimBackend, sim_fleet

SHAPES = {"8 GPUs (H100)": ["--sim-gpus", "8"], "64 MIG instances (16 A100 x 4)": ["--sim-gpus", "16", "--sim-mig"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def http_bench(args: list[str], scrapes: int) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gpufleet.exporters", "--backend", "sim", "--listen",
                             f"127.0.0.1:{port}", "--pod-resources-socket", "", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = None
        for _ in range(600):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/healthz")
                if conn.getresponse().read() and True:
                    break
            except OSError:
                time.sleep(0.05)
        assert conn is not None
        time.sleep(6.0)  # a slow pass (GPM, MIG) has landed
        times = []
        size = 0
        for i in range(scrapes + 10):
            t0 = time.perf_counter()
            conn.request("GET", "/metrics")
            body = conn.getresponse().read()
            if i >= 10:
                times.append(time.perf_counter() - t0)
            size = len(body)
        samples = len(parse(body.decode()).samples)
        return {"p50_ms": pct(times, 50) * 1e3, "p99_ms": pct(times, 99) * 1e3, "bytes": size, "samples": samples,
                "rss_mib": rss_mib(proc.pid)}
    finally:
        proc.terminate()
        proc.wait(10)


def render_bench(gpus: int, mig: bool, rounds: int) -> dict[str, float]:
    backend = SimBackend(sim_fleet(gpus=gpus, mig=mig))
    sampler = Sampler(backend, gpm_interval=0.0, sleep=lambda s: None)
    sampler.start_backend()
    sampler.sample_fast()
    sampler.sample_slow()
    snap = sampler.snapshot()
    collector = GpuCollector(lambda: snap, hostname="node-a")
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]

    def same(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {(s.name, tuple(sorted(s.labels)), s.value) for s in parse(text).samples
                if not s.name.startswith("gpufleet_exporter_scrape")}

    assert same(collector.render_text().decode()) == same(generate_latest(registry).decode())
    ours, peer = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        collector.render_text()
        t1 = time.perf_counter()
        generate_latest(registry)
        t2 = time.perf_counter()
        ours.append(t1 - t0)
        peer.append(t2 - t1)
    return {"ours_ms": statistics.median(ours) * 1e3, "client_python_ms": statistics.median(peer) * 1e3,
            "ratio": statistics.median(peer) / statistics.median(ours)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scrapes", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=100)
    args = ap.parse_args()
    print(f"{'shape':<32}{'samples':>8}{'bytes':>9}{'scrape p50':>12}{'p99':>9}{'RSS MiB':>9}"
          f"{'render':>9}{'client_py':>11}{'ratio':>7}")
    for shape, flags in SHAPES.items():
        h = http_bench(flags, args.scrapes)
        r = render_bench(int(flags[1]), "--sim-mig" in flags, args.rounds)
        print(f"{shape:<32}{h['samples']:>8.0f}{h['bytes']:>9.0f}{h['p50_ms']:>10.2f}ms{h['p99_ms']:>7.2f}ms"
              f"{h['rss_mib']:>9.1f}{r['ours_ms']:>7.2f}ms{r['client_python_ms']:>9.2f}ms{r['ratio']:>6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
