"""A simulated fleet's history in a real DuckDB store: three weeks of four nodes at hourly scrapes."""

from pathlib import Path

import duckdb
import pytest

from gpufleet.core.simfleet import FleetConfig
from gpufleet.history import HistoryPlan, build_history

DAYS = 22
END = 1_767_225_600.0 + DAYS * 86400


@pytest.fixture(scope="session")
def sim_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("capacity") / "fleet.duckdb"
    build_history(db, FleetConfig(nodes=4, seed=3), HistoryPlan(days=DAYS, step_s=3600, end=END))
    return db


@pytest.fixture(scope="session")
def request_forecasts(sim_store: Path) -> list[dict]:
    from gpufleet.analytics.capacity.report import forecast_rows

    with duckdb.connect(str(sim_store), read_only=True) as con:
        return forecast_rows(con, "requests")


@pytest.fixture
def sim_con(sim_store: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(sim_store), read_only=True)
    yield con
    con.close()
