"""Per-namespace GPU-hours and cost over a window: gpufleet's cost report vs Prometheus PromQL.

Both sides hold the same simulated fleet: each GPU is held by one namespace (or idle) per day, sampled
every ``--step`` seconds. gpufleet reads its DuckDB store (hourly rollups built by the store's maintenance)
through the cost report; Prometheus (Debian package) holds the same samples backfilled with
``promtool tsdb create-blocks-from openmetrics`` and answers two PromQL queries. The script checks that
both give the same numbers and prints the time ratio.

    python benchmarks/cost_bench.py --gpus 1000 --days 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from gpufleet.analytics.cost.allocation import chargeback, price_allocations
from gpufleet.analytics.cost.pricing import load_catalog
from gpufleet.analytics.cost.query import DuckDBSource
from gpufleet.analytics.cost.report import price_map
from gpufleet.core.store.batch import AllocationRow, Batch, GpuRow, NodeRow
from gpufleet.core.store.maintenance import Retention, maintain
from gpufleet.core.store.reader import open_readonly
from gpufleet.core.store.writer import StoreWriter

NAMESPACES = ("chat-serving", "code-serving", "search-serving", "research-train", "recsys-train", "notebooks")
END = 1_767_225_600  # 2026-01-01 00:00 UTC
NODE_KINDS = (("aws", "us-east-1", "p5.48xlarge", "on_demand", "NVIDIA H100 80GB HBM3"),
              ("aws", "eu-west-1", "p5en.48xlarge", "reserved", "NVIDIA H200"))


def fleet(gpus: int, days: int, seed: int = 7) -> tuple[list[tuple[str, str, int]], list[list[str | None]]]:
    """GPUs as (uuid, node, node kind) and, per GPU and day, the namespace holding it (None: idle)."""
    rng = random.Random(seed)
    gl = [(f"GPU-{i:05d}", f"node-{i // 8:04d}", (i // 8) % 2) for i in range(gpus)]
    plan = [[rng.choice(NAMESPACES) if rng.random() < 0.8 else None for _ in range(days)] for _ in gl]
    return gl, plan


def build_store(path: Path, gl: list[tuple[str, str, int]], plan: list[list[str | None]], start: int,
                steps: int, step: int) -> None:
    """Write the fleet through the store writer, one batch per scrape, then build rollups."""
    gpu_rows = [GpuRow(u, "bench", n, str(i % 8), NODE_KINDS[k][4], None) for i, (u, n, k) in enumerate(gl)]
    nodes = {n: NodeRow(n, "bench", *NODE_KINDS[k][:4], NODE_KINDS[k][4], 8) for _, n, k in gl}
    with StoreWriter(path) as w:
        for s in range(steps):
            ts = start + s * step
            day = (ts - start) // 86400
            allocs = [AllocationRow(u, "bench", n, plan[i][day], f"{plan[i][day]}-{n}" if plan[i][day] else None,
                                    "main" if plan[i][day] else None, 1.0) for i, (u, n, _) in enumerate(gl)]
            b = Batch("bench", float(ts), float(step), allocations=allocs,
                      namespaces={ns: ns.split("-")[0] for ns in NAMESPACES})
            if s == 0:
                b.gpus, b.nodes = gpu_rows, list(nodes.values())
            w.write([b])
        maintain(w.con, Retention(raw_days=10_000))


def openmetrics(path: Path, gl: list[tuple[str, str, int]], plan: list[list[str | None]], start: int, steps: int,
                step: int, price: dict[int, float]) -> None:
    """The same samples as OpenMetrics text (one family at a time, each series in time order)."""
    with path.open("w") as f:
        f.write("# TYPE gpufleet_gpu_allocation_share gauge\n")
        for i, (u, n, _) in enumerate(gl):
            for s in range(steps):
                ts = start + s * step
                ns = plan[i][(ts - start) // 86400]
                if ns:
                    f.write(f'gpufleet_gpu_allocation_share{{gpu_uuid="{u}",node="{n}",namespace="{ns}"}} 1 {ts}\n')
        f.write("# TYPE gpufleet_gpu_hourly_cost_usd gauge\n")
        for u, n, k in gl:
            for s in range(steps):
                f.write(f'gpufleet_gpu_hourly_cost_usd{{gpu_uuid="{u}",node="{n}"}} {price[k]} {start + s * step}\n')
        f.write("# EOF\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def promql(port: int, query: str, at: float) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query, "time": at})
    with urllib.request.urlopen(url, timeout=300) as r:
        body = json.load(r)
    return {x["metric"].get("namespace", ""): float(x["value"][1]) for x in body["data"]["result"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--step", type=int, default=3600, help="seconds between samples")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    steps = args.days * 86400 // args.step
    start = END - args.days * 86400
    work = Path(tempfile.mkdtemp(prefix="cost-bench-"))
    try:
        gl, plan = fleet(args.gpus, args.days)
        cat = load_catalog()
        prices = price_map(cat)
        price = {k: prices[(p, r, m, c)] for k, (p, r, _, c, m) in enumerate(NODE_KINDS)}
        t0 = time.perf_counter()
        build_store(work / "store.duckdb", gl, plan, start, steps, args.step)
        t_store = time.perf_counter() - t0
        om = work / "data.om"
        openmetrics(om, gl, plan, start, steps, args.step, price)
        t0 = time.perf_counter()
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(om), str(work / "tsdb")],
                       check=True, capture_output=True)
        t_backfill = time.perf_counter() - t0
        print(f"fleet: {args.gpus} GPUs x {args.days} days every {args.step}s; "
              f"store built in {t_store:.1f}s, promtool backfill {t_backfill:.1f}s")

        con = open_readonly(work / "store.duckdb")
        src = DuckDBSource(con)
        window = dt.timedelta(days=args.days)
        g_times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            cb = chargeback(price_allocations(src.allocations(src.window(window)), prices), "namespace",
                            idle="none", shared="none", shared_namespaces=())
            g_times.append(time.perf_counter() - t0)
        ours = {r["namespace"]: (r["gpu_hours"], r["cost_cents"]) for r in cb.iter_rows(named=True)
                if not r["namespace"].startswith("__")}

        port = free_port()
        (work / "prom.yml").write_text("global: {}\n")
        prom = subprocess.Popen(["prometheus", f"--storage.tsdb.path={work / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}", f"--config.file={work / 'prom.yml'}",
                                 "--storage.tsdb.retention.time=100y"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(120):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.5)
            at = END - 1
            rng = f"{args.days}d"
            q_hours = f"sum by (namespace) (sum_over_time(gpufleet_gpu_allocation_share[{rng}])) * {args.step} / 3600"
            q_cost = (f"sum by (namespace) (sum_over_time((gpufleet_gpu_allocation_share * on (gpu_uuid) "
                      f"group_left () gpufleet_gpu_hourly_cost_usd)[{rng}:{args.step}s])) * {args.step} / 3600")
            p_times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                hours, cost = promql(port, q_hours, at), promql(port, q_cost, at)
                p_times.append(time.perf_counter() - t0)
        finally:
            prom.terminate()
            prom.wait(timeout=30)
        same = True
        print(f"{'namespace':<16}{'gpufleet GPU-h':>16}{'PromQL GPU-h':>14}{'gpufleet $':>14}{'PromQL $':>14}")
        for ns in sorted(set(ours) | set(hours)):
            gh, gc = ours.get(ns, (0.0, 0))
            ph, pc = hours.get(ns, 0.0), cost.get(ns, 0.0)
            same &= abs(gh - ph) < 1e-6 and abs(gc - round(pc * 100)) <= 1
            print(f"{ns:<16}{gh:>16,.2f}{ph:>14,.2f}{gc / 100:>14,.2f}{pc:>14,.2f}")
        g, p = min(g_times), min(p_times)
        print(f"same numbers: {same}")
        print(f"gpufleet report {g * 1000:.0f} ms, Prometheus {p * 1000:.0f} ms (best of {args.repeat}): "
              f"gpufleet {p / g:.1f}x faster")
        return 0 if same else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
