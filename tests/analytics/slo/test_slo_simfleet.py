"""The simulated fleet's induced incidents show up as budget burn; quiet hours do not burn.

A small store is built through the real pipeline (render -> parse -> adapt -> DuckDB). With seed 7 and
2 nodes the first half day holds two serving incidents from the fault schedule: an overload (2.2x
traffic for 90 minutes) and a GPU that falls off the bus (XID 79) under a serving replica, which then
fails every request. The test reads the schedule rather than hard-coding times.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gpufleet.analytics.slo.report import default_specs, slo_report
from gpufleet.core.simfleet import FleetConfig, SimulatedFleet
from gpufleet.core.store import open_readonly
from gpufleet.history import HistoryPlan, build_history
from gpufleet.main import main

END = 1_767_225_600.0 + 43_200  # 2026-01-01 12:00 UTC
PLAN = HistoryPlan(days=0.5, step_s=300, end=END)
CFG = FleetConfig(nodes=2, seed=7)


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None)


def _incidents() -> dict[str, tuple[str, datetime, datetime]]:
    """Service -> (kind, start, end) of the serving incidents the schedule induces in the plan."""
    fleet = SimulatedFleet(CFG.model_copy(update={"start": PLAN.start}))
    service_of = {t.labels["pod"].rsplit("-", 1)[0]: t.labels["service"] for t in fleet.targets()
                  if t.kind == "engine"}
    gpu_owner = {g.uuid: w.name for w in fleet.topo.workloads if w.kind == "inference" for g, _ in w.gpus}
    out = {}
    for f in fleet.faults_between(PLAN.start, PLAN.end):
        workload = gpu_owner.get(f.target) if f.kind == "lost" else f.target
        if f.kind in ("lost", "overload", "errors") and workload in service_of:
            out[service_of[workload]] = (f.kind, _utc(f.start), _utc(min(f.end, PLAN.end)))
    return out


INCIDENTS = _incidents()


@pytest.fixture(scope="module")
def sim_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Half a day of 2 nodes every 5 minutes, landed through the real pipeline."""
    db = tmp_path_factory.mktemp("slo-sim") / "fleet.duckdb"
    report = build_history(db, CFG, PLAN, workers=1)
    assert report.landed > 0 and not report.rejected
    return db


def test_schedule_has_both_incident_kinds() -> None:
    """The seed induces a lost GPU under one service and an overload of another within the half day."""
    kinds = sorted(k for k, _, _ in INCIDENTS.values())
    assert kinds == ["lost", "overload"]


def _budget(db: Path, service: str, name: str, end: datetime, window: timedelta) -> float | None:
    specs = [s for s in default_specs([service]) if s.name == name]
    with open_readonly(db) as con:
        (row,) = slo_report(con, specs, end=end, window_s=window.total_seconds())
    assert row.budget is not None
    return row.budget.burn_rate


# the SLO each incident kind should burn: failed requests, or slow first tokens under queueing
SLO_OF = {"lost": "availability", "errors": "availability", "overload": "ttft-2s"}


def test_incident_windows_burn_quiet_windows_do_not(sim_db: Path) -> None:
    """Over an incident the burn rate is far above 1; over the quiet morning every SLO burns below 1."""
    first = min(start for _, start, _ in INCIDENTS.values())
    quiet_end = first - timedelta(minutes=5)
    quiet = quiet_end - _utc(PLAN.start) - timedelta(minutes=30)
    for service, (kind, start, end) in INCIDENTS.items():
        burn = _budget(sim_db, service, SLO_OF[kind], end, end - start - timedelta(minutes=5))
        assert burn is not None and burn > 10, (service, kind, burn)
        for name in ("availability", "ttft-2s"):
            calm = _budget(sim_db, service, name, quiet_end, quiet)
            assert calm is not None and calm < 1, (service, name, calm)


def test_report_states_during_and_before_incidents(sim_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``gpufleet report slo --json``: pages at the end of the incidents, all ok before them."""
    args = ["report", "slo", "--db", str(sim_db), "--window", "7d", "--json"]
    assert main(args) == 0
    rows = {r["slo"]: r for r in json.loads(capsys.readouterr().out)}
    for service, (kind, _, _) in INCIDENTS.items():
        row = rows[f"{service}/{SLO_OF[kind]}"]
        assert row["status"] == "page", row
        assert row["budget_remaining"] < 0 and row["hours_to_exhaustion"] == 0.0
        assert row["burn_windows"][0]["firing"] is True
        assert [d["met"] for d in row["days"] if d["met"] is not None] == [False]
    first = min(start for _, start, _ in INCIDENTS.values()) - timedelta(minutes=5)
    assert main([*args, "--end", first.isoformat()]) == 0
    before = json.loads(capsys.readouterr().out)
    assert {r["status"] for r in before} == {"ok"}
    assert all(r["budget_remaining"] > 0 for r in before)


def test_report_table_names_every_slo(sim_db: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The human table lists each SLO with its state."""
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["report", "slo", "--db", str(sim_db)]) == 0
    out = capsys.readouterr().out
    for service in INCIDENTS:
        assert f"{service}/availability" in out
    assert "page" in out
