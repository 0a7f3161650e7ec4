"""Goodput over time: steps, partial steps, no-data steps, and agreement with the whole window."""

from __future__ import annotations

import datetime as dt
import json
import math

import polars as pl
import pytest

from gpufleet.analytics.cost.pricing import load_catalog
from gpufleet.analytics.serving import ServingSource, goodput_over_time, goodput_series, serving_report
from gpufleet.core.store import open_readonly
from gpufleet.main import main

INF = math.inf
T = dt.datetime(2026, 1, 1)
TTFT = "gpufleet_serving_time_to_first_token_seconds"
TPOT = "gpufleet_serving_request_time_per_output_token_seconds"


def _rows(t: dt.datetime, metric: str, counts: list[float], bounds: list[float]) -> list[dict[str, object]]:
    return [{"model": "m", "t": t, "metric": metric, "series_id": 1, "le": b, "count": c}
            for b, c in zip(bounds, counts, strict=True)]


def test_goodput_series_per_step():
    h1 = T + dt.timedelta(hours=1)
    h2 = T + dt.timedelta(hours=2)
    frame = pl.DataFrame(
        _rows(T, TTFT, [90, 100], [1.0, INF]) + _rows(T, TPOT, [80, 100], [0.1, INF])
        + _rows(h1, TTFT, [30, 60], [1.0, INF]) + _rows(h1, TPOT, [60, 60], [0.1, INF])
        + _rows(h2, TTFT, [0, 0], [1.0, INF]) + _rows(h2, TPOT, [0, 0], [0.1, INF]))
    seconds = {T: 1800.0, h1: 3600.0, h2: 3600.0}  # the first step is half covered
    out = goodput_series(frame, {"ttft": 1.0, "tpot": 0.1}, seconds, by=["model"]).to_dicts()
    assert [r["t"] for r in out] == [T, h1, h2]
    assert out[0]["goodput_rps"] == pytest.approx(100 * 0.7 / 1800)       # max(0, .9 + .8 - 1)
    assert out[0]["goodput_rps_upper"] == pytest.approx(100 * 0.8 / 1800)
    assert out[1]["goodput_rps"] == pytest.approx(30 / 3600) and out[1]["exact"]  # TPOT all good: exact
    assert out[2]["goodput_rps"] == 0.0 and out[2]["exact"] is None       # nothing completed: no good requests
    assert out[2]["error"] is None


def test_goodput_series_error_per_step():
    frame = pl.DataFrame(_rows(T, TTFT, [1, 2], [1.0, INF]))
    [row] = goodput_series(frame, {"ttft": 5.0}, {T: 60.0}, by=["model"]).to_dicts()
    assert row["goodput_rps"] is None and "beyond the highest finite bucket" in row["error"]


def test_store_series_adds_up_to_the_window(serving_store):
    """With one SLO on a bucket bound, good requests per step add up to the whole window's."""
    with open_readonly(serving_store) as con:
        src = ServingSource(con)
        whole = serving_report(src, dt.timedelta(days=1), {"tpot": 0.05}, load_catalog())
        series = goodput_over_time(src, dt.timedelta(days=1), {"tpot": 0.05}, dt.timedelta(hours=1))
    w = whole.window
    for g in whole.goodput:
        steps = series.filter(pl.col("model") == g.model)
        assert g.result is not None and g.result.goodput_rps is not None
        assert steps["seconds"].sum() == pytest.approx(w.seconds)
        assert steps["requests"].sum() == pytest.approx(g.result.requests)
        good = (steps["goodput_rps"] * steps["seconds"]).sum()
        assert good == pytest.approx(g.result.goodput_rps * w.seconds)
        # 0.25 day of history: 6 hourly steps, the first one short by the opening scrape's interval.
        assert steps.height == 6
        assert steps["seconds"].to_list() == [3300.0] + [3600.0] * 5


def test_cli_every(serving_store, capsys):
    assert main(["report", "serving", "--db", str(serving_store), "--slo", "ttft=2", "--every", "2h", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["goodput_series"]) == 2 * 3
    assert {r["model"] for r in data["goodput_series"]} == {g["model"] for g in data["goodput"]}
    assert main(["report", "serving", "--db", str(serving_store), "--every", "2h"]) == 0
    assert "Goodput over time" in capsys.readouterr().out
    assert main(["report", "serving", "--db", str(serving_store), "--every", "10s"]) == 2
    assert "--every '10s'" in " ".join(capsys.readouterr().err.split())
