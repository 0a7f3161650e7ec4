import datetime as dt

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from gpufleet.analytics.capacity.erlang import servers_for_slo
from gpufleet.analytics.cost.pricing import load_catalog
from gpufleet.analytics.cost.query import DuckDBSource
from gpufleet.analytics.cost.report import cost_report, utilization_report
from gpufleet.analytics.fleet import store_range
from gpufleet.core.store import open_readonly
from gpufleet.dashboards.queries import hourly_requests, latency_buckets, latency_table, quantile
from gpufleet.dashboards.views.reliability import mttf_hours
from gpufleet.dashboards.views.slos import budget_left


def page_script(db: str, module: str, query: dict[str, str]) -> None:
    import importlib

    from gpufleet.dashboards import cached
    from gpufleet.dashboards.context import Context, store_mtime
    from gpufleet.dashboards.filters import from_query, window

    mtime = store_mtime(db)
    info = cached.info(db, mtime)
    filters, _ = from_query(query)
    start, end = window(filters, info.first, info.last)
    ctx = Context(db=db, mtime=mtime, info=info, filters=filters, start=start, end=end)
    importlib.import_module(f"gpufleet.dashboards.views.{module}").render(ctx)


def run_page(db, module: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_function(page_script, args=(str(db), module, query or {"range": "all"}), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture(scope="module")
def src(demo_store):
    con = open_readonly(demo_store)
    yield con, DuckDBSource(con)
    con.close()


def window_of(con) -> dt.timedelta:
    first, last = store_range(con)
    return max(last - first, dt.timedelta(hours=1))


def test_cost_page_matches_the_chargeback(demo_store, src):
    con, s = src
    at = run_page(demo_store, "cost")
    table = cost_report(s, load_catalog(), window_of(con), "team")
    assert metrics(at)["Total cost"] == f"${table['total_cents'].sum() / 100:,.2f}"
    assert {"on demand", "reserved", "spot"} <= set(metrics(at))
    assert at.get("download_button")


def test_cost_page_energy_matches_the_per_gpu_energy_report(demo_store, src):
    from gpufleet.analytics.cost.energy import energy_report

    con, s = src
    at = run_page(demo_store, "cost")
    per_gpu = s.energy(s.window(window_of(con)))  # hourly joules per GPU, as the store holds them
    rep = energy_report(per_gpu, pue=1.2, usd_per_kwh=0.12, gco2_per_kwh=475)  # the sliders' defaults
    shown = metrics(at)
    assert shown["Facility energy"] == f"{float(rep['facility_kwh'].sum()):,.0f} kWh"
    assert shown["Electricity"] == f"${float(rep['energy_usd'].sum()):,.2f}"
    assert shown["Carbon"] == f"{float(rep['kg_co2e'].sum()):,.0f} kg CO2e"


def test_cost_page_by_model_shows_dollars_per_million_tokens(demo_store, src):
    con, s = src
    at = run_page(demo_store, "cost")
    at.segmented_control(key="cost_by").set_value("model").run()
    table = cost_report(s, load_catalog(), window_of(con), "model")
    assert metrics(at)["Serving GPU cost"] == f"${table['cost_usd'].sum():,.2f}"
    assert table["usd_per_1m_tokens"].min() > 0


def test_utilization_page_matches_the_report(demo_store, src):
    con, s = src
    at = run_page(demo_store, "utilization")
    table = utilization_report(s, window_of(con), "namespace")
    shown = metrics(at)
    assert shown["Allocated GPU-hours"] == f"{table['allocated_gpu_hours'].sum():,.0f}"
    assert shown["Used GPU-hours"] == f"{table['used_gpu_hours'].sum():,.0f}"
    assert shown["Monthly savings if applied"].startswith("$")


def test_slos_page_attainment_matches_the_histograms(demo_store, src):
    con, _ = src
    at = run_page(demo_store, "slos")
    first, last = store_range(con)
    table = latency_table(latency_buckets(con, first, last), {
        "gpufleet_serving_time_to_first_token_seconds": 2.5, "gpufleet_serving_inter_token_latency_seconds": 0.1})
    slo = table.filter(pl.col("within_slo").is_not_null())
    assert metrics(at)["SLOs met"] == f"{int((slo['within_slo'] >= 0.99).sum())} of {slo.height}"
    assert metrics(at)["Models"] == "3"


def test_capacity_page_sizes_replicas_with_the_erlang_model(demo_store):
    at = run_page(demo_store, "capacity")
    rate = at.number_input(key="cap_rate").value
    expected = servers_for_slo(rate, 2.0, 0.5, quantile=0.99, max_utilization=0.9)
    assert metrics(at)["Replicas needed"] == str(expected.servers)
    at.slider(key="cap_growth").set_value(2.0).run()
    assert metrics(at)["Replicas needed"] == str(servers_for_slo(rate * 2, 2.0, 0.5, quantile=0.99,
                                                                 max_utilization=0.9).servers)
    assert "Forecast peak (90% upper)" in metrics(at)


def test_request_history_holds_only_the_hours_the_window_covers_whole(src):
    con, _ = src
    first, last = store_range(con)  # the first scrape is 10 minutes into an hour, the last opens one
    hist = hourly_requests(con, first, last)
    hours = hist["ts"].to_list()
    assert hours[0] >= first and hours[-1] + dt.timedelta(hours=1) <= last
    assert hours[0] - first < dt.timedelta(hours=1) and last - hours[-1] <= dt.timedelta(hours=2)
    # the newest whole hour carries a whole hour of traffic, not the one scrape of a cut hour
    counts = hist["requests"].to_numpy()
    assert counts[-1] > 0.5 * counts[-2]


def test_reliability_page_counts_critical_failures(demo_store, src):
    con, _ = src
    at = run_page(demo_store, "reliability")
    n = con.execute("SELECT coalesce(sum(count), 0) FROM events WHERE severity = 'critical'").fetchone()[0]
    assert metrics(at)["Critical failures"] == f"{int(n):,}"


def test_probes_page_empty_state(demo_store):
    at = run_page(demo_store, "probes")
    assert "No probe results" in at.info[0].value


@pytest.mark.parametrize(("le", "cum", "q", "expected"), [
    ([1.0, 2.0, float("inf")], [50, 100, 100], 0.5, 1.0),
    ([1.0, 2.0, float("inf")], [50, 100, 100], 0.75, 1.5),
    ([1.0, 2.0, float("inf")], [0, 0, 0], 0.5, None),
    ([1.0, 2.0, float("inf")], [10, 10, 20], 0.99, 2.0),
])
def test_quantile(le, cum, q, expected):
    import numpy as np

    assert quantile(np.array(le), np.array(cum, dtype=float), q) == expected


@pytest.mark.parametrize(("attain", "objective", "left"), [(0.99, 0.99, 0.0), (1.0, 0.99, 1.0), (0.995, 0.99, 0.5)])
def test_budget_left(attain, objective, left):
    assert budget_left(attain, objective) == pytest.approx(left)


def test_mttf():
    assert mttf_hours(1000.0, 4) == 250.0
    assert mttf_hours(1000.0, 0) is None


def test_reliability_page_shows_the_reliability_report(demo_store, src):
    from gpufleet.analytics.reliability.report import reliability_report

    con, _ = src
    rep = reliability_report(con, period="day", job_gpus=1024)
    at = run_page(demo_store, "reliability")
    shown = metrics(at)
    assert shown["Interruptions"] == f"{rep.interruptions:,}"
    assert shown["ETTR"] == (f"{rep.ettr:.1%}" if rep.ettr is not None else "-")
    captions = " ".join(c.value for c in at.caption)
    assert "checkpoints every 30 min and 10 min to restart" in captions
    if rep.young_ettr is not None:
        assert f"(Young's interval) would give {rep.young_ettr:.1%}" in captions
