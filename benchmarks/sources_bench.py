"""The cost report from every source on one dataset: DuckDB store, Prometheus, VictoriaMetrics, Parquet (S3 and disk).

A fleet of ``--gpus`` GPUs (8 per node, two node kinds) is held each day by one namespace or left idle, and
sampled every ``--step`` seconds. The same exposition texts land in the gpufleet store through the collector
path (parser, adapters, writer, rollups), in Prometheus (``promtool tsdb create-blocks-from openmetrics``) and
in VictoriaMetrics (``/api/v1/import/prometheus``); the store's rollups are exported as Parquet to an S3 server
(moto, loopback) and to local disk. Each source then answers ``gpufleet report cost --by namespace`` for the
whole window, timed best of ``--repeat``; the script checks the numbers are equal and prints time ratios.

    python benchmarks/sources_bench.py --gpus 1000 --days 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl

from gpufleet.analytics.cost import report as rep
from gpufleet.analytics.cost.pricing import load_catalog
from gpufleet.analytics.cost.query import DuckDBSource
from gpufleet.analytics.sources.base import Source
from gpufleet.analytics.sources.export import export_parquet
from gpufleet.analytics.sources.parquet import ParquetSource
from gpufleet.analytics.sources.prometheus import PrometheusSource
from gpufleet.collectors.ingest import Scrape, to_batch
from gpufleet.collectors.target import Target
from gpufleet.core.simfleet.render import label_str
from gpufleet.core.store.maintenance import Retention, maintain
from gpufleet.core.store.reader import open_readonly
from gpufleet.core.store.writer import StoreWriter

NAMESPACES = ("chat-serving", "code-serving", "search-serving", "research-train", "recsys-train", "notebooks")
END = 1_767_225_600  # 2026-01-01 00:00 UTC
KINDS = (("aws", "us-east-1", "p5.48xlarge", "on_demand", "NVIDIA H100 80GB HBM3"),
         ("aws", "eu-west-1", "p5en.48xlarge", "reserved", "NVIDIA H200"))


def plan(gpus: int, days: int, seed: int = 7) -> list[list[str | None]]:
    """Per GPU and day, the namespace holding it (None: idle)."""
    rng = random.Random(seed)
    return [[rng.choice(NAMESPACES) if rng.random() < 0.8 else None for _ in range(days)] for _ in range(gpus)]


def node_text(node: int, hold: list[list[str | None]], day: int) -> str:
    """The exporter's text for one node (native names) in a day: up, pod allocations, node facts."""
    prov, region, itype, pricing, model = KINDS[node % 2]
    name = f"node-{node:04d}"
    up, alloc = ["# TYPE gpufleet_gpu_up gauge"], ["# TYPE gpufleet_gpu_pod_allocation gauge"]
    for g in range(node * 8, min(node * 8 + 8, len(hold))):
        ident = [("gpu", str(g % 8)), ("gpu_model", model), ("gpu_uuid", f"GPU-{g:05d}"), ("node", name)]
        up.append(f"gpufleet_gpu_up{label_str(ident)} 1")
        ns = hold[g][day]
        if ns:
            holder = label_str([*ident, ("container", "main"), ("namespace", ns), ("pod", f"{ns}-{name}")])
            alloc.append(f"gpufleet_gpu_pod_allocation{holder} 1")
    info = label_str([("gpu_count", "8"), ("gpu_model", model), ("instance_type", itype), ("node", name),
                      ("pricing_category", pricing), ("provider", prov), ("region", region)])
    return "\n".join([*up, *alloc, "# TYPE gpufleet_node_info gauge", f"gpufleet_node_info{info} 1"]) + "\n"


def kube_text() -> str:
    """kube-state-metrics' namespace teams."""
    rows = [f"kube_namespace_labels{label_str([('label_team', ns.split('-')[0]), ('namespace', ns)])} 1"
            for ns in NAMESPACES]
    return "\n".join(["# TYPE kube_namespace_labels gauge", *rows]) + "\n"


def scrapes(hold: list[list[str | None]], start: int, steps: int, step: int) -> Iterator[Scrape]:
    """Every node and the kube target at every step."""
    nodes = (len(hold) + 7) // 8
    kube = Target("kube-state-metrics:8080", {"cluster": "bench"})
    for s in range(steps):
        ts = start + s * step
        day = (ts - start) // 86400
        for n in range(nodes):
            yield Scrape(Target(f"node-{n:04d}:9400", {"cluster": "bench"}), float(ts), node_text(n, hold, day), step)
        yield Scrape(kube, float(ts), kube_text(), step)


def build_store(path: Path, hold: list[list[str | None]], start: int, steps: int, step: int) -> None:
    """Land every scrape through the parser, adapters and the writer; build rollups."""
    with StoreWriter(path) as w:
        batch = []
        for sc in scrapes(hold, start, steps, step):
            batch.append(to_batch(sc))
            if len(batch) >= 500:
                w.write(batch)
                batch = []
        w.write(batch)
        maintain(w.con, Retention(raw_days=10_000))


def text_lines(hold: list[list[str | None]], start: int, steps: int, step: int, ms: bool) -> Iterator[tuple[str, str]]:
    """(family, sample line with target labels and a timestamp) for every sample."""
    for sc in scrapes(hold, start, steps, step):
        tl = {**sc.target.labels, "instance": sc.target.name, "job": sc.target.name.split("-")[0]}
        stamp = str(int(sc.scrape_ts * 1000)) if ms else str(int(sc.scrape_ts))
        for line in sc.text.splitlines():
            if line.startswith("#"):
                continue
            head, value = line.rsplit(" ", 1)
            name, body = head[:-1].split("{", 1)
            extra = ",".join(f'{k}="{v}"' for k, v in tl.items())
            yield name, f"{name}{{{body},{extra}}} {value} {stamp}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{url}: server exited") from None
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


def settle_prometheus(url: str, quiet_s: float = 10.0, limit_s: float = 900.0) -> float:
    """Wait until Prometheus has finished compacting the backfilled blocks (block count and compactions stop
    changing for ``quiet_s``), so queries are not timed against background compaction. Returns seconds waited."""
    t0 = time.perf_counter()
    last, since = None, time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
            text = r.read().decode()
        state = tuple(line for line in text.splitlines()
                      if line.startswith(("prometheus_tsdb_blocks_loaded ", "prometheus_tsdb_compactions_total ")))
        if state != last:
            last, since = state, time.perf_counter()
        elif time.perf_counter() - since >= quiet_s:
            break
        time.sleep(1.0)
    return time.perf_counter() - t0


def timed(fn: Callable[[], pl.DataFrame], repeat: int) -> tuple[float, pl.DataFrame]:
    best, out = float("inf"), pl.DataFrame()
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:  # noqa: PLR0915 - one linear script
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--step", type=int, default=3600, help="seconds between samples")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    steps, start = args.days * 86400 // args.step, END - args.days * 86400
    window = dt.timedelta(days=args.days)
    hold = plan(args.gpus, args.days)
    work = Path(tempfile.mkdtemp(prefix="sources-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    moto = None
    try:
        t0 = time.perf_counter()
        build_store(work / "store.duckdb", hold, start, steps, args.step)
        t_store = time.perf_counter() - t0

        lines = sorted(text_lines(hold, start, steps, args.step, ms=False), key=lambda x: x[0])
        (work / "data.om").write_text("\n".join(x for _, x in lines) + "\n# EOF\n")
        t0 = time.perf_counter()
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(work / "data.om"),
                        str(work / "tsdb")], check=True, capture_output=True)
        t_prom = time.perf_counter() - t0
        pport = free_port()
        (work / "prom.yml").write_text("global: {}\n")
        procs.append(subprocess.Popen(["prometheus", f"--storage.tsdb.path={work / 'tsdb'}",
                                       f"--config.file={work / 'prom.yml'}", f"--web.listen-address=127.0.0.1:{pport}",
                                       "--storage.tsdb.retention.time=100y", "--log.level=warn"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(f"http://127.0.0.1:{pport}/-/ready", procs[-1])
        t_settle = settle_prometheus(f"http://127.0.0.1:{pport}")

        vport = free_port()
        procs.append(subprocess.Popen(["victoria-metrics", f"-storageDataPath={work / 'vm'}",
                                       f"-httpListenAddr=127.0.0.1:{vport}", "-retentionPeriod=100y",
                                       "-loggerLevel=ERROR", "-search.disableCache"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        vurl = f"http://127.0.0.1:{vport}"
        wait_http(vurl + "/health", procs[-1])
        body = "\n".join(x for _, x in text_lines(hold, start, steps, args.step, ms=True)).encode()
        t0 = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(vurl + "/api/v1/import/prometheus", data=body,
                                                           method="POST"), timeout=600):
            pass
        with urllib.request.urlopen(vurl + "/internal/force_flush", timeout=60):
            pass
        t_vm = time.perf_counter() - t0

        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        os.environ.update({"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "bench",
                           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"})
        boto3.client("s3").create_bucket(Bucket="rollups")
        con = open_readonly(work / "store.duckdb")
        t0 = time.perf_counter()
        export_parquet(con, "s3://rollups/fleet")
        t_s3 = time.perf_counter() - t0
        t0 = time.perf_counter()
        export_parquet(con, str(work / "parquet"))
        t_disk = time.perf_counter() - t0
        print(f"fleet: {args.gpus} GPUs x {args.days} days every {args.step}s ({steps} scrapes of "
              f"{(args.gpus + 7) // 8 + 1} targets); store via collector path {t_store:.1f}s, promtool backfill "
              f"{t_prom:.1f}s (+{t_settle:.0f}s until Prometheus finished compacting), VictoriaMetrics import "
              f"{t_vm:.1f}s, Parquet export S3 {t_s3:.1f}s / disk {t_disk:.1f}s")

        cat = load_catalog()
        sources: dict[str, Source] = {
            "duckdb": DuckDBSource(con),
            "prometheus": PrometheusSource(f"http://127.0.0.1:{pport}", scrape_interval_s=args.step),
            "victoriametrics": PrometheusSource(vurl, scrape_interval_s=args.step),
            "parquet-s3": ParquetSource("s3://rollups/fleet"),
            "parquet-disk": ParquetSource(str(work / "parquet")),
        }
        results: dict[str, tuple[float, pl.DataFrame]] = {}
        find_end: dict[str, float] = {}
        for name, src in sources.items():
            t0 = time.perf_counter()
            src.window(window)
            find_end[name] = time.perf_counter() - t0
            def report(s: Source = src) -> pl.DataFrame:
                return rep.cost_report(s, cat, window, "namespace")

            results[name] = timed(report, args.repeat)
        ref_t, ref = results["duckdb"]
        ref = ref.sort("namespace")
        print(f"{'source':<18}{'report (best of ' + str(args.repeat) + ')':>22}{'vs duckdb':>12}"
              f"{'of it: window':>15}{'total $':>14}{'GPU-hours':>14}  same numbers")
        all_same = True
        for name, (t, df) in results.items():
            df = df.sort("namespace")
            same = (df["namespace"].to_list() == ref["namespace"].to_list()
                    and df["total_cents"].to_list() == ref["total_cents"].to_list()
                    and all(abs(a - b) < 1e-6 for a, b in zip(df["gpu_hours"], ref["gpu_hours"], strict=True)))
            all_same &= same
            print(f"{name:<18}{t * 1000:>20,.0f}ms{t / ref_t:>11.1f}x{find_end[name] * 1000:>13,.0f}ms"
                  f"{df['total_cents'].sum() / 100:>14,.2f}"
                  f"{df['gpu_hours'].sum():>14,.1f}  {same}")
        print(f"same numbers from every source: {all_same}")
        return 0 if all_same else 1
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        if moto is not None:
            moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
