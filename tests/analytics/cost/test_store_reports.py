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
    assert rs.height > 0
    assert set(rs["gpu_model"]) == {"NVIDIA H100 80GB HBM3"}
    for _, options in rs.group_by("namespace"):
        # Half the throughput at $1.86 beats $6.88 on demand: 2 x 1.86 < 6.88 per H100-hour of work.
        assert options["target_model"].to_list() == ["NVIDIA L40S", "NVIDIA H100 80GB HBM3"]
        l40s, h100 = options.row(0, named=True), options.row(1, named=True)
        assert l40s["target_gpu_hours"] == pytest.approx(2 * l40s["gpu_hours"])
        assert l40s["target_usd"] == pytest.approx(h100["target_usd"] / 6.88 * 2 * 1.86)
        assert h100["savings_usd"] == pytest.approx(0.0)
        assert l40s["savings_usd"] == pytest.approx(l40s["current_usd"] - l40s["target_usd"])
        assert l40s["current_usd"] == pytest.approx(l40s["gpu_hours"] * 6.88)
    con.close()
    cli = _json(["report", "whatif", "--db", str(path), "--probe", "matmul_bf16", "--json"])
    assert cli["note"] is None
    assert [(r["namespace"], r["target_model"]) for r in cli["rightsizing"]] == list(
        zip(rs["namespace"], rs["target_model"], strict=True))


def _json(args):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_cli_utilization_by_model_and_workload(cost_store, src):
    by_model = {r["gpu_model"]: r for r in _json(["report", "utilization", "--db", str(cost_store), "--by", "model",
                                                  "--json"])["utilization"]}
    assert set(by_model) == {"NVIDIA H100 80GB HBM3", "NVIDIA H200", "(unallocated)"}
    by_ns = _json(["report", "utilization", "--db", str(cost_store), "--by", "namespace", "--json"])["utilization"]
    total = sum(r["allocated_gpu_hours"] for r in by_ns)
    assert sum(r["allocated_gpu_hours"] for r in by_model.values()) == pytest.approx(total)
    p = rep.priced(src, load_catalog(), W).filter(pl.col("namespace").is_not_null())
    h100 = float(p.filter(pl.col("gpu_model") == "NVIDIA H100 80GB HBM3")["gpu_hours"].sum())
    assert by_model["NVIDIA H100 80GB HBM3"]["allocated_gpu_hours"] == pytest.approx(h100)
    work = {r["workload"]: r for r in _json(["report", "utilization", "--db", str(cost_store), "--by", "workload",
                                             "--json"])["utilization"]}
    pods = p.select(pl.concat_str("namespace", pl.lit("/"), "pod")).to_series().unique().to_list()
    assert set(work) == {*pods, "(unallocated)"}
    for w in work.values():
        assert 0.0 <= w["efficiency"] <= 1.0
    r = CliRunner().invoke(app, ["report", "utilization", "--db", str(cost_store), "--by", "pod"])
    assert r.exit_code == 2 and "--by 'pod': use one of team, namespace, node, cluster, model, workload" in r.output


def test_cli_energy(cost_store, src):
    per_gpu = _json(["report", "energy", "--db", str(cost_store), "--by", "gpu", "--json"])
    per_team = _json(["report", "energy", "--db", str(cost_store), "--by", "team", "--json"])
    assert len(per_gpu) == 16
    kwh = sum(r["gpu_kwh"] for r in per_gpu)
    assert kwh > 0 and sum(r["gpu_kwh"] for r in per_team) == pytest.approx(kwh)
    # Same numbers as the model: PUE 1.2, $0.10/kWh and 475 g/kWh from the shipped catalog.
    for r in per_team:
        assert r["facility_kwh"] == pytest.approx(1.2 * r["gpu_kwh"])
        assert r["energy_usd"] == pytest.approx(0.10 * r["facility_kwh"])
        assert r["kg_co2e"] == pytest.approx(0.475 * r["facility_kwh"])
    assert {r["team"] for r in per_team} >= {"research", "assistant", "(unallocated)"}
    r = CliRunner().invoke(app, ["report", "energy", "--db", str(cost_store), "--by", "pod"])
    assert r.exit_code == 2 and "--by 'pod'" in r.output


def test_cli_whatif_pricing_and_rightsizing(cost_store, src, tmp_path):
    out = _json(["report", "whatif", "--db", str(cost_store), "--json"])
    pricing = {r["gpu_model"]: r for r in out["pricing"]}
    h100 = pricing["NVIDIA H100 80GB HBM3"]
    p = rep.priced(src, load_catalog(), W)
    used = float(p.filter(pl.col("namespace").is_not_null() & (pl.col("gpu_model") == "NVIDIA H100 80GB HBM3"))
                 ["gpu_hours"].sum())
    hours = p["ts"].n_unique()
    assert h100["gpus"] == 8 and h100["window_hours"] == hours
    assert h100["allocated_gpu_hours"] == pytest.approx(used)
    assert h100["on_demand_usd"] == pytest.approx(used * 6.88)
    assert h100["reserved_usd"] == pytest.approx(8 * hours * 6.88 * 0.43)
    assert h100["spot_usd"] == pytest.approx(used * 1.1 * 6.88 * 0.55)
    assert h100["break_even_utilization"] == pytest.approx(0.43)
    busy = used / (8 * hours)
    assert h100["advice"].endswith("reserve" if busy >= 0.43 else "stay on demand")
    # no probe results in this store: rightsizing is empty, with a note saying what to run
    assert out["rightsizing"] == [] and "gpufleet probe run" in out["note"]
