from pathlib import Path

import pytest

from gpufleet.core.simfleet import FleetConfig
from gpufleet.history import HistoryPlan, build_history

END = 1_767_830_400.0  # 2026-01-08 00:00 UTC


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> Path:
    """A 4-node (32-GPU), 2-day simulated store, every 600 s, through the real pipeline."""
    path = tmp_path_factory.getbasetemp() / "fleet-demo.duckdb"
    if not path.exists():
        build_history(path, FleetConfig(nodes=4), HistoryPlan(days=2, step_s=600, end=END))
    return path
