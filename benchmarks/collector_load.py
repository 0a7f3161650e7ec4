"""Collector load: N loopback targets of ~2,000 samples each, scraped at an interval, beside Prometheus.

The targets (benchmarks/collector_targets.py: simulated GPU nodes and vLLM engines) run in
processes of their own. First gpufleet's scrape engine (the one ``gpufleet collect`` runs, with
its DuckDB writer) scrapes them in this process for ``--warmup`` seconds (every target's first
scrape is a full parse and creates its series) and then ``--duration`` seconds, the measured
window; then, unless ``--no-peer``, Debian's ``prometheus`` scrapes the same targets for the same
times. Prints a timeline, then over the window: CPU (cores, all threads, and split by thread),
peak RSS, scrape lag (how late each scrape started against its schedule), scrapes done and due,
missed and failed scrapes and samples/s of each, the warm-up's own figures, and the ratios.

Scaled run for a small machine:  python benchmarks/collector_load.py --targets 200 --duration 60
Full run, one collector at a time:
    python benchmarks/collector_load.py --targets 1000 --warmup 120 --duration 300 --only gpufleet \
        --collector-cpu 1 --target-cpus 2-15 --target-procs 8
    python benchmarks/collector_load.py --targets 1000 --warmup 60 --duration 300 --only prometheus \
        --collector-cpu 1 --target-cpus 2-15 --target-procs 8

``--collector-cpu`` pins the collector (gpufleet's process, then Prometheus) to one core and
``--target-cpus`` the target processes to others, so the collector's CPU is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from gpufleet.collectors.column_writer import ColumnWriter
from gpufleet.collectors.config import CollectorConfig
from gpufleet.collectors.scrape import ScrapeEngine

HERE = Path(__file__).resolve().parent


def rss_mib(pid: int | str = "self") -> float:
    """Resident memory of a process now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _stat_cpu_s(stat: Path) -> float:
    """User + system CPU seconds in a ``/proc`` ``stat`` file (of a process or of one of its threads)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    return _stat_cpu_s(Path(f"/proc/{pid}/stat"))


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds of this process's threads so far, by role: event loop, parse thread, writer, other."""
    roles = {threading.main_thread().native_id: "event_loop"}
    for t in threading.enumerate():
        if t.native_id is not None and t.native_id not in roles:
            roles[t.native_id] = ("parse" if t.name.startswith("gpufleet-parse")
                                  else "writer" if t.name.startswith("asyncio") else "other")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            used = _stat_cpu_s(task / "stat")
        except OSError:  # the thread ended
            continue
        role = roles.get(int(task.name), "other")  # DuckDB's own threads are "other"
        out[role] = out.get(role, 0.0) + used
    return out


def cpu_set(text: str) -> set[int]:
    """``1``, ``2-15`` or ``2,4-7`` as a set of CPU numbers."""
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def start_targets(n: int, tmp: Path, procs: int = 1,
                  cpus: set[int] | None = None) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """``procs`` target processes (pinned to ``cpus``) serving ``n`` targets; the targets' ports in order."""
    files = [tmp / f"ports{k}.txt" for k in range(procs)]

    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    servers = [subprocess.Popen([sys.executable, str(HERE / "collector_targets.py"), "--targets", str(n),
                                 "--shard", str(k), "--shards", str(procs), "--ports-file", str(files[k])],
                                preexec_fn=pin) for k in range(procs)]
    deadline = time.monotonic() + 180
    while not all(f.exists() for f in files):
        if any(p.poll() is not None for p in servers) or time.monotonic() > deadline:
            raise SystemExit("the target servers did not start")
        time.sleep(0.2)
    shard_ports = [[int(p) for p in f.read_text().split()] for f in files]
    return servers, [shard_ports[i % procs][i // procs] for i in range(n)]


def run_gpufleet(ports: list[int], tmp: Path, interval: float, duration: float, flush: float,
                 warmup: float) -> dict[str, float]:
    """Scrape for ``warmup + duration`` seconds; figures over the ``duration`` after the warm-up, and of the warm-up."""
    cfg = CollectorConfig.model_validate({
        "store": str(tmp / "fleet.duckdb"),
        "defaults": {"interval": f"{interval:g}s", "timeout": f"{min(interval, 10):g}s"},
        "flush_interval": f"{flush:g}s",
        "jobs": [{"name": "load", "static": [{"targets": [f"127.0.0.1:{p}" for p in ports]}]}],
    })
    writer = ColumnWriter(cfg.store)
    engine = ScrapeEngine(cfg, writer)
    marks: dict[str, float] = {}
    rss: list[float] = []
    t0 = time.monotonic()
    last_print = [t0]
    last: dict[str, float] = {}

    def snapshot(e: ScrapeEngine) -> dict[str, float]:
        s = e.stats
        threads = {f"cpu_{role}": v for role, v in thread_cpu_s().items()}
        return {"cpu": cpu_s(), "t": time.monotonic(), "samples": s.samples, "lags": len(s.lags),
                "scrapes": s.scrapes, "missed": s.missed, "failed": s.failures, "replayed": s.replayed, **threads}

    def tick(e: ScrapeEngine) -> None:
        rss.append(rss_mib())
        now = time.monotonic()
        if "t" not in marks and now - t0 >= warmup:
            marks.update(snapshot(e))
        elif "t" in marks:
            last.update(snapshot(e))  # the window ends at the last tick, before the engine shuts down
        if now - last_print[0] >= 15:  # a timeline, so the warm-up's length shows
            last_print[0] = now
            s = e.stats
            print(f"  t={now - t0:5.0f}s scrapes {s.scrapes} replayed {s.replayed} missed {s.missed} "
                  f"failed {s.failures} CPU {cpu_s():.0f}s RSS {rss[-1]:.0f} MiB", flush=True)

    stats = asyncio.run(engine.run(warmup + duration, on_tick=tick))
    end = last or snapshot(engine)
    writer.close()
    lags = stats.lags[int(marks.get("lags", 0)):int(end["lags"])] or stats.lags
    span = end["t"] - marks.get("t", t0)
    return {
        "cpu_cores": (end["cpu"] - marks.get("cpu", 0.0)) / span,
        "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_end_mib": rss[-1] if rss else rss_mib(),
        "window_s": span,
        "scrapes": end["scrapes"] - marks.get("scrapes", 0),
        "scrapes_due": len(ports) * span / interval,
        "replayed": end["replayed"] - marks.get("replayed", 0),
        "failed": end["failed"] - marks.get("failed", 0),
        "missed": end["missed"] - marks.get("missed", 0),
        "warmup_scrapes": marks.get("scrapes", 0),
        "warmup_missed": marks.get("missed", 0),
        "warmup_failed": marks.get("failed", 0),
        "warmup_cpu_s": marks.get("cpu", 0.0),
        "lag_p50_ms": statistics.median(lags) * 1e3 if lags else 0.0,
        "lag_p99_ms": sorted(lags)[int(0.99 * (len(lags) - 1))] * 1e3 if lags else 0.0,
        "lag_max_ms": max(lags) * 1e3 if lags else 0.0,
        "samples_per_s": (end["samples"] - marks.get("samples", 0)) / span,
        "written_samples": stats.written.samples,
        **{f"{k}_cores": (end[k] - marks.get(k, 0.0)) / span for k in end if k.startswith("cpu_")},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prom_metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def _prom_up_zero(url: str) -> float:
    """How many targets Prometheus holds as down now."""
    query = urllib.parse.urlencode({"query": "count(up == 0) or vector(0)"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=10) as resp:
        return float(json.loads(resp.read())["data"]["result"][0]["value"][1])


def _prom_interval_p99(url: str) -> float:
    """Prometheus' own p99 of the time between two scrapes of a target, seconds."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("prometheus_target_interval_length_seconds{") and 'quantile="0.99"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def run_prometheus(ports: list[int], tmp: Path, interval: float, duration: float,
                   warmup: float) -> dict[str, float]:
    port = _free_port()
    cfg = tmp / "prometheus.yml"
    cfg.write_text(json.dumps({"global": {"scrape_interval": f"{interval:g}s",
                                          "scrape_timeout": f"{min(interval, 10):g}s"},
                               "scrape_configs": [{"job_name": "load", "static_configs": [
                                   {"targets": [f"127.0.0.1:{p}" for p in ports]}]}]}))
    proc = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'prom'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(warmup)  # as for gpufleet
        cpu0, t0 = cpu_s(proc.pid), time.monotonic()
        appended0 = _prom_metric(url, "prometheus_tsdb_head_samples_appended_total")
        peak = 0.0
        while time.monotonic() - t0 < duration:
            time.sleep(1.0)
            peak = max(peak, rss_mib(proc.pid))
        cpu1, t1 = cpu_s(proc.pid), time.monotonic()
        appended = _prom_metric(url, "prometheus_tsdb_head_samples_appended_total") - appended0
        return {"cpu_cores": (cpu1 - cpu0) / (t1 - t0), "rss_peak_mib": peak, "samples_per_s": appended / (t1 - t0),
                "targets_down": _prom_up_zero(url), "interval_p99_s": _prom_interval_p99(url)}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> int:
    """Run both collectors against the same targets and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--interval", type=float, default=15.0)
    ap.add_argument("--duration", type=float, default=60.0, help="The measured window, after the warm-up.")
    ap.add_argument("--warmup", type=float, help="Seconds before the measured window (default: one interval); "
                    "every target's first scrape is a full parse and its first write creates its series.")
    ap.add_argument("--flush", type=float, default=5.0,
                    help="gpufleet's flush_interval: more batches per transaction cost less each, and a crash "
                         "loses at most this many seconds of scrapes.")
    ap.add_argument("--no-peer", action="store_true", help="Skip the Prometheus run.")
    ap.add_argument("--only", choices=("gpufleet", "prometheus"), help="Run one collector alone.")
    ap.add_argument("--target-procs", type=int, default=1, help="Processes serving the targets.")
    ap.add_argument("--collector-cpu", type=int, help="Pin the collector under test to this CPU.")
    ap.add_argument("--target-cpus", type=cpu_set, help="Pin the target processes to these CPUs (e.g. 2-15).")
    ap.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = ap.parse_args()
    ours: dict[str, float] | None = None
    theirs: dict[str, float] | None = None
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        servers, ports = start_targets(args.targets, tmp, args.target_procs, args.target_cpus)
        if args.collector_cpu is not None:
            os.sched_setaffinity(0, {args.collector_cpu})  # Prometheus, started from here, inherits it
        try:
            if args.only != "prometheus":
                ours = run_gpufleet(ports, tmp, args.interval, args.duration, args.flush,
                                    args.interval if args.warmup is None else args.warmup)
            if not args.no_peer and args.only != "gpufleet":
                theirs = run_prometheus(ports, tmp, args.interval, args.duration,
                                        args.interval if args.warmup is None else args.warmup)
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
    expected = args.targets * args.duration / args.interval
    print(f"{args.targets} targets x ~2,000 samples every {args.interval:g} s for {args.duration:g} s "
          f"(~{expected:,.0f} scrapes due) after a warm-up of {args.warmup or args.interval:g} s; "
          f"gpufleet flushes every {args.flush:g} s; "
          f"collector CPU {args.collector_cpu if args.collector_cpu is not None else 'any'}, "
          f"{os.cpu_count()} CPUs")
    if args.json is not None:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "gpufleet": ours, "prometheus": theirs}, indent=1))
    if ours is not None:
        print(f"gpufleet:   CPU {ours['cpu_cores']:.2f} cores, RSS peak {ours['rss_peak_mib']:.0f} MiB, "
              f"{ours['samples_per_s']:,.0f} samples/s, scrapes {ours['scrapes']:.0f} of "
              f"~{ours['scrapes_due']:,.0f} due in {ours['window_s']:.0f} s "
              f"(replayed {ours['replayed']:.0f}, failed {ours['failed']:.0f}, missed {ours['missed']:.0f}), "
              f"lag p50 {ours['lag_p50_ms']:.1f} ms p99 {ours['lag_p99_ms']:.1f} ms max {ours['lag_max_ms']:.1f} ms, "
              f"{ours['written_samples']:,.0f} samples written in all")
        by_thread = {k[4:-6]: v for k, v in ours.items() if k.startswith("cpu_") and k.endswith("_cores")}
        print("  CPU by thread: " + ", ".join(f"{k} {v:.2f}" for k, v in by_thread.items() if k) + " cores")
        print(f"  warm-up: {ours['warmup_scrapes']:.0f} scrapes, {ours['warmup_missed']:.0f} missed, "
              f"{ours['warmup_failed']:.0f} failed, {ours['warmup_cpu_s']:.0f} CPU-s")
    if theirs is not None:
        print(f"prometheus: CPU {theirs['cpu_cores']:.2f} cores, RSS peak {theirs['rss_peak_mib']:.0f} MiB, "
              f"{theirs['samples_per_s']:,.0f} samples/s, targets down at the end {theirs['targets_down']:.0f}, "
              f"p99 time between scrapes {theirs['interval_p99_s']:.3f} s")
    if ours is not None and theirs is not None:
        print(f"ratio gpufleet/prometheus: CPU {ours['cpu_cores'] / max(theirs['cpu_cores'], 1e-9):.1f}x, "
              f"RSS {ours['rss_peak_mib'] / max(theirs['rss_peak_mib'], 1e-9):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
