import datetime as dt

import polars as pl

from gpufleet.dashboards.charts import ROW_HEIGHT, bars, forecast_band, time_bars

from .conftest import gpu_states as long

T0 = dt.datetime(2026, 1, 1)


def test_bars_stack_the_parts_in_the_given_order_and_colours():
    spec = bars(long(), "gpus", "model", "state", order=("lost", "healthy"),
                colors={"lost": "#7f1d1d", "healthy": "#16a34a"}).to_dict()
    enc = spec["encoding"]
    assert enc["x"]["field"] == "gpus" and enc["x"]["stack"] == "zero"
    assert enc["y"]["field"] == "model" and "yOffset" not in enc
    assert enc["color"]["scale"] == {"domain": ["lost", "healthy"], "range": ["#7f1d1d", "#16a34a"]}
    assert enc["order"]["field"] == "_rank"
    rows = next(iter(spec["datasets"].values()))
    assert [(r["model"], r["state"], r["gpus"], r["_rank"]) for r in rows] == [
        ("H100", "healthy", 7.0, 1), ("H100", "lost", 1.0, 0), ("A100", "healthy", 4.0, 1), ("A100", "lost", 0.0, 0)]
    assert spec["height"] == {"step": ROW_HEIGHT}


def test_grouped_bars_sit_side_by_side_within_a_row():
    spec = bars(long(), "gpus", "model", "state", order=("healthy", "lost"), grouped=True, value_title="GPUs").to_dict()
    enc = spec["encoding"]
    assert enc["x"]["stack"] is None and enc["x"]["title"] == "GPUs"
    assert enc["yOffset"] == {"field": "state", "sort": ["healthy", "lost"], "type": "nominal"}
    assert enc["color"]["scale"] == {"domain": ["healthy", "lost"]}
    assert spec["height"] == {"step": ROW_HEIGHT}


def test_time_bars_span_each_bin_and_stack_the_counts():
    frame = pl.DataFrame({"ts": [T0, T0, T0 + dt.timedelta(hours=6)], "severity": ["critical", "warning", "critical"],
                          "events": [2.0, 1.0, 3.0]})
    spec = time_bars(frame, "ts", "events", "severity", dt.timedelta(hours=6), order=("critical", "warning"),
                     value_title="events per 6h", height=200).to_dict()
    enc = spec["encoding"]
    assert enc["x"] == {"field": "ts", "title": None, "type": "temporal"}
    assert enc["x2"] == {"field": "_bin_end"}
    rows = next(iter(spec["datasets"].values()))
    assert [r["_bin_end"] for r in rows] == ["2026-01-01T06:00:00", "2026-01-01T06:00:00", "2026-01-01T12:00:00"]
    assert enc["y"]["title"] == "events per 6h" and enc["y"]["stack"] == "zero"
    assert len(next(iter(spec["datasets"].values()))) == 3 and spec["height"] == 200


def test_forecast_band_layers_the_interval_the_history_and_the_mean():
    hist = pl.DataFrame({"ts": [T0 + dt.timedelta(hours=i) for i in range(3)], "requests": [5.0, 6.0, 7.0]})
    future = pl.DataFrame({"ts": [T0 + dt.timedelta(hours=3)], "mean": [8.0], "lower": [6.0], "upper": [10.0]})
    spec = forecast_band(hist, future).to_dict()
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["area", "line", "line"]
    assert spec["layer"][0]["encoding"]["y2"]["field"] == "upper"
    assert spec["height"] == 320
