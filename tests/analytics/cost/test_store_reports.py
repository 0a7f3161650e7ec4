import datetime as dt
import json

import polars as pl
import pytest
from typer.testing import CliRunner

from gpufleet.analytics.cost import report as rep
from gpufleet.analytics.cost.focus import FOCUS_MANDATORY
from gpufleet.analytics.cost.money import to_cents
from gpufleet.analytics.cost.pricing import load_catalog
from gpufleet.analytics.cost.query import DuckDBSource
from gpufleet.core.store.reader import open_readonly
from gpufleet.main import app

W = dt.timedelta(days=30)


@pytest.fixture()
def src(cost_store):
    con = open_readonly(cost_store)
    yield DuckDBSource(con)
    con.close()


def test_chargeback_reconciles_to_asset_cost(src):
    cat = load_catalog()
    p = rep.priced(src, cat, W)
    # Every GPU of both nodes is costed for every hour it was seen: 16 GPUs.
    assert p["gpu_uuid"].n_unique() == 16
    asset = to_cents(float(p["cost_usd"].sum()))
    for by in ("namespace", "team", "node", "cluster"):
        cb = rep.cost_report(src, cat, W, by)
        assert int(cb["total_cents"].sum()) == asset
    assert asset > 0


def test_model_cost_report(src):
    df = rep.model_cost_report(src, load_catalog(), W, goodput={"meta-llama/Llama-3.1-8B-Instruct": 10})
    assert df.height >= 1 and (df["cost_usd"] > 0).all()
    assert (df["usd_per_1m_tokens"] > 0).all()


def test_focus_columns_and_types(src, tmp_path):
    df = rep.focus_export(src, load_catalog(), W)
    for c in FOCUS_MANDATORY:
        assert c in df.columns
    for c in ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "PricingQuantity"):
        assert df.schema[c] == pl.Float64
    for c in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"):
        assert df.schema[c] == pl.Datetime("us")
    assert set(df["PricingCategory"]) == {"Standard", "Committed"}  # on-demand H100 node, reserved H200 node
    assert {"x_GpuHours", "x_Tokens", "x_Team"} <= set(df.columns)
    assert float(df["x_Tokens"].sum()) > 0
    assert (df["ListCost"] >= df["BilledCost"] - 1e-9).all()
    out = tmp_path / "focus.csv"
    res = CliRunner().invoke(app, ["export", "focus", "--db", str(src_path(src)), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert pl.read_csv(out).columns[:21] == list(FOCUS_MANDATORY)


def src_path(src):
    return src.con.execute("SELECT path FROM duckdb_databases() WHERE NOT internal").fetchall()[0][0]


def test_cli_reports_json(cost_store):
    r = CliRunner().invoke(app, ["report", "cost", "--db", str(cost_store), "--by", "team", "--window", "30d",
                                 "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert {x["team"] for x in rows} >= {"research", "assistant"}
    r = CliRunner().invoke(app, ["report", "cost", "--db", str(cost_store), "--by", "model", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["model"]
    r = CliRunner().invoke(app, ["report", "utilization", "--db", str(cost_store), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["utilization"]


@pytest.mark.parametrize(("args", "msg"), [
    (["--by", "pod"], "--by 'pod'"), (["--window", "soon"], "window 'soon'")])
def test_cli_bad_input(cost_store, args, msg):
    r = CliRunner().invoke(app, ["report", "cost", "--db", str(cost_store), *args])
    assert r.exit_code == 2 and msg in r.output


def test_energy_per_workload_sums_to_fleet_energy(src):
    cat = load_catalog()
    per_gpu = rep.energy(src, cat, W, "gpu_uuid")
    per_ns = rep.energy(src, cat, W, "namespace")
    assert per_gpu.height == 16
    assert float(per_ns["gpu_kwh"].sum()) == pytest.approx(float(per_gpu["gpu_kwh"].sum()))
    assert float(per_ns["kg_co2e"].sum()) == pytest.approx(float(per_ns["facility_kwh"].sum()) * 0.475)
    assert per_ns.filter(pl.col("namespace") == "research-train")["gpu_kwh"][0] > 0


def test_stored_prices_override_catalog_and_rightsizing(tmp_path):
    import datetime as _dt

    from gpufleet.core.simfleet import FleetConfig
    from gpufleet.core.store.batch import Batch, ProbeRow
    from gpufleet.core.store.prices import PriceRow, load_prices, read_prices
    from gpufleet.core.store.writer import StoreError, StoreWriter
    from gpufleet.history import HistoryPlan, build_history

    path = tmp_path / "s.duckdb"
    build_history(path, FleetConfig(nodes=1), HistoryPlan(days=1, step_s=1800, end=1_767_830_400.0))
    row = PriceRow("aws", "us-east-1", "NVIDIA H100 80GB HBM3", "reserved", 2.0, _dt.date(2026, 1, 2), "contract")
    with StoreWriter(path) as w:
        assert load_prices(w, [row, row]) == 2
        with pytest.raises(StoreError, match="pricing_category must be one of"):
            load_prices(w, [PriceRow("aws", "r", "m", "cheap", 1.0, _dt.date(2026, 1, 1), "x")])
        w.write([Batch("probe", 1_767_830_000.0, probes=[
            ProbeRow(None, None, None, "NVIDIA H100 80GB HBM3", "matmul_bf16", 700.0, "tflops"),
            ProbeRow(None, None, None, "NVIDIA L40S", "matmul_bf16", 350.0, "tflops")])])
    con = open_readonly(path)
    assert read_prices(con) == [row]
    s = DuckDBSource(con)
    p = rep.priced(s, load_catalog(), W)
    assert set(p["usd_per_gpu_hour"]) == {2.0}
    rs = rep.rightsizing(s, load_catalog(), W, "matmul_bf16")
    assert rs
    for name, options in rs.items():
        assert name.endswith("on NVIDIA H100 80GB HBM3")
        # Half the throughput at $1.86 beats $6.88 on demand: 2 x 1.86 < 6.88 per H100-hour of work.
        assert [x.category for x in options] == ["NVIDIA L40S", "NVIDIA H100 80GB HBM3"]
        assert options[0].cost_usd == pytest.approx(options[1].cost_usd / 6.88 * 2 * 1.86)
    con.close()
