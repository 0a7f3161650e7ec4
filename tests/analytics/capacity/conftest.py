"""A simulated fleet's history in a real DuckDB store, four days of four nodes at 30-minute scrapes."""

from pathlib import Path

import duckdb
import pytest

from gpufleet.core.simfleet import FleetConfig
from gpufleet.history import HistoryPlan, build_history

END = 1_767_225_600.0 + 4 * 86400


@pytest.fixture(scope="session")
def sim_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("capacity") / "fleet.duckdb"
    build_history(db, FleetConfig(nodes=4, seed=3), HistoryPlan(days=4, step_s=1800, end=END))
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
