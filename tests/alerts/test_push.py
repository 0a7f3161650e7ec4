"""``gpufleet alerts push`` against a real Alertmanager: degraded probe verdicts fire, then resolve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from gpufleet.alerts.analytics_alerts import capacity_alerts, probe_alerts
from gpufleet.main import main

AM_CONFIG = """
route: {receiver: blackhole, group_wait: 1s}
receivers: [{name: blackhole}]
"""


def _active(get_json: Any, url: str) -> list[dict[str, Any]]:
    return [a for a in get_json(url + "/api/v2/alerts") if a["labels"].get("source") == "gpufleet-analytics"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("push")
    results, db = tmp / "sim.json", tmp / "store.duckdb"
    assert main(["probe", "run", "--backend", "sim", "--nodes", "2", "--out", str(results), "--json"]) == 0
    assert main(["probe", "ingest", "--db", str(db), "--results", str(results), "--json"]) == 0
    return db


def test_probe_alerts_table() -> None:
    rows: list[dict[str, Any]] = [
        {"gpu_uuid": "GPU-a", "node": "n1", "gpu_model": "H100", "cluster": "c", "ts": "t", "verdict": "degraded",
         "lost_ratio": 0.125, "lost_usd_per_day": 20.64},
        {"gpu_uuid": "GPU-b", "node": "n1", "gpu_model": "H100", "cluster": None, "ts": "t", "verdict": "failed",
         "lost_ratio": 1.0, "lost_usd_per_day": None},
        {"gpu_uuid": "GPU-c", "node": "n1", "gpu_model": "H100", "cluster": None, "ts": "t", "verdict": "healthy",
         "lost_ratio": 0.0, "lost_usd_per_day": None},
    ]
    alerts = probe_alerts(rows)
    assert [(a.labels["alertname"], a.labels["severity"], a.labels["gpu_uuid"]) for a in alerts] == [
        ("GpuProbeDegraded", "warning", "GPU-a"), ("GpuProbeFailed", "critical", "GPU-b")]
    assert "12.5% below its expected throughput, about $20.64/day" in alerts[0].annotations["description"]
    assert alerts[0].labels["cluster"] == "c" and "cluster" not in alerts[1].labels


def test_capacity_alerts_table() -> None:
    rows = [{"service": "chat", "peak_rps": 12.0, "replicas": 5, "replicas_now": 3},
            {"service": "code", "peak_rps": 1.0, "replicas": 1, "replicas_now": 2},
            {"service": "x", "peak_rps": 0.0, "replicas_now": 1, "error": "no measured throughput"}]
    alerts = capacity_alerts(rows)
    assert [a.labels["service"] for a in alerts] == ["chat"]
    assert "needs 5 replica(s)" in alerts[0].annotations["description"]


def test_push_fires_resends_and_resolves(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         start_alertmanager: Any, http_json: Any) -> None:
    state = tmp_path / "state.json"
    with start_alertmanager(tmp_path, AM_CONFIG) as url:
        args = ["alerts", "push", "--db", str(store), "--alertmanager", url, "--state", str(state), "--json"]
        assert main(args) == 0
        first = json.loads(capsys.readouterr().out)
        assert first["firing"] == 1 and first["resolved"] == 0
        uuid = first["alerts"][0]["gpu_uuid"]
        active = _active(http_json, url)
        assert [(a["labels"]["alertname"], a["labels"]["gpu_uuid"]) for a in active] == [("GpuProbeDegraded", uuid)]
        assert active[0]["status"]["state"] == "active"
        started = active[0]["startsAt"]

        # still firing: resent with the same startsAt
        assert main(args) == 0
        assert json.loads(capsys.readouterr().out)["firing"] == 1
        again = _active(http_json, url)
        assert len(again) == 1 and again[0]["startsAt"] == started

        # the GPU is repaired and re-probed healthy: the alert resolves
        con = duckdb.connect(str(store))
        con.execute("UPDATE probe_results SET value = CASE WHEN probe = 'verdict_healthy' THEN 1 ELSE 0 END "
                    "WHERE gpu_uuid = ? AND probe LIKE 'verdict_%'", [uuid])
        con.close()
        assert main(args) == 0
        last = json.loads(capsys.readouterr().out)
        assert last == {"firing": 0, "resolved": 1, "alerts": [], "notes": last["notes"]}
        assert _active(http_json, url) == []
        assert json.loads(state.read_text()) == {}


def test_push_names_bad_input(tmp_path: Path) -> None:
    assert main(["alerts", "push", "--db", str(tmp_path / "none.duckdb"), "--alertmanager", "http://127.0.0.1:1"]) == 2
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    assert main(["alerts", "push", "--db", str(db), "--alertmanager", "127.0.0.1:9093"]) == 2
    # one alert to resolve, and nobody listening: exit 1, the state is kept for the next try
    state = tmp_path / "state.json"
    old = {"k": {"labels": {"alertname": "GpuProbeDegraded"}, "startsAt": "2026-01-01T00:00:00.000000Z"}}
    state.write_text(json.dumps(old))
    args = ["alerts", "push", "--db", str(db), "--alertmanager", "http://127.0.0.1:1", "--state", str(state)]
    assert main(args) == 1
    assert json.loads(state.read_text()) == old
