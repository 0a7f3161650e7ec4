"""The embedded DuckDB store: one writer, read-only readers, rollups and retention."""

from gpufleet.core.store.batch import (
    AllocationRow,
    Batch,
    GpuRow,
    NodeRow,
    ProbeRow,
    SeriesDef,
    series_id_for,
)
from gpufleet.core.store.maintenance import Retention, maintain
from gpufleet.core.store.reader import open_readonly, summary
from gpufleet.core.store.writer import StoreError, StoreWriter, WriteReport

__all__ = [
    "AllocationRow", "Batch", "GpuRow", "NodeRow", "ProbeRow", "SeriesDef", "series_id_for",
    "Retention", "maintain", "open_readonly", "summary", "StoreError", "StoreWriter", "WriteReport",
]
