"""Read-only access to the store for reports, the app and analytics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from gpufleet.core.store.writer import StoreError, connect

__all__ = ["open_readonly", "summary"]


def open_readonly(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open an existing store read-only; a missing file is an error, not an empty store."""
    if not Path(path).exists():
        raise StoreError(f"store {path} does not exist (create it with `gpufleet demo` or `gpufleet ingest`)")
    return connect(path, read_only=True)


def summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Headline facts about a store: GPUs, GPU-hours, series, samples and the time range."""

    def one(sql: str) -> Any:
        row = con.execute(sql).fetchone()
        return row[0] if row else None

    start, end = con.execute("SELECT min(scrape_ts), max(scrape_ts) FROM batches").fetchone() or (None, None)
    raw = {t: one(f"SELECT count(*) FROM {t}") for t in ("gauges", "counters", "histogram_buckets")}
    hours = one("SELECT coalesce(sum(gpu_seconds), 0) / 3600 FROM gpu_allocations_1h")
    if not hours:
        hours = one("SELECT coalesce(sum(interval_s * share), 0) / 3600 FROM gpu_allocations")
    allocated = one("SELECT coalesce(sum(gpu_seconds), 0) / 3600 FROM gpu_allocations_1h WHERE pod IS NOT NULL")
    return {
        "gpus": one("SELECT count(*) FROM gpus"),
        "nodes": one("SELECT count(*) FROM nodes"),
        "gpu_hours": round(float(hours or 0), 3),
        "allocated_gpu_hours": round(float(allocated or 0), 3),
        "series": one("SELECT count(*) FROM series"),
        "samples": sum(raw.values()),
        "samples_by_kind": raw,
        "batches": one("SELECT count(*) FROM batches"),
        "events": one("SELECT count(*) FROM events"),
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "days": round((end - start).total_seconds() / 86400, 3) if start and end else 0.0,
    }
