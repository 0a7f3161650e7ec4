"""Page render times of the Streamlit app in headless Chromium, beside the 2 s target and a bare-Streamlit floor.

Builds (or reuses) a simulated store through the real pipeline, serves the app on loopback and times
every page three ways, on a freshly started server:

* in-app, first visit: one tab opens the last page, waits ``--pause`` seconds, then clicks through the
  pages in the sidebar, each visited for the first time in this server (the app starts warming every
  page's default view after the first page is drawn; ``--no-warm`` turns that off);
* in-app, cached: the same clicks again;
* fresh tab: each page opened in a new tab (downloads and boots Streamlit's frontend, opens a session).

A time ends when the server has reported the page's script run finished (Streamlit's ``script_finished``
message on the websocket) and the DOM has settled after it: the later of that message and the last DOM
change before 0.7 s of quiet (a MutationObserver installed at document start records the changes).

The same run serves a one-heading Streamlit page and opens it in fresh tabs: the floor any Streamlit page
pays on this machine. Ratios are to the 2 s target.

    python benchmarks/dashboard_bench.py --gpus 1000 --days 7 --step 3600 --db /tmp/bench.duckdb
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from gpufleet.core.simfleet import FleetConfig
from gpufleet.dashboards.launch import command
from gpufleet.dashboards.shell import PAGES
from gpufleet.history import HistoryPlan, build_history

TARGET_S = 2.0
END = 1_767_830_400.0
CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
BARE_APP = """import streamlit as st
st.set_page_config(layout="wide")
st.navigation([st.Page(lambda: st.header("Bare"), title="Bare", url_path="bare", default=True)]).run()
"""
IDLE_JS = ("() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
           "document.querySelectorAll('[data-testid=\"stSpinner\"]').length === 0")
# Installed in every page at document start: the time (ms since navigation) of the newest DOM change.
OBSERVER_JS = """
window.__lastChange = 0;
new MutationObserver(() => { window.__lastChange = performance.now(); })
  .observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""
QUIET_MS = 700


def _settled(page: Any) -> float:
    """Wait until the DOM has not changed for QUIET_MS; return the time of its last change (ms since navigation)."""
    page.wait_for_function(f"() => performance.now() - window.__lastChange > {QUIET_MS}", timeout=120_000,
                           polling=100)
    return float(page.evaluate("window.__lastChange"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(cmd: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise TimeoutError(f"streamlit on port {port} did not come up")


def _ready(page: Any, title: str) -> None:
    page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
    page.wait_for_function(IDLE_JS, timeout=120_000)


class Page:
    """A browser tab that records when the server reports each script run finished (ForwardMsg over the socket)."""

    def __init__(self, browser: Any) -> None:
        self.tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.tab.add_init_script(OBSERVER_JS)
        self.finished: list[float] = []
        self.tab.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload: Any) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: TID251 - decodes the wire protocol only

        if isinstance(payload, bytes | bytearray):
            try:
                if ForwardMsg.FromString(bytes(payload)).WhichOneof("type") == "script_finished":
                    self.finished.append(time.perf_counter())
            except Exception:  # noqa: BLE001 - other frames are not ours to judge
                return

    def rendered_since(self, t0: float, js_t0: float, title: str) -> float:
        """Seconds from ``t0`` until the script run finished and the DOM settled after it."""
        deadline = time.monotonic() + 120
        while not [t for t in self.finished if t > t0]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{title}: no script run finished within 120 s")
            self.tab.wait_for_timeout(50)
        _ready(self.tab, title)
        last_js = _settled(self.tab)
        done = max(t for t in self.finished if t > t0)
        return max(done - t0, (last_js - js_t0) / 1000)


def _fresh_tab(browser: Any, url: str, title: str) -> float:
    """Seconds from navigation start until the page's script run finished and its DOM settled."""
    page = Page(browser)
    t0 = time.perf_counter()
    page.tab.goto(url, wait_until="domcontentloaded")
    dt = page.rendered_since(t0, 0.0, title)
    page.tab.close()
    return dt


def _click_through(page: Page) -> list[float]:
    """Click every page's sidebar link in turn; seconds until its script run finished and its DOM settled."""
    out = []
    for title, _path, _module, _icon in PAGES:
        link = page.tab.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title).first
        _settled(page.tab)
        js_t0 = float(page.tab.evaluate("performance.now()"))
        t0 = time.perf_counter()
        link.click()
        out.append(page.rendered_since(t0, js_t0, title))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=1000)
    ap.add_argument("--days", type=float, default=7)
    ap.add_argument("--step", type=float, default=3600, help="seconds between scrapes of the simulated fleet")
    ap.add_argument("--db", type=Path, default=Path("/tmp/gpufleet-dashboard-bench.duckdb"))
    ap.add_argument("--range", default="all", help="time-range filter the pages are opened with")
    ap.add_argument("--no-warm", action="store_true", help="turn off the app's warm-up of every page's view")
    ap.add_argument("--pause", type=float, default=0.0,
                    help="seconds to wait after the session opens before clicking (a reader on the first page)")
    args = ap.parse_args()
    if not args.db.exists():
        t0 = time.perf_counter()
        build_history(args.db, FleetConfig(nodes=max(1, args.gpus // 8)),
                      HistoryPlan(days=args.days, step_s=args.step, end=END))
        print(f"built {args.db} ({args.gpus} GPUs, {args.days} d every {args.step:.0f} s) in "
              f"{time.perf_counter() - t0:.0f} s, {args.db.stat().st_size / 2**20:.0f} MiB", flush=True)
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "GPUFLEET_DB": "", "GPUFLEET_DASHBOARD_WARM": "0" if args.no_warm else "1"}
    port, bare_port = _port(), _port()
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE_APP)
        bare_cmd = [sys.executable, "-m", "streamlit", "run", str(bare), "--server.port", str(bare_port),
                    "--server.address", "127.0.0.1", "--server.headless", "true",
                    "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
        procs = [_serve(command(args.db, port), port, env), _serve(bare_cmd, bare_port, env)]
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM)
                base = f"http://127.0.0.1:{port}"
                tab = Page(browser)
                t0 = time.perf_counter()
                tab.tab.goto(f"{base}/{PAGES[-1][1]}?range={args.range}", wait_until="domcontentloaded")
                opened = tab.rendered_since(t0, 0.0, PAGES[-1][0])
                time.sleep(args.pause)
                first = _click_through(tab)
                cached = _click_through(tab)
                tab.tab.close()
                fresh = [_fresh_tab(browser, f"{base}/{path}?range={args.range}", title)
                         for title, path, _m, _i in PAGES]
                floor = [_fresh_tab(browser, f"http://127.0.0.1:{bare_port}/bare", "Bare") for _ in range(3)]
                browser.close()
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=10)
    print(f"session opened on {PAGES[-1][0]} in {opened:.2f} s (warm-up {'off' if args.no_warm else 'on'}, "
          f"then {args.pause:g} s before the first click)")
    print(f"{'page':<12} {'in-app first s':>15} {'in-app cached s':>16} {'fresh tab s':>12} "
          f"{'first/2s':>9} {'cached/2s':>10} {'fresh/2s':>9}")
    for (title, *_), a, b, c in zip(PAGES, first, cached, fresh, strict=True):
        print(f"{title:<12} {a:>15.2f} {b:>16.2f} {c:>12.2f} {a / TARGET_S:>9.2f} {b / TARGET_S:>10.2f} "
              f"{c / TARGET_S:>9.2f}")
    med = statistics.median(floor)
    print(f"bare Streamlit page, fresh tab: median {med:.2f} s of {', '.join(f'{x:.2f}' for x in floor)} "
          f"= {med / TARGET_S:.2f}x the target")
    print(f"worst in-app first {max(first):.2f} s, in-app cached {max(cached):.2f} s, fresh tab {max(fresh):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
