import gc
import io
import itertools
import shutil
from pathlib import Path

import pytest

from gpufleet.dashboards import results
from gpufleet.dashboards.context import store_mtime
from gpufleet.dashboards.filters import Filters, window
from gpufleet.dashboards.launch import command
from gpufleet.dashboards.memo import MEMO
from gpufleet.dashboards.serve import DEFAULT_WARM, split_args
from gpufleet.dashboards.warmup import parse_ranges, preload, warm_store


def test_parse_ranges_reads_a_comma_list():
    assert parse_ranges("7d, all") == ["7d", "all"]
    assert parse_ranges("") == []


def test_parse_ranges_names_a_range_the_app_does_not_offer():
    with pytest.raises(ValueError, match="'2w' is not one of 6h, 1d, 7d, 30d, 90d, all"):
        parse_ranges("7d,2w")


def test_split_args_reads_the_store_and_ranges_after_the_double_dash(monkeypatch):
    monkeypatch.delenv("GPUFLEET_DB", raising=False)
    monkeypatch.delenv("GPUFLEET_DASHBOARD_CHARTS", raising=False)
    assert split_args(["--server.port", "1", "--", "--db", "/s.duckdb", "--warm", "1d", "--charts", "plotly"]) == (
        Path("/s.duckdb"), ["1d"], "plotly")
    assert split_args(["--", "--db", "/s.duckdb"]) == (Path("/s.duckdb"), parse_ranges(DEFAULT_WARM), "vega")
    assert split_args(["--server.port", "1"]) == (None, parse_ranges(DEFAULT_WARM), "vega")
    with pytest.raises(ValueError, match="charts 'bokeh' is not one of vega, plotly"):
        split_args(["--", "--charts", "bokeh"])


def test_the_launch_command_runs_the_warming_server_with_the_ranges(tmp_path):
    cmd = command(tmp_path / "s.duckdb", 8600, warm="all")
    assert cmd[1:3] == ["-m", "gpufleet.dashboards.serve"]
    assert cmd[-4:] == ["--db", str((tmp_path / "s.duckdb").resolve()), "--warm", "all"]


def test_warm_store_computes_every_page_view_once_per_window(demo_store, tmp_path):
    # a copy: other tests' sessions have warmed the demo store's windows in this process already
    db = str(tmp_path / "warm.duckdb")
    shutil.copyfile(demo_store, db)
    ticks = itertools.count()
    log = io.StringIO()
    done = warm_store(db, ["all", "30d", "1d"], log=log, clock=lambda: float(next(ticks)))
    info = results.info(db, store_mtime(db))
    # the 2-day store: "all" and "30d" select the same window, warmed once
    assert done == [window(Filters(range="all"), info.first, info.last),
                    window(Filters(range="1d"), info.first, info.last)]
    lines = log.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("gpufleet dashboard: warm-up done: 2 window(s)")
    mtime = store_mtime(db)
    start, end = done[0]
    assert ("fleet", db, mtime, start, end, None, None, None) in MEMO
    assert ("cost", db, mtime, start, end, "team") in MEMO
    assert ("forecast", db, mtime, start, end, None, 24) in MEMO
    hits = MEMO.hits
    results.fleet(db, mtime, start, end)
    assert MEMO.hits == hits + 1
    # a second warm-up of the same store version finds every window done
    assert warm_store(db, ["all"], log=io.StringIO()) == []


def test_a_warmed_window_is_frozen_out_of_the_full_collections(demo_store, tmp_path):
    """Streamlit collects every generation after each script run; what the warm-up built is not walked again."""
    db = str(tmp_path / "frozen.duckdb")
    shutil.copyfile(demo_store, db)
    gc.unfreeze()
    try:
        warm_store(db, ["all"], log=io.StringIO())
        frozen = gc.get_freeze_count()
        mtime = store_mtime(db)
        info = results.info(db, mtime)
        start, end = window(Filters(range="all"), info.first, info.last)
        snapshot = results.fleet(db, mtime, start, end)  # the memoised view the warm-up built
        assert frozen > 10_000
        assert gc.is_tracked(snapshot)
        assert all(o is not snapshot for o in gc.get_objects())  # tracked, but in no generation a collection walks
    finally:
        gc.unfreeze()


def test_warm_store_logs_a_store_it_cannot_read(tmp_path):
    log = io.StringIO()
    assert warm_store(str(tmp_path / "missing.duckdb"), ["all"], log=log) == []
    assert "warm-up skipped" in log.getvalue()


def test_the_dashboard_command_names_a_bad_warm_up_range(demo_store):
    from typer.testing import CliRunner

    from gpufleet.main import app

    result = CliRunner().invoke(app, ["dashboard", "--db", str(demo_store), "--warm", "7d,2w"])
    assert result.exit_code == 2
    assert "warm-up range '2w' is not one of 6h, 1d, 7d, 30d, 90d, all" in result.output


def test_preload_skips_a_module_that_is_not_installed():
    assert preload(("gpufleet.dashboards.charts", "gpufleet_no_such_extra.module")) == ["gpufleet_no_such_extra.module"]


def test_the_dashboard_command_names_an_unknown_chart_library(demo_store):
    from typer.testing import CliRunner

    from gpufleet.main import app

    result = CliRunner().invoke(app, ["dashboard", "--db", str(demo_store), "--charts", "bokeh"])
    assert result.exit_code == 2
    assert "charts 'bokeh' is not one of vega, plotly" in result.output


def test_the_launch_command_passes_the_chart_library(tmp_path):
    cmd = command(tmp_path / "s.duckdb", 8600, charts="plotly")
    assert cmd[-2:] == ["--charts", "plotly"]
    assert "--charts" not in command(tmp_path / "s.duckdb", 8600)


def test_plotly_charts_without_the_plotly_extra_say_how_to_install_it(monkeypatch):
    import importlib.util

    from gpufleet.dashboards import launch

    real = importlib.util.find_spec
    monkeypatch.setattr(launch.importlib.util, "find_spec", lambda name, *a: None if name == "plotly" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'gpufleet\[app,plotly\]'"):
        launch.check_charts("plotly")
    launch.check_charts("vega")
