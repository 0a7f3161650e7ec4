"""Page render times of the Streamlit app in headless Chromium, beside the 2 s target and Streamlit's own floors.

Builds (or reuses) a simulated store through the real pipeline, serves the app on loopback the way
``gpufleet dashboard`` does (the server warms every page's default view of the ``--warm`` ranges when it
starts; the run waits for the server to log ``warm-up done``) and times every page four ways:

* in-app, first visit: a returning user's browser (a Chromium profile on disk that visited the app before, on
  an earlier server at the same address, so Streamlit's hashed JavaScript bundles are in its HTTP cache)
  opens the last page, waits ``--pause`` seconds, then clicks through the pages in the sidebar, each
  visited for the first time in this server;
* in-app, cached: the same clicks again;
* fresh tab, returning browser: each page opened in a new tab of that profile (Streamlit's frontend boots
  again and opens a new session; its bundles come from the browser's cache);
* fresh tab, cold browser: each page opened in a brand-new browser context with an empty cache (a
  first-ever visit: every bundle is downloaded and compiled), ``--cold-reps`` times per page, round-robin
  over the pages and the bare Streamlit page; the median and the slowest are printed.

A time ends when the server has reported the page's script run finished (Streamlit's ``script_finished``
message on the websocket) and the DOM has settled after it: the later of that message and the last DOM
change before 0.7 s of quiet with no element placeholder (skeleton) left on the page (a MutationObserver
installed at document start records the changes). The
server's part (until ``script_finished``) is printed beside each in-app first visit.

The same run serves floor pages, each a heading and at most one element (none; a Vega-Lite bar chart; a Plotly
bar chart; a ``st.dataframe`` data grid; a ``st.table``), and opens each in fresh tabs of the returning
browser (the bare one also of a cold browser): what any Streamlit page, and each kind of element, costs a new
tab on this machine. Ratios are to the 2 s target.

    python benchmarks/dashboard_bench.py --gpus 1000 --days 30 --step 3600 --db /tmp/bench1000x30.duckdb
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
from gpufleet.dashboards.context import CHARTS, DEFAULT_CHARTS, PAGES
from gpufleet.dashboards.launch import command, options, stop
from gpufleet.history import HistoryPlan, build_history

TARGET_S = 2.0
END = 1_767_830_400.0
CHROMIUM = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 1000}
FLOOR_APP = """import importlib.util
import pandas as pd
import streamlit as st

st.set_page_config(layout="wide")
DATA = pd.DataFrame({"group": ["a", "b", "c"], "value": [1.0, 2.0, 3.0]})


def bare():
    st.header("Bare")


def vega():
    st.header("Vega")
    st.bar_chart(DATA, x="group", y="value", horizontal=True, height=200)


def plotly():
    import plotly.express as px

    st.header("Plotly")
    st.plotly_chart(px.bar(DATA, x="value", y="group", orientation="h", height=200))


def grid():
    st.header("Grid")
    st.dataframe(DATA)


def table():
    st.header("Table")
    st.table(DATA)


pages = [st.Page(bare, title="Bare", url_path="bare", default=True), st.Page(vega, title="Vega", url_path="vega"),
         st.Page(grid, title="Grid", url_path="grid"), st.Page(table, title="Table", url_path="table")]
if importlib.util.find_spec("plotly") is not None:
    pages.append(st.Page(plotly, title="Plotly", url_path="plotly"))
st.navigation(pages).run()
"""
# (heading, address below the floor app's root, what the page holds); the default page lives at the root
FLOORS = (("Bare", "", "a heading"), ("Vega", "vega", "+ one Vega-Lite bar chart"),
          ("Plotly", "plotly", "+ one Plotly bar chart"), ("Grid", "grid", "+ one st.dataframe (data grid)"),
          ("Table", "table", "+ one st.table"))
IDLE_JS = ("() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
           "document.querySelectorAll('[data-testid=\"stSpinner\"]').length === 0")
# Installed in every page at document start: the time (ms since navigation) of the newest DOM change.
OBSERVER_JS = """
window.__lastChange = 0;
new MutationObserver(() => { window.__lastChange = performance.now(); })
  .observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""
QUIET_MS = 700
SKELETON = '[data-testid^="stSkeleton"]'  # Streamlit's placeholder of an element whose code is still loading


def _settled(page: Any) -> float:
    """Wait until no element shows its placeholder and the DOM has not changed for QUIET_MS.

    Returns the time of the last change (ms since navigation). Streamlit draws a skeleton in place of each
    element until that element's code has loaded; a page can sit still behind skeletons for over a second.
    """
    page.wait_for_function(f"() => !document.querySelector({SKELETON!r}) && "
                           f"performance.now() - window.__lastChange > {QUIET_MS}", timeout=120_000, polling=100)
    return float(page.evaluate("window.__lastChange"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(cmd: list[str], port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} (log: {log})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    stop(proc)
    raise TimeoutError(f"streamlit on port {port} did not come up (log: {log})")


def _wait_warm(log: Path, timeout: float = 600) -> str:
    """Block until the server logs that its warm-up is done; return that line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if "warm-up done" in line or "warm-up skipped" in line:
                return line.strip()
        time.sleep(0.5)
    raise TimeoutError(f"the server did not finish its warm-up within {timeout:.0f} s (log: {log})")


def _ready(page: Any, title: str) -> None:
    page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
    page.wait_for_function(IDLE_JS, timeout=120_000)


class Page:
    """A browser tab that records when the server reports each script run finished (ForwardMsg over the socket)."""

    def __init__(self, context: Any) -> None:
        self.tab = context.new_page()
        self.tab.set_viewport_size(VIEWPORT)
        self.tab.add_init_script(OBSERVER_JS)
        self.finished: list[float] = []
        self.server_s = 0.0
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
        self.server_s = done - t0
        return max(done - t0, (last_js - js_t0) / 1000)


def _fresh_tab(context: Any, url: str, title: str) -> float:
    """Seconds from navigation start until the page's script run finished and its DOM settled."""
    page = Page(context)
    t0 = time.perf_counter()
    page.tab.goto(url, wait_until="domcontentloaded")
    dt = page.rendered_since(t0, 0.0, title)
    page.tab.close()
    return dt


def _cold_tab(browser: Any, url: str, title: str) -> float:
    """A first-ever visit: a fresh tab in a brand-new context (empty HTTP cache)."""
    context = browser.new_context()
    try:
        return _fresh_tab(context, url, title)
    finally:
        context.close()


def _click_through(page: Page) -> tuple[list[float], list[float]]:
    """Click every page's sidebar link in turn: seconds until rendered and settled, and the server's part."""
    out, server = [], []
    for title, _path, _module, _icon in PAGES:
        link = page.tab.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title).first
        _settled(page.tab)
        js_t0 = float(page.tab.evaluate("performance.now()"))
        t0 = time.perf_counter()
        link.click()
        out.append(page.rendered_since(t0, js_t0, title))
        server.append(page.server_s)
    return out, server


def _floors(context: Any, base: str) -> dict[str, list[float]]:
    """Each floor page in three fresh tabs of ``context``, after one visit that fills its cache; seconds by heading."""
    import importlib.util

    out: dict[str, list[float]] = {}
    for title, path, _what in FLOORS:
        if title == "Plotly" and importlib.util.find_spec("plotly") is None:
            continue
        _fresh_tab(context, f"{base}/{path}", title)
        out[title] = [_fresh_tab(context, f"{base}/{path}", title) for _ in range(3)]
    return out


def _url(base: str, index: int, rng: str) -> str:
    """The address of page ``index`` of the app; the first (default) page lives at the root, as its links say."""
    path = "" if index == 0 else PAGES[index][1]
    return f"{base}/{path}?range={rng}"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _prime(pw: Any, profile: Path, db: Path, port: int, env: dict[str, str], log: Path, charts: str) -> None:
    """An earlier visit of this browser profile: every page of the app at the same address (6 h views)."""
    proc = _serve(command(db, port, charts=charts), port, {**env, "GPUFLEET_DASHBOARD_WARM": "0"}, log)
    try:
        context = pw.chromium.launch_persistent_context(str(profile), executable_path="/usr/bin/chromium",
                                                        headless=True, args=CHROMIUM, viewport=VIEWPORT)
        tab = Page(context)
        tab.tab.goto(f"http://127.0.0.1:{port}/{PAGES[-1][1]}?range=6h", wait_until="domcontentloaded")
        tab.rendered_since(0.0, 0.0, PAGES[-1][0])
        _click_through(tab)
        context.close()
    finally:
        stop(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=1000)
    ap.add_argument("--days", type=float, default=7)
    ap.add_argument("--step", type=float, default=3600, help="seconds between scrapes of the simulated fleet")
    ap.add_argument("--db", type=Path, default=Path("/tmp/gpufleet-dashboard-bench.duckdb"))
    ap.add_argument("--range", default="all", help="time-range filter the pages are opened with")
    ap.add_argument("--no-warm", action="store_true",
                    help="turn off the app's warm-up (at server start and after a session's first page)")
    ap.add_argument("--charts", default=DEFAULT_CHARTS, choices=tuple(CHARTS),
                    help="the chart library the app is started with (gpufleet dashboard --charts)")
    ap.add_argument("--cold-reps", type=int, default=3,
                    help="first-ever visits per page from a cold browser, taken round-robin over the pages and the "
                         "bare Streamlit page (one busy moment of a shared machine lands on one sample of each)")
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
    port, floor_port = _port(), _port()
    loads = [_load()]
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        profile, log = Path(tmp) / "profile", Path(tmp) / "server.log"
        floor_app = Path(tmp) / "floors.py"
        floor_app.write_text(FLOOR_APP)
        floor_cmd = [sys.executable, "-m", "streamlit", "run", str(floor_app), *options(floor_port)]
        _prime(pw, profile, args.db, port, env, Path(tmp) / "prime.log", args.charts)
        t_start = time.perf_counter()
        procs = [_serve(command(args.db, port, charts=args.charts), port, env, log),
                 _serve(floor_cmd, floor_port, env, Path(tmp) / "floors.log")]
        try:
            warm_line = "warm-up off" if args.no_warm else _wait_warm(log)
            warm_wait = time.perf_counter() - t_start
            loads.append(_load())
            context = pw.chromium.launch_persistent_context(str(profile), executable_path="/usr/bin/chromium",
                                                            headless=True, args=CHROMIUM, viewport=VIEWPORT)
            base = f"http://127.0.0.1:{port}"
            tab = Page(context)
            t0 = time.perf_counter()
            tab.tab.goto(f"{base}/{PAGES[-1][1]}?range={args.range}", wait_until="domcontentloaded")
            opened = tab.rendered_since(t0, 0.0, PAGES[-1][0])
            time.sleep(args.pause)
            first, first_server = _click_through(tab)
            cached, _ = _click_through(tab)
            tab.tab.close()
            fresh = [_fresh_tab(context, _url(base, i, args.range), title) for i, (title, *_) in enumerate(PAGES)]
            floors = _floors(context, f"http://127.0.0.1:{floor_port}")
            bare_url = f"http://127.0.0.1:{floor_port}/"
            context.close()
            loads.append(_load())
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM)
            cold_runs: list[list[float]] = [[] for _ in PAGES]
            cold_floor = []
            for _ in range(args.cold_reps):
                for i, (title, *_) in enumerate(PAGES):
                    cold_runs[i].append(_cold_tab(browser, _url(base, i, args.range), title))
                cold_floor.append(_cold_tab(browser, bare_url, "Bare"))
            browser.close()
            loads.append(_load())
        finally:
            for p in procs:
                stop(p)
    print(f"charts: {args.charts}; server: {warm_line} (health to done {warm_wait:.1f} s); load average (1, 5, 15 min) "
          "at start, "
          f"after warm-up, after the returning browser, at the end: {' | '.join(loads)}")
    print(f"session opened on {PAGES[-1][0]} in {opened:.2f} s (returning browser; then {args.pause:g} s "
          "before the first click)")
    cold = [statistics.median(runs) for runs in cold_runs]
    # the peer: a bare Streamlit page opened the same way in the same run
    bare_s, bare_cold_s = statistics.median(floors["Bare"]), statistics.median(cold_floor)
    print(f"{'page':<12} {'in-app first s':>15} {'(server s)':>10} {'in-app cached s':>16} {'fresh tab s':>12} "
          f"{'cold median s':>14} {'cold max s':>11} {'first/2s':>9} {'cached/2s':>10} {'fresh/2s':>9} {'cold/2s':>8} "
          f"{'fresh/bare':>11} {'cold/bare':>10}")
    for (title, *_), a, s, b, c, d, runs in zip(PAGES, first, first_server, cached, fresh, cold, cold_runs,
                                                strict=True):
        print(f"{title:<12} {a:>15.2f} {s:>10.2f} {b:>16.2f} {c:>12.2f} {d:>14.2f} {max(runs):>11.2f} "
              f"{a / TARGET_S:>9.2f} {b / TARGET_S:>10.2f} {c / TARGET_S:>9.2f} {d / TARGET_S:>8.2f} "
              f"{c / bare_s:>11.2f} {d / bare_cold_s:>10.2f}")
    print("Streamlit floors, fresh tab, returning browser (median of 3):")
    for title, _path, what in FLOORS:
        if title in floors:
            med = statistics.median(floors[title])
            print(f"  {what:<32} {med:.2f} s ({med - bare_s:+.2f} s) of {', '.join(f'{x:.2f}' for x in floors[title])}"
                  f" = {med / TARGET_S:.2f}x the target")
        else:
            print(f"  {what:<32} not measured (plotly is not installed)")
    print(f"bare Streamlit page, fresh tab, cold browser (between the pages' rounds): median {bare_cold_s:.2f} s of "
          f"{', '.join(f'{x:.2f}' for x in cold_floor)} = {bare_cold_s / TARGET_S:.2f}x the target")
    print(f"worst: in-app first {max(first):.2f} s, in-app cached {max(cached):.2f} s, fresh tab (returning) "
          f"{max(fresh):.2f} s ({max(fresh) / bare_s:.2f}x the bare page), fresh tab (cold browser) median "
          f"{max(cold):.2f} s ({max(cold) / bare_cold_s:.2f}x the bare page), slowest single cold visit "
          f"{max(max(runs) for runs in cold_runs):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
