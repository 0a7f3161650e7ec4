"""Cost anomalies: the detector on hand-made spend, and ``gpufleet alerts push`` firing and resolving them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from gpufleet.alerts.analytics_alerts import cost_alerts
from gpufleet.analytics.cost.anomaly import bucket_costs, detect_anomalies
from gpufleet.core.simfleet import FleetConfig
from gpufleet.history import HistoryPlan, build_history
from gpufleet.main import main

START = dt.datetime(2026, 1, 1)
DAY = dt.timedelta(days=1)
AM_CONFIG = """
route: {receiver: blackhole, group_wait: 1s}
receivers: [{name: blackhole}]
"""


def _spend(rows: dict[str, list[float]]) -> pl.DataFrame:
    """One priced row per team and day: ``ts`` at the day's start, ``cost_usd`` as given."""
    out = [{"ts": START + i * DAY, "namespace": f"ns-{team}", "team": team, "cost_usd": float(c)}
           for team, costs in rows.items() for i, c in enumerate(costs)]
    return pl.DataFrame(out)


@pytest.mark.parametrize(("costs", "fires", "baseline", "threshold"), [
    ([100, 100, 100, 100, 100, 100, 100, 140], True, 100, 125),      # MAD 0: the 25% floor decides
    ([100, 100, 100, 100, 100, 100, 100, 120], False, 100, 125),     # +20%: under the floor
    ([80, 120, 90, 110, 100, 70, 130, 190], True, 100, 100 + 3 * 1.4826 * 20),
    ([80, 120, 90, 110, 100, 70, 130, 185], False, 100, 100 + 3 * 1.4826 * 20),
    ([100, 900, 100, 100, 100, 100, 100, 300], True, 100, 125),      # an old spike does not lift the median
    ([0, 0, 0, 0, 0, 0, 0, 0.5], False, 0, 1),                       # under the $1 minimum
    ([0, 0, 0, 0, 0, 0, 0, 5], True, 0, 1),                          # new spend
])
def test_detect_anomalies_table(costs: list[float], fires: bool, baseline: float, threshold: float) -> None:
    priced = _spend({"a": costs})
    found = detect_anomalies(bucket_costs(priced, START, DAY), start=START, bucket=DAY, baseline=7)
    assert [a.group for a in found] == (["a"] if fires else [])
    if fires:
        a = found[0]
        assert a.cost_usd == costs[-1] and a.baseline_usd == baseline
        assert a.threshold_usd == pytest.approx(threshold)
        assert a.bucket_start == START + 7 * DAY and a.bucket_hours == 24


def test_missing_days_count_as_zero_and_idle_is_ignored() -> None:
    priced = pl.concat([
        _spend({"a": [10, 10, 10, 10, 10, 10, 10, 10]}),
        pl.DataFrame([{"ts": START + 7 * DAY, "namespace": None, "team": None, "cost_usd": 999.0}]),
        # team b only spent on day 7: baseline median $0
        pl.DataFrame([{"ts": START + 7 * DAY + dt.timedelta(hours=3), "namespace": "ns-b", "team": "b",
                       "cost_usd": 4.0}]),
    ])
    found = detect_anomalies(bucket_costs(priced, START, DAY), start=START, bucket=DAY, baseline=7)
    assert [(a.group, a.cost_usd, a.baseline_usd, a.ratio) for a in found] == [("b", 4.0, 0.0, None)]
    alert = cost_alerts(found)[0]
    assert alert.labels == {"alertname": "GpuCostAnomaly", "severity": "warning", "source": "gpufleet-analytics",
                            "team": "b"}
    assert alert.annotations["summary"] == "GPU spend of team b jumped (new spend) in the last 1d"
    assert "spent $4.00 on GPUs in the 1d from 2026-01-08 00:00 UTC" in alert.annotations["description"]


def test_detect_names_bad_input() -> None:
    with pytest.raises(ValueError, match="baseline 2"):
        detect_anomalies(bucket_costs(_spend({"a": [1.0]}), START, DAY), start=START, bucket=DAY, baseline=2)
    with pytest.raises(ValueError, match="no such column"):
        bucket_costs(_spend({"a": [1.0]}), START, DAY, by="workload")


def test_cost_alert_text() -> None:
    priced = _spend({"a": [100, 100, 100, 100, 100, 100, 100, 250]})
    found = detect_anomalies(bucket_costs(priced, START, DAY), start=START, bucket=DAY, baseline=7)
    alert = cost_alerts(found)[0]
    assert alert.annotations["summary"] == "GPU spend of team a jumped (2.5x) in the last 1d"
    assert alert.annotations["description"] == (
        "Team a spent $250.00 on GPUs in the 1d from 2026-01-08 00:00 UTC against a baseline median of "
        "$100.00 per 1d (alert threshold $125.00).")
    assert alert.annotations["runbook_url"] == "docs/runbooks/GpuCostAnomaly.md"
    assert Path(__file__).parents[2].joinpath(alert.annotations["runbook_url"]).is_file()


@pytest.fixture(scope="module")
def fleet_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-node, 1-day simulated store through the real pipeline (hourly allocation rollups)."""
    db = tmp_path_factory.mktemp("push-cost") / "store.duckdb"
    build_history(db, FleetConfig(nodes=2), HistoryPlan(days=1, step_s=600, end=1_767_830_400.0))
    return db


def _cost_active(get_json: Any, url: str) -> list[dict[str, Any]]:
    return [a for a in get_json(url + "/api/v2/alerts") if a["labels"]["alertname"] == "GpuCostAnomaly"]


def test_push_fires_and_resolves_cost_anomaly(fleet_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              start_alertmanager: Any, http_json: Any) -> None:
    state = tmp_path / "state.json"
    base = ["alerts", "push", "--db", str(fleet_store), "--state", str(state), "--json"]
    burst = """
        INSERT INTO gpu_allocations_1h
        SELECT a.ts, a.gpu_uuid, a.cluster, a.node, a.namespace, a.pod || '-burst-' || i::VARCHAR, a.container, 3600
        FROM gpu_allocations_1h a, range(8) t(i)
        WHERE a.namespace = 'search-serving' AND a.ts = (SELECT max(ts) FROM gpu_allocations_1h)
    """
    with start_alertmanager(tmp_path, AM_CONFIG) as url:
        args = [*base, "--alertmanager", url, "--cost-bucket", "1h", "--cost-baseline", "12"]
        # steady spend: no cost anomaly
        assert main(args) == 0
        quiet = json.loads(capsys.readouterr().out)
        assert [a for a in quiet["alerts"] if a["alertname"] == "GpuCostAnomaly"] == []
        assert _cost_active(http_json, url) == []

        # the search team suddenly holds 8 more GPUs for the newest hour
        con = duckdb.connect(str(fleet_store))
        con.execute(burst)
        con.close()
        assert main(args) == 0
        fired = [a for a in json.loads(capsys.readouterr().out)["alerts"] if a["alertname"] == "GpuCostAnomaly"]
        assert fired == [{"alertname": "GpuCostAnomaly", "severity": "warning", "source": "gpufleet-analytics",
                          "team": "search"}]
        active = _cost_active(http_json, url)
        assert [a["labels"]["team"] for a in active] == ["search"]
        assert active[0]["status"]["state"] == "active"
        assert active[0]["annotations"]["runbook_url"] == "docs/runbooks/GpuCostAnomaly.md"
        assert "team search jumped" in active[0]["annotations"]["summary"]

        # the burst is gone: the alert resolves
        con = duckdb.connect(str(fleet_store))
        con.execute("DELETE FROM gpu_allocations_1h WHERE pod LIKE '%-burst-%'")
        con.close()
        assert main(args) == 0
        last = json.loads(capsys.readouterr().out)
        assert [a for a in last["alerts"] if a["alertname"] == "GpuCostAnomaly"] == []
        assert last["resolved"] >= 1
        assert _cost_active(http_json, url) == []


def test_push_cost_options(fleet_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["alerts", "push", "--db", str(fleet_store), "--alertmanager", "http://127.0.0.1:1"]
    assert main([*base, "--cost-by", "model"]) == 2
    assert main([*base, "--cost-bucket", "soon"]) == 2
    assert main([*base, "--cost-baseline", "1"]) == 2
    # a day of history is too short for a week of daily buckets: a note, not an error
    from gpufleet.alerts.cli import CostCheck, collect

    alerts, notes = collect(fleet_store, CostCheck())
    assert not [a for a in alerts if a.labels["alertname"] == "GpuCostAnomaly"]
    assert "cost anomalies skipped: less than 8 buckets of 24h of allocation history" in notes
