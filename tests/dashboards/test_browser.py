import datetime as dt
import os
import subprocess
import time

import pytest

from gpufleet.analytics.cost.pricing import load_catalog
from gpufleet.analytics.cost.query import DuckDBSource
from gpufleet.analytics.cost.report import cost_report, utilization_report
from gpufleet.analytics.fleet import load_snapshot, store_range
from gpufleet.core.store import open_readonly
from gpufleet.dashboards.html_table import CLASS

from .conftest import ARTIFACTS, free_port, stop, wait_http

PAGES = ["fleet", "utilization", "cost", "slos", "capacity", "probes", "reliability"]


@pytest.fixture(scope="module")
def chargeback(demo_store) -> dict[str, float]:
    """Total cents per team from the analytics function."""
    con = open_readonly(demo_store)
    try:
        first, last = store_range(con)
        cost = cost_report(DuckDBSource(con), load_catalog(), max(last - first, dt.timedelta(hours=1)), "team")
    finally:
        con.close()
    return dict(cost.select("team", "total_cents").iter_rows())


@pytest.fixture(scope="module")
def expected(demo_store) -> dict[str, dict[str, str]]:
    """Key numbers from the analytics functions, formatted as the pages show them."""
    con = open_readonly(demo_store)
    try:
        first, last = store_range(con)
        snap = load_snapshot(con, first, last)
        src, window = DuckDBSource(con), max(last - first, dt.timedelta(hours=1))
        cost = cost_report(src, load_catalog(), window, "team")
        util = utilization_report(src, window, "namespace")
        critical = con.execute("SELECT coalesce(sum(count), 0) FROM events WHERE severity = 'critical'").fetchone()[0]
    finally:
        con.close()
    return {
        "fleet": {"GPUs": str(snap.gpus.height), "Lost": str(snap.state_counts["lost"])},
        "utilization": {"Allocated GPU-hours": f"{util['allocated_gpu_hours'].sum():,.0f}"},
        "cost": {"Total cost": f"${cost['total_cents'].sum() / 100:,.2f}"},
        "slos": {"Models": "3"},
        "capacity": {},
        "probes": {},
        "reliability": {"Critical failures": f"{int(critical):,}"},
    }


def shown_table(page, index: int = 0) -> list[dict[str, str]]:
    """The rows of the page's ``index``-th table, each as {column: text}."""
    return page.locator(f".{CLASS}").nth(index).evaluate(
        "box => { const cols = [...box.querySelectorAll('th')].map(th => th.innerText.trim());"
        " return [...box.querySelectorAll('tbody tr')].map(tr => Object.fromEntries("
        "[...tr.querySelectorAll('td')].map((td, i) => [cols[i], td.innerText.trim()]))); }")


def shown_metrics(page) -> dict[str, str]:
    """Every metric tile's label and value, read in one pass over the DOM so a redraw cannot pair them wrongly."""
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('[data-testid=\"stMetric\"]')].map(m => ["
        "m.querySelector('[data-testid=\"stMetricLabel\"]')?.innerText.trim(),"
        "m.querySelector('[data-testid=\"stMetricValue\"]')?.innerText.trim()]))")


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_the_analytics_numbers(browser, streamlit_url, expected, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # the first page is the app's default: it lives at the root (its sidebar link says so)
        path = "" if name == PAGES[0] else name
        page.goto(f"{streamlit_url}/{path}?range=all", wait_until="domcontentloaded")
        page.get_by_role("heading", name=name.capitalize() if name != "slos" else "SLOs").first.wait_for(
            timeout=60_000)
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
        if name == "probes":
            page.get_by_text("No probe results").first.wait_for(timeout=30_000)
        else:
            page.locator('[data-testid="stMetric"]').first.wait_for(timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        # metrics render one by one: wait until every expected label is on the page
        for label in expected[name]:
            page.locator('[data-testid="stMetricLabel"]', has_text=label).first.wait_for(timeout=60_000)
        # tiles can be redrawn after the waits above: read until every label is there and two reads agree
        deadline = time.monotonic() + 30
        before, shown = {}, shown_metrics(page)
        while (not expected[name].keys() <= shown.keys() or shown != before) and time.monotonic() < deadline:
            page.wait_for_timeout(250)
            before, shown = shown, shown_metrics(page)
        for label, value in expected[name].items():
            assert shown.get(label) == value, (name, label, shown)
        assert "range=all" in page.url
        assert page.get_by_text("Page not found").count() == 0
        # charts and tables load their code after the script ran: let their placeholders fill before the shot
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        page.close()


def test_cost_table_lists_every_team_with_the_analytics_total(browser, streamlit_url, chargeback):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{streamlit_url}/cost?range=all", wait_until="domcontentloaded")
        # the chargeback table is the one headed by Team (it is drawn after the page's first elements)
        page.locator(f".{CLASS} th", has_text="Team").first.wait_for(timeout=60_000)
        rows = shown_table(page)
        assert rows and "Team" in rows[0], rows[:2]
        # dollars with two decimals, headed by their unit
        shown = {r["Team"]: round(float(r["Total ($)"].replace(",", "")) * 100) for r in rows}
        assert shown.keys() == chargeback.keys()
        # whole cents: a sum that lands on half a cent may round either way, depending on summation order
        assert all(abs(shown[t] - chargeback[t]) <= 0.5 + 1e-6 for t in shown), (shown, chargeback)
        # numbers are right-aligned, labels are not
        assert page.locator(f".{CLASS}").first.locator("tbody td.num").count() == len(rows) * 5
        assert page.locator(f".{CLASS}").first.locator("tbody td:not(.num)").count() == len(rows)
    finally:
        page.close()


@pytest.fixture(scope="module")
def plotly_url(demo_store):
    """The app started with ``--charts plotly`` over the demo store."""
    from gpufleet.dashboards.launch import command

    port = free_port()
    proc = subprocess.Popen(command(demo_store, port, charts="plotly", warm=""), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "GPUFLEET_DB": ""})
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def test_plotly_charts_draw_the_same_page(browser, plotly_url, expected):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{plotly_url}/?range=all", wait_until="domcontentloaded")
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2",
                               timeout=60_000)
        assert page.locator('[data-testid="stVegaLiteChart"]').count() == 0
        assert page.locator('[data-testid="stException"]').count() == 0
        page.locator('[data-testid="stMetricLabel"]', has_text="Lost").first.wait_for(timeout=60_000)
        shown = shown_metrics(page)
        assert {k: shown.get(k) for k in expected["fleet"]} == expected["fleet"]
        # the GPUs-by-state bars: one trace per state, drawn as SVG bars
        assert page.locator(".js-plotly-plot").first.locator("g.trace.bars").count() == 4
        page.screenshot(path=str(ARTIFACTS / "fleet-plotly.png"), full_page=True)
    finally:
        page.close()
