"""Fleet state: GPUs by model and state, live health, lost GPUs and XIDs (pure functions + a query layer)."""

from gpufleet.analytics.fleet.health import (
    STATES,
    HealthRules,
    by_model_state,
    classify,
    lost_gpus,
    xid_summary,
)
from gpufleet.analytics.fleet.query import FleetSnapshot, load_snapshot, store_range

__all__ = [
    "STATES", "HealthRules", "by_model_state", "classify", "lost_gpus", "xid_summary",
    "FleetSnapshot", "load_snapshot", "store_range",
]
