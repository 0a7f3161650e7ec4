"""The simulated fleet: realistic GPU, serving and training telemetry with faults, as exposition text."""

from gpufleet.core.simfleet.config import FleetConfig
from gpufleet.core.simfleet.fleet import SimTarget, SimulatedFleet

__all__ = ["FleetConfig", "SimTarget", "SimulatedFleet"]
