"""Adapters: map each source's metric names, labels and units onto the canonical schema."""

from gpufleet.collectors.adapters.registry import FamilyMap, lookup

__all__ = ["FamilyMap", "lookup"]
