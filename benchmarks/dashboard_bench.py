"""Page render times of the Streamlit app in headless Chromium, first load and cached, beside the 2 s target.

Builds (or reuses) a simulated store through the real pipeline, serves the app on loopback and opens
every page twice: the first visit computes the page, the second is answered from the app's caches.

    python benchmarks/dashboard_bench.py --gpus 1000 --days 7 --step 3600 --db /tmp/bench.duckdb
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

from gpufleet.core.simfleet import FleetConfig
from gpufleet.dashboards.launch import command
from gpufleet.dashboards.shell import PAGES
from gpufleet.history import HistoryPlan, build_history

TARGET_S = 2.0
END = 1_767_830_400.0
CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(page: object, title: str) -> None:
    page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
        "document.querySelectorAll('[data-testid=\"stSpinner\"]').length === 0", timeout=120_000)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=1000)
    ap.add_argument("--days", type=float, default=7)
    ap.add_argument("--step", type=float, default=3600, help="seconds between scrapes of the simulated fleet")
    ap.add_argument("--db", type=Path, default=Path("/tmp/gpufleet-dashboard-bench.duckdb"))
    ap.add_argument("--range", default="all", help="time-range filter the pages are opened with")
    args = ap.parse_args()
    if not args.db.exists():
        t0 = time.perf_counter()
        build_history(args.db, FleetConfig(nodes=max(1, args.gpus // 8)),
                      HistoryPlan(days=args.days, step_s=args.step, end=END))
        print(f"built {args.db} ({args.gpus} GPUs, {args.days} d every {args.step:.0f} s) in "
              f"{time.perf_counter() - t0:.0f} s, {args.db.stat().st_size / 2**20:.0f} MiB", flush=True)
    from playwright.sync_api import sync_playwright

    port = _port()
    proc = subprocess.Popen(command(args.db, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "GPUFLEET_DB": ""})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM)
            warm = browser.new_page()  # first contact: loads the app's JavaScript and the store facts
            warm.goto(f"http://127.0.0.1:{port}/?range={args.range}")
            _ready(warm, "Fleet")
            warm.close()
            print(f"{'page':<12} {'first s':>8} {'cached s':>9} {'first/2s':>9} {'cached/2s':>10}")
            worst = 0.0
            for title, path, _module, _icon in PAGES:
                times = []
                for _ in range(2):
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    t0 = time.perf_counter()
                    page.goto(f"http://127.0.0.1:{port}/{path}?range={args.range}", wait_until="domcontentloaded")
                    _ready(page, title)
                    times.append(time.perf_counter() - t0)
                    page.close()
                worst = max(worst, *times)
                print(f"{title:<12} {times[0]:>8.2f} {times[1]:>9.2f} {times[0] / TARGET_S:>9.2f} "
                      f"{times[1] / TARGET_S:>10.2f}", flush=True)
            browser.close()
        print(f"worst page {worst:.2f} s = {worst / TARGET_S:.2f}x the {TARGET_S:.0f} s target")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
