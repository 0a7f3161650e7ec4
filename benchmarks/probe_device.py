#!/usr/bin/env python3
"""Probe suite on a GPU machine: repeatability, full suite, a contended run, NCCL; prints a summary table.

    python3 benchmarks/probe_device.py all --out DIR [--repeats 5]   # quick x5, full x1, contended, busy check
    python3 benchmarks/probe_device.py nccl --out DIR                # quick on every GPU + NCCL size sweep
    python3 benchmarks/probe_device.py once --suite quick --out FILE [--force]

Works from a plain checkout (no install): it links the repository's folders into a ``gpufleet``
package under /tmp when ``gpufleet.probes`` is not importable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bootstrap() -> None:
    try:
        import gpufleet.probes  # noqa: F401
        return
    except ImportError:
        for name in [m for m in sys.modules if m == "gpufleet" or m.startswith("gpufleet.")]:
            del sys.modules[name]
    pkg = Path("/tmp/gpufleet_pkg/gpufleet")
    pkg.mkdir(parents=True, exist_ok=True)
    for f in (ROOT / "cli").iterdir():
        if not (pkg / f.name).exists():
            (pkg / f.name).symlink_to(f)
    for part in ("core", "probes", "collectors"):
        if not (pkg / part).exists():
            (pkg / part).symlink_to(ROOT / part)
    sys.path.insert(0, str(pkg.parent))
    os.environ["PYTHONPATH"] = str(pkg.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")


_bootstrap()

from gpufleet.probes.exposition import render_results  # noqa: E402
from gpufleet.probes.prices import price_lookup  # noqa: E402
from gpufleet.probes.results import ProbeRun, dump_results, load_results  # noqa: E402
from gpufleet.probes.stats import median  # noqa: E402
from gpufleet.probes.verdict import judge  # noqa: E402


def once(suite: str, out: Path, force: bool, nccl: bool) -> ProbeRun:
    from gpufleet.probes.runner import run_suite

    t0 = time.perf_counter()
    def say(msg: str) -> None:
        print(f"  [{time.perf_counter() - t0:5.1f}s] {msg}", flush=True)

    run = run_suite(suite, force=force, nccl=nccl, on_progress=say)
    run.verdicts = judge(run.gpus, price_lookup())
    dump_results(run, out)
    out.with_suffix(".prom").write_text(render_results(run))
    return run


def hog(seconds: float, ready: Path) -> None:
    """Keep the GPU busy with bf16 matrix products (the contended run's other process)."""
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    ready.write_text("ready")
    end = time.time() + seconds
    while time.time() < end:
        for _ in range(20):
            a @ b
        torch.cuda.synchronize()


def _sub(args: list[str], log: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(args)}\n")
        fh.flush()
        rc = subprocess.call([sys.executable, __file__, *args], stdout=fh, stderr=subprocess.STDOUT)
    return rc, time.perf_counter() - t0


def _row(run: ProbeRun) -> dict[str, float]:
    return {m.key: m.value for g in run.gpus[:1] for m in g.measurements if m.ok}


def all_runs(out: Path, repeats: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    summary: dict[str, object] = {"env": _env()}
    walls = []
    for i in range(repeats):
        rc, wall = _sub(["once", "--suite", "quick", "--out", str(out / f"quick{i}.json"), "--no-nccl"], log)
        walls.append(wall)
        print(f"quick run {i}: rc={rc} wall={wall:.1f}s", flush=True)
    rc, wall = _sub(["once", "--suite", "full", "--out", str(out / "full.json"), "--no-nccl"], log)
    print(f"full run: rc={rc} wall={wall:.1f}s", flush=True)
    summary["full_wall_s"] = wall
    # contended: another process computes on the GPU during the probe
    ready = Path("/tmp/hog.ready")
    ready.unlink(missing_ok=True)
    hog_proc = subprocess.Popen([sys.executable, __file__, "hog", "--seconds", "120", "--ready", str(ready)])
    try:
        for _ in range(120):
            if ready.exists():
                break
            time.sleep(0.5)
        rc_busy, _ = _sub(["once", "--suite", "quick", "--out", str(out / "busy.json"), "--no-nccl"], log)
        rc_c, wall_c = _sub(["once", "--suite", "quick", "--out", str(out / "contended.json"), "--no-nccl",
                             "--force"], log)
    finally:
        hog_proc.terminate()
        hog_proc.wait(timeout=30)
    summary["busy_refused"] = rc_busy != 0 and not (out / "busy.json").exists()
    print(f"busy GPU without --force: rc={rc_busy} (refused: {summary['busy_refused']}); contended run rc={rc_c}")
    quick = [load_results(out / f"quick{i}.json") for i in range(repeats) if (out / f"quick{i}.json").exists()]
    rows = [_row(r) for r in quick]
    keys = sorted(set().union(*rows)) if rows else []
    table = {}
    peaks = {m.key: m.peak for g in quick[0].gpus[:1] for m in g.measurements} if quick else {}
    print(f"\n{'probe':24} {'median':>14} {'% peak':>7} {'run spread':>10}  per run")
    for k in keys:
        vals = [r[k] for r in rows if k in r]
        med = median(vals)
        spread = (max(vals) - min(vals)) / med
        pk = peaks.get(k)
        table[k] = {"values": vals, "median": med, "spread_ratio": spread, "peak": pk}
        scale = 1e12 if k.startswith(("matmul", "hbm")) else 1e9
        print(f"{k:24} {med / scale:14.2f} {(med / pk if pk else 0):7.1%} {spread:10.2%}  "
              + " ".join(f"{v / scale:.2f}" for v in vals))
    summary["quick"] = table
    summary["quick_wall_s"] = walls
    summary["quick_gpu_s"] = [g.duration_s for r in quick for g in r.gpus]
    print(f"quick wall per run (s): {' '.join(f'{w:.1f}' for w in walls)}; suite time on GPU (s): "
          f"{' '.join(f'{d:.1f}' for d in summary['quick_gpu_s'])}")  # type: ignore[union-attr]
    if (out / "full.json").exists():
        full = load_results(out / "full.json")
        print("\nfull suite:")
        for g in full.gpus:
            for m in g.measurements:
                pr = f"{m.peak_ratio:.1%}" if m.peak_ratio else "-"
                shapes = " ".join(f"{s['n']}:{s['flops'] / 1e12:.0f}" for s in m.detail.get("shapes", []))
                print(f"  {m.key:24} {m.value:.4g} {pr:>6} spread {m.spread_ratio:.2%} ok={m.ok} {shapes}")
            print(f"  duration {g.duration_s:.1f}s")
        summary["full_verdicts"] = [v.verdict for v in full.verdicts]
        summary["full_notes"] = full.host.get("notes")
    for name in ("contended", "quick0", "full"):
        p = out / f"{name}.json"
        if p.exists():
            r = load_results(p)
            for v in r.verdicts:
                print(f"{name}: verdict {v.verdict} lost {v.lost_ratio:.0%} ${v.lost_usd_per_day}/day: "
                      f"{'; '.join(v.reasons)}")
            summary[f"{name}_verdict"] = [(v.verdict, v.reasons) for v in r.verdicts]
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))


def nccl_runs(out: Path) -> None:
    import torch

    from gpufleet.probes.kernels.nccl import nccl_probe
    from gpufleet.probes.runner import SUITES

    out.mkdir(parents=True, exist_ok=True)
    env = _env()
    print(json.dumps(env, indent=1))
    t0 = time.perf_counter()
    run = once("quick", out / "quick.json", force=False, nccl=False)
    print(f"quick suite on {len(run.gpus)} GPUs: {time.perf_counter() - t0:.1f}s")
    for g in run.gpus:
        print(g.index, g.gpu_model, {m.key: f"{m.value:.4g}" for m in g.measurements}, g.duration_s)
    world = torch.cuda.device_count()
    t0 = time.perf_counter()
    rows = nccl_probe(world, SUITES["full"].nccl_sizes, iters=20, trials=5)
    print(f"nccl sweep over {world} GPUs: {time.perf_counter() - t0:.1f}s")
    print(f"{'collective':15} {'size':>10} {'time us':>10} {'algbw GB/s':>11} {'busbw GB/s':>11} ok spread")
    for r in rows:
        print(f"{r['collective']:15} {r['size_bytes'] >> 20:>8}Mi {r['time_s'] * 1e6:10.1f} {r['algbw'] / 1e9:11.1f} "
              f"{r['busbw'] / 1e9:11.1f} {r['correct']} {r['spread_ratio']:.2%}")
    (out / "nccl.json").write_text(json.dumps({"env": env, "rows": rows}, indent=1))


def _env() -> dict[str, str]:
    import torch

    q = "name,driver_version,pcie.link.gen.max,pcie.link.width.max,clocks.max.sm,clocks.max.mem,power.limit"
    try:
        smi = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
        topo = subprocess.run(["nvidia-smi", "topo", "-m"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        smi, topo = str(exc), ""
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "torch": torch.__version__,
            "cuda": str(torch.version.cuda), "nvidia_smi": smi, "topo": topo}


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("all")
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--repeats", type=int, default=5)
    n = sub.add_parser("nccl")
    n.add_argument("--out", type=Path, required=True)
    o = sub.add_parser("once")
    o.add_argument("--suite", default="quick")
    o.add_argument("--out", type=Path, required=True)
    o.add_argument("--force", action="store_true")
    o.add_argument("--no-nccl", action="store_true")
    h = sub.add_parser("hog")
    h.add_argument("--seconds", type=float, default=120)
    h.add_argument("--ready", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "all":
        all_runs(args.out, args.repeats)
    elif args.cmd == "nccl":
        nccl_runs(args.out)
    elif args.cmd == "hog":
        hog(args.seconds, args.ready)
    else:
        from gpufleet.probes.runner import GpuBusy

        try:
            run = once(args.suite, args.out, args.force, not args.no_nccl)
        except GpuBusy as exc:
            print(f"refused: {exc}")
            sys.exit(3)
        for g in run.gpus:
            print(g.index, g.gpu_model, g.other_processes, f"{g.duration_s:.1f}s",
                  {m.key: f"{m.value:.4g}" for m in g.measurements})
        print(run.host.get("notes"))


if __name__ == "__main__":
    main()
