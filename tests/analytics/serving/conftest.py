from pathlib import Path

import pytest

from gpufleet.core.simfleet import FleetConfig
from gpufleet.history import HistoryPlan, build_history

END = 1_767_830_400.0  # 2026-01-08 00:00 UTC


@pytest.fixture(scope="session")
def serving_store(tmp_path_factory) -> Path:
    """A 2-node simulated store, 0.25 day every 300 s, landed through the real pipeline."""
    path = tmp_path_factory.getbasetemp() / "serving-demo.duckdb"
    if not path.exists():
        build_history(path, FleetConfig(nodes=2), HistoryPlan(days=0.25, step_s=300, end=END), workers=1)
    return path
