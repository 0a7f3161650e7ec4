"""What the sampler publishes and a scrape renders: per-GPU series in native names and base units."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from gpufleet.exporters.backend import DeviceIdentity, MigInstance

__all__ = ["Series", "GpuState", "Snapshot"]

Labels = tuple[tuple[str, str], ...]


class Series(NamedTuple):
    """One value: native metric name, labels beyond the GPU's identity (native label names), value."""

    name: str
    labels: Labels
    value: float


@dataclass
class GpuState:
    """Latest readings of one GPU; replaced field by field, never mutated in place by readers."""

    identity: DeviceIdentity
    up: bool = True
    fast: tuple[Series, ...] = ()
    slow: tuple[Series, ...] = ()
    migs: tuple[MigInstance, ...] = ()


@dataclass
class Snapshot:
    """A consistent view for one scrape."""

    gpus: list[GpuState]
    xids: dict[str, dict[int, float]] = field(default_factory=dict)
    last_xid: dict[str, float] = field(default_factory=dict)
    xid_seen: dict[str, dict[int, float]] = field(default_factory=dict)  # uuid -> xid -> unix time last seen
    clock_events: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: dict[tuple[str, str], float] = field(default_factory=dict)
    reinits: float = 0.0
    durations: dict[str, float] = field(default_factory=dict)
    ages: dict[str, float] = field(default_factory=dict)
    driver_version: str = ""
