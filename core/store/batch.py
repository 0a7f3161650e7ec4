"""A normalised scrape, ready for the writer: what one target said at one instant."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

__all__ = ["SeriesDef", "Batch", "series_id_for", "GpuRow", "NodeRow", "AllocationRow", "ProbeRow"]


def series_id_for(target: str, metric: str, labels: dict[str, str]) -> int:
    """Stable 63-bit id of a series: the same target, name and labels give the same id everywhere."""
    key = json.dumps([target, metric, sorted(labels.items())], separators=(",", ":"))
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 1


@dataclass(frozen=True)
class SeriesDef:
    """A series in canonical form (native metric name, canonical label names, base units)."""

    series_id: int
    metric: str
    kind: str  # gauge | counter | histogram
    target: str
    labels: dict[str, str]
    source_metric: str


@dataclass(frozen=True)
class GpuRow:
    gpu_uuid: str
    cluster: str | None
    node: str | None
    gpu_index: str | None
    gpu_model: str | None
    mig_profile: str | None


@dataclass(frozen=True)
class NodeRow:
    node: str
    cluster: str | None
    provider: str | None
    region: str | None
    instance_type: str | None
    pricing_category: str | None
    gpu_model: str | None
    gpu_count: int | None


@dataclass(frozen=True)
class AllocationRow:
    gpu_uuid: str
    cluster: str | None
    node: str | None
    namespace: str | None
    pod: str | None
    container: str | None
    share: float  # fraction of the GPU held (1 for a whole GPU, 1/N time-sliced, slices/7 for MIG)


@dataclass(frozen=True)
class ProbeRow:
    cluster: str | None
    node: str | None
    gpu_uuid: str | None
    gpu_model: str | None
    probe: str
    value: float
    unit: str


@dataclass
class Batch:
    """Everything one scrape of ``target`` at ``scrape_ts`` (epoch seconds) contributes."""

    target: str
    scrape_ts: float
    interval_hint_s: float = 0.0
    series: dict[int, SeriesDef] = field(default_factory=dict)
    gauges: list[tuple[int, float, float]] = field(default_factory=list)
    counters: list[tuple[int, float, float]] = field(default_factory=list)
    buckets: list[tuple[int, float, float, float]] = field(default_factory=list)  # sid, ts, le, value
    gpus: list[GpuRow] = field(default_factory=list)
    nodes: list[NodeRow] = field(default_factory=list)
    namespaces: dict[str, str | None] = field(default_factory=dict)
    allocations: list[AllocationRow] = field(default_factory=list)
    probes: list[ProbeRow] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def sample_count(self) -> int:
        return len(self.gauges) + len(self.counters) + len(self.buckets)
