"""What each ``GpuBackend`` call costs on a real GPU (NVML) or the simulated one: median and p99 per call.

Tells which fields belong in the fast loop and which in the slow one, and what one fast pass costs.

    python benchmarks/exporter_nvml_calls.py --backend nvml --repeat 50 --idle-cpu-s 20

``--idle-cpu-s`` also runs ``python -m gpufleet.exporters`` with its default intervals (fast 1 s,
slow 5 s, GPM 1 s) for that long, unscraped, and reports its CPU share and RSS.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gpufleet.exporters.backend import GpuBackend
from gpufleet.exporters.errors import NvmlError
from gpufleet.exporters.sampler import Sampler


def backend_for(name: str) -> GpuBackend:
    if name == "nvml":
        from gpufleet.exporters.nvml import NvmlBackend

        return NvmlBackend()
    from gpufleet.exporters.sim import SimBackend, sim_fleet

    return SimBackend(sim_fleet(gpus=1))


def time_call(fn: Callable[[], object], repeat: int) -> tuple[float, float, str]:
    times = []
    outcome = "ok"
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            fn()
        except NvmlError as exc:
            outcome = exc.kind
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * (len(times) - 1) + 0.5))], outcome


def idle_cost(backend: str, seconds: float) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "gpufleet.exporters", "--backend", backend, "--listen",
                             f"127.0.0.1:{port}", "--pod-resources-socket", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5.0)

        def cpu() -> float:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        c0, t0 = cpu(), time.monotonic()
        time.sleep(seconds)
        share = 100 * (cpu() - c0) / (time.monotonic() - t0)
        status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    finally:
        proc.terminate()
        proc.wait(10)
    return (f"exporter at default intervals, unscraped for {seconds:.0f} s: {share:.2f}% of one core, "
            f"RSS {rss / 1024:.1f} MiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["nvml", "sim"], default="nvml")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--idle-cpu-s", type=float, default=0.0)
    args = ap.parse_args()
    b = backend_for(args.backend)
    b.init()
    calls: dict[str, Callable[[], object]] = {
        "utilization": lambda: b.utilization(0), "encoder_decoder": lambda: b.encoder_decoder(0),
        "memory": lambda: b.memory(0), "power": lambda: b.power(0), "energy": lambda: b.energy(0),
        "temperature": lambda: b.temperature(0), "memory_temperature": lambda: b.memory_temperature(0),
        "clocks": lambda: b.clocks(0), "clock_events": lambda: b.clock_events(0),
        "violation": lambda: b.violation(0), "pcie_throughput": lambda: b.pcie_throughput(0),
        "pcie_replays": lambda: b.pcie_replays(0), "nvlink": lambda: b.nvlink(0), "ecc": lambda: b.ecc(0),
        "remapped_rows": lambda: b.remapped_rows(0), "processes": lambda: b.processes(0),
        "gpm_support": lambda: b.gpm_support(0), "mig_instances": lambda: b.mig_instances(0),
        "identity": lambda: b.identity(0),
    }

    def gpm_pair() -> None:
        first = b.gpm_sample(0)
        second = b.gpm_sample(0)
        try:
            b.gpm_metrics(0, first, second)
        finally:
            b.gpm_release(first)
            b.gpm_release(second)

    calls["gpm_sample x2 + metrics"] = gpm_pair
    print(f"{'call':<26}{'median us':>11}{'p99 us':>10}  outcome")
    for name, fn in calls.items():
        repeat = max(3, args.repeat // 10) if name == "pcie_throughput" else args.repeat
        med, p99, outcome = time_call(fn, repeat)
        print(f"{name:<26}{med * 1e6:>11.1f}{p99 * 1e6:>10.1f}  {outcome}")
    b.shutdown()
    sampler = Sampler(backend_for(args.backend), gpm_interval=0.0, sleep=lambda s: None)
    sampler.start_backend()
    fast = [0.0] * 20
    for k in range(20):
        sampler.sample_fast()
        fast[k] = sampler.durations["fast"]
    slow = [0.0] * 5
    for k in range(5):
        sampler.sample_slow()
        slow[k] = sampler.durations["slow"]
    print(f"fast pass (1 GPU): median {statistics.median(fast) * 1e3:.2f} ms; "
          f"slow pass without the GPM wait: median {statistics.median(slow) * 1e3:.2f} ms")
    sampler.backend.shutdown()
    if args.idle_cpu_s > 0:
        print(idle_cost(args.backend, args.idle_cpu_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
