"""gpufleet: observability and FinOps for GPU fleets."""

__version__ = "0.1.0"
