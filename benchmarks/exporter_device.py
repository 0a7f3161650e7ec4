"""The exporter on a real GPU, side by side with nvidia-smi (how nvidia_gpu_exporter collects).

Runs ``python -m gpufleet.exporters --backend nvml`` (or ``sim`` to rehearse without a GPU) as a
separate process on loopback, then:

  (a) scrapes /metrics (text and OpenMetrics), parses it with gpufleet's own parser and checks the
      values are real (GPU up, power, memory, temperature, clocks, driver version, GPM support);
  (b) runs a bf16 matmul loop with torch for ``--load-s`` seconds in another process and samples the
      GPM metrics (SM active, tensor active, DRAM active) before, during and after;
  (c) times ``--scrapes`` scrapes of /metrics against ``--smi-runs`` runs of
      ``nvidia-smi --query-gpu=<the same fields> --format=csv,noheader,nounits``; p50/p99, ratio,
      and the exporter's RSS.

Writes ``exporter_device.json``, ``metrics.prom`` and ``gpm_timeline.csv`` under ``--out``.

    python benchmarks/exporter_device.py --backend nvml --out "$OUT"
    python benchmarks/exporter_device.py --backend sim --out /tmp/exporter-bench --load-s 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from gpufleet.collectors.exposition import parse

SMI_FIELDS = [
    "index", "uuid", "name", "pci.bus_id", "driver_version", "utilization.gpu", "utilization.memory",
    "utilization.encoder", "utilization.decoder", "memory.total", "memory.used", "memory.free", "memory.reserved",
    "power.draw", "temperature.gpu", "temperature.memory", "clocks.sm", "clocks.mem", "clocks_event_reasons.active",
    "ecc.errors.corrected.volatile.total", "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.corrected.aggregate.total", "ecc.errors.uncorrected.aggregate.total",
    "remapped_rows.correctable", "remapped_rows.uncorrectable", "remapped_rows.pending", "remapped_rows.failure",
    "pcie.link.gen.current", "pcie.link.width.current",
]
WATCH = ["gpufleet_gpu_sm_active_ratio", "gpufleet_gpu_tensor_active_ratio", "gpufleet_gpu_dram_active_ratio",
         "gpufleet_gpu_sm_occupancy_ratio", "gpufleet_gpu_utilization_ratio", "gpufleet_gpu_power_watts",
         "gpufleet_gpu_sm_clock_hertz", "gpufleet_gpu_temperature_celsius"]
MATMUL = """
import sys, time, torch
n, secs = 8192, float(sys.argv[1])
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    a @ b
torch.cuda.synchronize()
t0 = time.perf_counter(); k = 0
print("LOAD_START", time.time(), flush=True)
while time.perf_counter() - t0 < secs:
    for _ in range(10):
        c = a @ b
    torch.cuda.synchronize(); k += 10
dt = time.perf_counter() - t0
print("LOAD_END", time.time(), k, f"{2 * n**3 * k / dt / 1e12:.0f}", flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Scraper:
    """Keeps one HTTP/1.1 connection to the exporter."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str, accept: str = "") -> tuple[int, bytes]:
        self.conn.request("GET", path, headers={"Accept": accept} if accept else {})
        r = self.conn.getresponse()
        return r.status, r.read()


def values(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    fam = parse(text).families.get(name)
    return [] if fam is None else [(dict(s.labels), s.value) for s in fam.samples]


def first(text: str, name: str, **match: str) -> float | None:
    for labels, v in values(text, name):
        if all(labels.get(k) == x for k, x in match.items()) and "mig_instance" not in labels:
            return v
    return None


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def check_real(text: str, om_text: str, backend: str) -> dict[str, object]:
    """Step (a): the values a real GPU must show."""
    checks: dict[str, object] = {}
    ups = values(text, "gpufleet_gpu_up")
    checks["gpus"] = len(ups)
    checks["all_up"] = bool(ups) and all(v == 1.0 for _, v in ups)
    g0 = {k: first(text, k, gpu="0") for k in (
        "gpufleet_gpu_power_watts", "gpufleet_gpu_memory_total_bytes", "gpufleet_gpu_memory_used_bytes",
        "gpufleet_gpu_temperature_celsius", "gpufleet_gpu_sm_clock_hertz", "gpufleet_gpu_memory_clock_hertz",
        "gpufleet_gpu_energy_joules_total", "gpufleet_gpu_gpm_supported", "gpufleet_gpu_utilization_ratio",
        "gpufleet_gpu_memory_temperature_celsius", "gpufleet_gpu_pcie_replays_total")}
    checks["gpu0"] = g0
    checks["power_ok"] = (g0["gpufleet_gpu_power_watts"] or 0) > 10
    checks["memory_ok"] = (g0["gpufleet_gpu_memory_total_bytes"] or 0) > 1e9
    checks["temperature_ok"] = 5 < (g0["gpufleet_gpu_temperature_celsius"] or 0) < 110
    checks["sm_clock_ok"] = (g0["gpufleet_gpu_sm_clock_hertz"] or 0) > 1e8
    checks["dcgm_power_equals_native"] = first(text, "DCGM_FI_DEV_POWER_USAGE", gpu="0") == \
        g0["gpufleet_gpu_power_watts"]
    build = values(text, "gpufleet_exporter_build_info")
    checks["driver_version"] = build[0][0].get("driver_version") if build else None
    checks["model"] = next((lab.get("gpu_model") for lab, _ in ups), None)
    checks["nvml_errors"] = {f"{lab['field']}/{lab['error']}": v
                             for lab, v in values(text, "gpufleet_exporter_nvml_errors_total")}
    om = parse(om_text)
    checks["openmetrics_parsed"] = om.openmetrics and not om.errors and om_text.rstrip().endswith("# EOF")
    checks["text_parse_errors"] = len(parse(text).errors)
    checks["families"] = len(parse(text).families)
    checks["samples"] = len(parse(text).samples)
    return checks


def gpm_phases(scraper: Scraper, load_s: float, backend: str, out: Path) -> dict[str, object]:
    """Step (b): GPM metrics before, during and after a bf16 matmul loop."""
    timeline: list[dict[str, float]] = []
    stop = threading.Event()

    def sample() -> None:
        s = Scraper(scraper.port)
        while not stop.is_set():
            _, body = s.get("/metrics?dialect=native")
            text = body.decode()
            row = {"t": time.time()}
            for name in WATCH:
                v = first(text, name, gpu="0")
                row[name] = float("nan") if v is None else v
            timeline.append(row)
            stop.wait(0.25)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    time.sleep(4.0)
    load = {"start": None, "end": None, "tflops": None}
    if backend == "nvml":
        proc = subprocess.run([sys.executable, "-c", MATMUL, str(load_s)], capture_output=True, text=True,
                              timeout=load_s + 120)
        for line in proc.stdout.splitlines():
            parts = line.split()
            if parts[0] == "LOAD_START":
                load["start"] = float(parts[1])
            elif parts[0] == "LOAD_END":
                load["end"], load["tflops"] = float(parts[1]), float(parts[3])
        if proc.returncode != 0:
            load["error"] = proc.stderr[-2000:]
    else:
        load["start"] = time.time()
        time.sleep(load_s)
        load["end"] = time.time()
    time.sleep(6.0)
    stop.set()
    t.join(10)
    with (out / "gpm_timeline.csv").open("w") as f:
        f.write(",".join(["t", *WATCH]) + "\n")
        for row in timeline:
            f.write(",".join(f"{row[k]:.6g}" for k in ["t", *WATCH]) + "\n")
    phases: dict[str, dict[str, float]] = {}
    if load["start"] is None or load["end"] is None:
        return {"load": load, "phases": phases}
    lag = 2.5  # the slow loop (1 s) plus the GPM window (0.5 s) plus a scrape: skip the edges
    windows = {"before": (-1e18, load["start"]), "during": (load["start"] + lag, load["end"]),
               "after": (load["end"] + lag, 1e18)}
    for phase, (lo, hi) in windows.items():
        rows = [r for r in timeline if lo <= r["t"] <= hi]
        phases[phase] = {k: statistics.fmean([r[k] for r in rows if r[k] == r[k]] or [float("nan")])
                         for k in WATCH}
        phases[phase]["n"] = len(rows)
    return {"load": load, "phases": phases}


def scrape_bench(scraper: Scraper, n: int) -> dict[str, float]:
    times = []
    for _ in range(5):
        scraper.get("/metrics")
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        status, body = scraper.get("/metrics")
        times.append(time.perf_counter() - t0)
        assert status == 200
        size = len(body)
    return {"n": n, "p50_ms": pct(times, 50) * 1e3, "p99_ms": pct(times, 99) * 1e3,
            "mean_ms": statistics.fmean(times) * 1e3, "bytes": size}


def smi_fields(smi: str) -> list[str]:
    ok = []
    for f in SMI_FIELDS:
        r = subprocess.run([smi, f"--query-gpu={f}", "--format=csv,noheader,nounits"], capture_output=True,
                           text=True, timeout=60)
        if r.returncode == 0:
            ok.append(f)
    return ok


def smi_bench(n: int) -> dict[str, object]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {"skipped": "nvidia-smi not found"}
    fields = smi_fields(smi)
    cmd = [smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"]
    times = []
    line = ""
    for _ in range(n):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        times.append(time.perf_counter() - t0)
        line = r.stdout.strip().splitlines()[0] if r.stdout.strip() else r.stderr.strip()
    return {"n": n, "fields": fields, "dropped": [f for f in SMI_FIELDS if f not in fields],
            "p50_ms": pct(times, 50) * 1e3, "p99_ms": pct(times, 99) * 1e3,
            "mean_ms": statistics.fmean(times) * 1e3, "sample_line": line}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["nvml", "sim"], default="nvml")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/exporter-bench")))
    ap.add_argument("--load-s", type=float, default=10.0)
    ap.add_argument("--scrapes", type=int, default=300)
    ap.add_argument("--smi-runs", type=int, default=30)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [sys.executable, "-m", "gpufleet.exporters", "--backend", args.backend, "--listen", f"127.0.0.1:{port}",
           "--fast-interval", "1", "--slow-interval", "1", "--gpm-interval", "0.5", "--process-memory",
           "--pod-resources-socket", "", "--xid-log", str(args.out / "xid.jsonl")]
    log = (args.out / "exporter.log").open("w")
    exporter = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    result: dict[str, object] = {"backend": args.backend, "command": " ".join(cmd),
                                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        deadline = time.time() + 60
        while True:
            try:
                s = Scraper(port)
                status, body = s.get("/healthz")
                if status == 200:
                    result["healthz"] = json.loads(body)
                    break
            except OSError:
                pass
            if time.time() > deadline or exporter.poll() is not None:
                raise SystemExit(f"exporter did not become healthy: {(args.out / 'exporter.log').read_text()}")
            time.sleep(0.2)
        time.sleep(2.5)  # let the slow loop (GPM) finish a pass
        _, body = s.get("/metrics")
        text = body.decode()
        (args.out / "metrics.prom").write_text(text)
        _, om_body = s.get("/metrics", "application/openmetrics-text; version=1.0.0")
        result["checks"] = check_real(text, om_body.decode(), args.backend)
        result["rss_idle_kib"] = rss_kib(exporter.pid)
        result["gpm"] = gpm_phases(s, args.load_s, args.backend, args.out)
        s = Scraper(port)
        result["exporter_scrape"] = scrape_bench(s, args.scrapes)
        result["rss_after_kib"] = rss_kib(exporter.pid)
        c0, t0 = cpu_seconds(exporter.pid), time.monotonic()
        time.sleep(10.0)
        result["idle_cpu_percent"] = 100 * (cpu_seconds(exporter.pid) - c0) / (time.monotonic() - t0)
        result["nvidia_smi"] = smi_bench(args.smi_runs)
        smi = result["nvidia_smi"]
        if isinstance(smi, dict) and "p50_ms" in smi:
            ex = result["exporter_scrape"]
            assert isinstance(ex, dict)
            result["ratio_p50"] = smi["p50_ms"] / ex["p50_ms"]
            result["ratio_p99"] = smi["p99_ms"] / ex["p99_ms"]
    finally:
        exporter.terminate()
        try:
            exporter.wait(10)
        except subprocess.TimeoutExpired:
            exporter.kill()
        log.close()
    (args.out / "exporter_device.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: result[k] for k in ("checks", "healthz") if k in result}, indent=1, default=str))
    gpm = result["gpm"]
    assert isinstance(gpm, dict)
    print("load:", gpm["load"])
    print(f"{'phase':<8}" + "".join(f"{n.replace('gpufleet_gpu_', ''):>26}" for n in WATCH))
    for phase, row in gpm["phases"].items():
        print(f"{phase:<8}" + "".join(f"{row[n]:>26.4g}" for n in WATCH) + f"  n={row['n']:.0f}")
    ex = result["exporter_scrape"]
    print("exporter scrape:", ex)
    print("nvidia-smi:", {k: v for k, v in dict(result["nvidia_smi"]).items() if k != "fields"})  # type: ignore[call-overload]
    print("ratio p50 / p99 (nvidia-smi over exporter):", result.get("ratio_p50"), result.get("ratio_p99"))
    print("exporter RSS KiB idle / after:", result["rss_idle_kib"], result["rss_after_kib"])
    print(f"exporter CPU while only sampling (fast 1 s, slow 1 s, GPM 0.5 s): {result['idle_cpu_percent']:.2f}% "
          "of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
