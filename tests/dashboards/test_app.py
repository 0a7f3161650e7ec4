import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from gpufleet.analytics.fleet import load_snapshot, store_range
from gpufleet.core.store import StoreWriter, open_readonly
from gpufleet.dashboards.launch import APP
from gpufleet.dashboards.views.common import available


def run_app(monkeypatch, db, query=None) -> AppTest:
    monkeypatch.setenv("GPUFLEET_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def snapshot(db, **kw):
    con = open_readonly(db)
    try:
        first, last = store_range(con)
        return load_snapshot(con, kw.pop("start", first), last, **kw)
    finally:
        con.close()


def test_fleet_page_numbers_match_the_analytics(monkeypatch, demo_store):
    at = run_app(monkeypatch, demo_store, {"range": "all"})
    snap = snapshot(demo_store)
    shown = metrics(at)
    assert shown["GPUs"] == str(snap.gpus.height) == "32"
    for state in ("healthy", "warning", "critical", "lost"):
        assert shown[state.capitalize()] == str(snap.state_counts[state])
    critical = snap.events.filter(snap.events["severity"] == "critical")["count"].sum()
    assert shown["Critical XIDs"] == str(int(critical))
    assert at.header[0].value == "Fleet"


def test_url_filters_select_the_view_and_stay_in_the_url(monkeypatch, demo_store):
    at = run_app(monkeypatch, demo_store, {"range": "1d", "cluster": "eu-west-prod"})
    assert metrics(at)["GPUs"] == str(snapshot(demo_store, cluster="eu-west-prod").gpus.height)
    assert at.query_params["cluster"] == "eu-west-prod"
    assert at.query_params["range"] == "1d"
    assert at.sidebar.selectbox(key="f_cluster").value == "eu-west-prod"


def test_changing_a_filter_rewrites_the_url(monkeypatch, demo_store):
    at = run_app(monkeypatch, demo_store)
    at.sidebar.selectbox(key="f_gpu").select("NVIDIA H200").run()
    assert at.query_params["gpu"] == "NVIDIA H200"
    assert metrics(at)["GPUs"] == str(snapshot(demo_store, gpu_model="NVIDIA H200").gpus.height)


def test_bad_url_parameters_are_named_not_fatal(monkeypatch, demo_store):
    at = run_app(monkeypatch, demo_store, {"range": "fortnight", "end": "soon"})
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "range='fortnight'" in warnings
    assert "end='soon'" in warnings
    assert metrics(at)["GPUs"] == "32"


def test_unknown_filter_value_shows_the_empty_state(monkeypatch, demo_store):
    at = run_app(monkeypatch, demo_store, {"team": "nobody"})
    assert at.sidebar.selectbox(key="f_team").value == "(all)"
    assert metrics(at)["GPUs"] == "32"


def test_charts_are_vega_lite_unless_plotly_is_asked_for(monkeypatch, demo_store):
    monkeypatch.delenv("GPUFLEET_DASHBOARD_CHARTS", raising=False)
    at = run_app(monkeypatch, demo_store, {"range": "all"})
    assert len(at.get("vega_lite_chart")) == 2 and not at.get("plotly_chart")
    monkeypatch.setenv("GPUFLEET_DASHBOARD_CHARTS", "plotly")
    at = run_app(monkeypatch, demo_store, {"range": "all"})
    assert len(at.get("plotly_chart")) == 2 and not at.get("vega_lite_chart")
    # the same numbers whichever library draws the charts
    assert metrics(at)["GPUs"] == f"{snapshot(demo_store).gpus.height:,}"


def test_an_unknown_chart_library_is_named(monkeypatch, demo_store):
    monkeypatch.setenv("GPUFLEET_DASHBOARD_CHARTS", "bokeh")
    at = run_app(monkeypatch, demo_store)
    assert at.error[0].value == "charts 'bokeh' is not one of vega, plotly"
    assert not at.metric


def test_missing_store(monkeypatch, tmp_path):
    at = run_app(monkeypatch, tmp_path / "nope.duckdb")
    assert "does not exist" in at.error[0].value
    assert not at.metric


def test_no_store_given(monkeypatch):
    monkeypatch.setenv("GPUFLEET_DB", "")
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert at.error[0].value == "No store given."


def test_empty_store(monkeypatch, tmp_path):
    db = tmp_path / "empty.duckdb"
    StoreWriter(db).close()
    at = run_app(monkeypatch, db)
    assert "holds no data yet" in at.info[0].value
    assert not at.error


def test_not_a_store(monkeypatch, tmp_path):
    db = tmp_path / "junk.duckdb"
    db.write_text("not a database")
    at = run_app(monkeypatch, db)
    assert "cannot open store" in at.error[0].value


def test_store_locked_by_a_writer(monkeypatch, tmp_path):
    db = tmp_path / "locked.duckdb"
    StoreWriter(db).close()
    code = ("import sys, time; from gpufleet.core.store import StoreWriter; w = StoreWriter(sys.argv[1]); "
            "print('ready', flush=True); sys.stdin.read()")
    writer = subprocess.Popen([sys.executable, "-c", code, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        at = run_app(monkeypatch, db)
        assert "lock" in at.error[0].value.lower()
        assert "writer holds the store's lock" in at.markdown[0].value
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)


@pytest.mark.parametrize(("module", "expected"), [
    ("gpufleet.analytics.fleet", True), ("gpufleet.analytics.no_such_model", False), ("no_such_package.x", False)])
def test_available(module, expected):
    assert available(module) is expected
