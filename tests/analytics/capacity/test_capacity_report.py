"""Capacity report and CLI over a simulated store."""

import json

import pytest
from typer.testing import CliRunner

from gpufleet.analytics.capacity.report import capacity_rows, pooling_rows
from gpufleet.analytics.capacity.specs import DEFAULT_USD_PER_GPU_HOUR, HOURS_PER_MONTH, family_of
from gpufleet.main import app


def test_capacity_rows_size_each_service(sim_con, request_forecasts) -> None:
    rows = capacity_rows(sim_con, wait_slo_s=0.5, headroom=0.8, forecasts=request_forecasts)
    assert rows
    for r in rows:
        assert r["error"] == ""
        assert r["replicas"] >= 1 and r["gpus"] == r["replicas"] * r["gpus_per_replica"]
        assert r["utilization"] <= 0.8 + 1e-9
        assert r["peak_rps"] / r["replica_rps"] / r["replicas"] == pytest.approx(r["utilization"])
        assert r["usd_per_month"] > 0
        price = DEFAULT_USD_PER_GPU_HOUR[family_of(r["gpu_model"])]
        assert r["usd_per_month"] == pytest.approx(r["gpus"] * price * HOURS_PER_MONTH)


def test_report_capacity_json(sim_store) -> None:
    res = CliRunner().invoke(app, ["report", "capacity", "--db", str(sim_store), "--metrics", "requests",
                                       "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert set(data) == {"forecast requests", "capacity", "pooled vs split by cluster"}
    assert all(r["method"] == "holt_winters_weekly" for r in data["forecast requests"])
    assert all(r["baseline_mase"] is not None for r in data["forecast requests"])
    assert {r["service"] for r in data["capacity"]} == {r["key"] for r in data["forecast requests"]}


def test_report_capacity_missing_db(tmp_path) -> None:
    res = CliRunner().invoke(app, ["report", "capacity", "--db", str(tmp_path / "nope.duckdb")])
    assert res.exit_code == 2
    assert "no such store file" in " ".join(res.output.split())


def test_pooling_rows_compare_clusters(sim_con, request_forecasts) -> None:
    cap = capacity_rows(sim_con, forecasts=request_forecasts)
    rows = pooling_rows(sim_con, cap)
    assert rows, "some services run in both simulated clusters"
    for r in rows:
        assert r["pools"] >= 2
        assert r["pooled_gpus"] <= r["split_gpus"]
        assert r["saved_gpus"] == r["split_gpus"] - r["pooled_gpus"]
        assert r["saved_usd_per_month"] >= 0
    by_svc = {r["service"]: r for r in cap}
    assert all(by_svc[r["service"]]["gpus"] == r["pooled_gpus"] for r in rows)
