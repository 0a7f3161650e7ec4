"""Failure taxonomy, MTTF scaling, ETTR/goodput closed forms, and the simulated fleet's faults in the report."""

import json
import math

import duckdb
import pytest
from typer.testing import CliRunner

from gpufleet.analytics.reliability.goodput import ettr, ml_goodput, young_interval_s
from gpufleet.analytics.reliability.mttf import failure_rate, job_mttf_hours, mttf_hours
from gpufleet.analytics.reliability.report import _lemons, reliability_report
from gpufleet.analytics.reliability.taxonomy import CATEGORIES, category_of
from gpufleet.core.simfleet import FleetConfig
from gpufleet.history import HistoryPlan, build_history
from gpufleet.main import app


@pytest.mark.parametrize(("kind", "code", "fclass", "expected"), [
    ("xid", 79, None, "GPU"), ("xid", 119, None, "GPU"), ("xid", 48, None, "HBM"), ("xid", 64, None, "HBM"),
    ("xid", 94, None, "HBM"), ("xid", 61, None, "SRAM"), ("xid", 74, None, "NVLink/network"),
    ("xid", 13, None, "software/application"), ("xid", 31, None, "software/application"),
    ("xid", 999, None, "GPU"), ("node_down", None, None, "host"), ("nccl", None, None, "NVLink/network"),
    ("xid", 79, "host", "host"),  # a stored failure class wins
])
def test_taxonomy(kind, code, fclass, expected) -> None:
    assert category_of(kind, code, fclass) == expected
    assert expected in CATEGORIES


@pytest.mark.parametrize("gpus", [1, 8, 1024, 16384])
def test_job_mttf_scales_as_one_over_n_rate(gpus: int) -> None:
    rate = failure_rate(3, 30_000.0)  # 3 failures in 30k GPU-hours
    assert job_mttf_hours(rate, gpus) == pytest.approx(1 / (gpus * 1e-4))
    assert job_mttf_hours(rate, gpus) * gpus == pytest.approx(mttf_hours(3, 30_000.0))


def test_llama3_scale_mttf() -> None:
    # 419 unexpected interruptions in 54 days on 16,384 GPUs -> one every ~3.1 hours for the whole job
    rate = failure_rate(419, 54 * 24 * 16384)
    assert job_mttf_hours(rate, 16384) == pytest.approx(54 * 24 / 419)


@pytest.mark.parametrize(("mttf", "tau", "restart", "cost", "expected"), [
    (math.inf, 1800, 600, 0, 1.0),
    (36000, 1800, 600, 0, 1 - 1500 / 36000),
    (36000, 1800, 600, 180, 0.9 * (1 - 1500 / 36000)),
    (1000, 1800, 600, 0, 0.0),  # failing faster than a checkpoint plus restart: nothing productive
])
def test_ettr_closed_form(mttf, tau, restart, cost, expected) -> None:
    assert ettr(mttf, tau, restart, cost) == pytest.approx(expected)


def test_goodput_product_and_young() -> None:
    g = ml_goodput(0.95, 0.9, 0.45)
    assert g.total == pytest.approx(0.95 * 0.9 * 0.45)
    assert young_interval_s(3600 * 8, 60) == pytest.approx(math.sqrt(2 * 60 * 3600 * 8))
    with pytest.raises(ValueError, match="runtime goodput"):
        ml_goodput(1, 1.5, 1)


@pytest.mark.parametrize(("counts", "lemons"), [
    ({"a": 1, "b": 1, "c": 9, "d": 0}, {"c"}),
    ({"a": 2, "b": 2, "c": 2}, set()),  # uniform failures: nobody stands out
    ({"a": 0, "b": 0, "c": 2}, set()),  # below the minimum count
])
def test_lemon_nodes(counts, lemons) -> None:
    assert _lemons(counts, 3, 3.0) == lemons


@pytest.fixture(scope="module")
def fleet_store(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("reliability") / "fleet.duckdb"
    end = 1_767_225_600.0 + 86400
    build_history(db, FleetConfig(nodes=4, fault_scale=20), HistoryPlan(days=1, step_s=600, end=end))
    return db


def test_simulated_faults_appear_with_their_taxonomy(fleet_store) -> None:
    con = duckdb.connect(str(fleet_store), read_only=True)
    events = con.execute("SELECT code, severity, sum(count) FROM events WHERE kind = 'xid' GROUP BY ALL").fetchall()
    report = reliability_report(con, "day", job_gpus=1024)
    con.close()
    assert events, "the simulated fleet injects XIDs at this fault scale"
    want: dict[str, int] = {}
    warn: dict[str, int] = {}
    for code, severity, n in events:
        target = want if severity in ("critical", "application") else warn
        cat = category_of("xid", code, None)
        target[cat] = target.get(cat, 0) + int(n)
    got = {c.category: c.interruptions for c in report.categories if c.interruptions}
    got_warn = {c.category: c.warnings for c in report.categories if c.warnings}
    assert got == want and got_warn == warn
    assert sum(c.share for c in report.categories) == pytest.approx(len({c.period for c in report.categories}))
    assert report.interruptions == sum(want.values())
    assert report.gpu_hours == pytest.approx(sum(n.gpus * n.hours for n in report.nodes))
    assert report.gpu_mttf_hours == pytest.approx(report.gpu_hours / report.interruptions)
    assert report.job_mttf_hours == pytest.approx(report.gpu_mttf_hours / 1024)
    # the checkpoint interval that suits this failure rate, beside the configured one
    mttf_s = report.job_mttf_hours * 3600
    assert report.young_interval_s == pytest.approx(young_interval_s(mttf_s, 30.0))
    assert report.young_ettr == pytest.approx(ettr(mttf_s, report.young_interval_s, 600.0, 30.0))
    assert sum(n.interruptions for n in report.nodes) == report.interruptions


def test_report_reliability_cli(fleet_store) -> None:
    res = CliRunner().invoke(app, ["report", "reliability", "--db", str(fleet_store), "--job-gpus", "8", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    cats = {c["category"] for c in data["interruptions by class"]}
    assert cats <= set(CATEGORIES) and "HBM" in cats
    assert data["summary"]["job_gpus"] == 8
    assert 0 <= data["summary"]["ettr"] <= 1 and 0 <= data["summary"]["young_ettr"] <= 1
    res = CliRunner().invoke(app, ["report", "reliability", "--db", str(fleet_store), "--period", "month"])
    assert res.exit_code == 2 and "period must be hour, day or week" in " ".join(res.output.split())
