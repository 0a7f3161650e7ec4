from pathlib import Path

import pytest

from gpufleet.core.simfleet import FleetConfig
from gpufleet.history import HistoryPlan, build_history

END = 1_767_830_400.0  # 2026-01-08 00:00 UTC


@pytest.fixture(scope="session")
def cost_store(tmp_path_factory) -> Path:
    """A 2-node (16-GPU), 1-day simulated store, every 600 s, through the real pipeline."""
    path = tmp_path_factory.getbasetemp() / "cost-demo.duckdb"
    if not path.exists():
        build_history(path, FleetConfig(nodes=2), HistoryPlan(days=1, step_s=600, end=END))
    return path
