"""The ``Source`` interface every report reads through, and the schema of each frame it answers.

``Source`` is the cost layer's :class:`~gpufleet.analytics.cost.query.CostSource` under its general
name; :class:`~gpufleet.analytics.cost.query.DuckDBSource` (the default) implements it over the store,
:mod:`.prometheus` over a Prometheus-compatible HTTP API and :mod:`.parquet` over Parquet rollups.
"""

from __future__ import annotations

import polars as pl

from gpufleet.analytics.cost.query import CostSource, DuckDBSource, Window

__all__ = ["Source", "DuckDBSource", "Window", "FRAMES", "empty", "conform"]

Source = CostSource

_S = pl.String()
_TS = pl.Datetime("us")

# Frame name -> columns and types, in the order the DuckDB source answers them.
FRAMES: dict[str, dict[str, pl.DataType]] = {
    "allocations": {"ts": _TS, "gpu_uuid": _S, "cluster": _S, "node": _S, "gpu_model": _S, "mig_profile": _S,
                    "provider": _S, "region": _S, "instance_type": _S, "pricing_category": _S, "namespace": _S,
                    "team": _S, "pod": _S, "container": _S, "gpu_seconds": pl.Float64()},
    "utilization": {"ts": _TS, "metric": _S, "gpu_uuid": _S, "mig_instance": _S, "namespace": _S, "pod": _S,
                    "sum": pl.Float64(), "count": pl.Int64()},
    "energy": {"ts": _TS, "gpu_uuid": _S, "joules": pl.Float64()},
    "serving": {"metric": _S, "model": _S, "service": _S, "namespace": _S, "pod": _S, "node": _S, "outcome": _S,
                "value": pl.Float64()},
    "requests": {"namespace": _S, "pod": _S, "container": _S, "gpus_requested": pl.Float64()},
    "probes": {"gpu_model": _S, "probe": _S, "unit": _S, "value": pl.Float64(), "n": pl.Int64()},
    "prices": {"provider": _S, "region": _S, "gpu_model": _S, "pricing_category": _S,
               "usd_per_gpu_hour": pl.Float64(), "effective_from": pl.Date(), "source": _S},
}


def empty(frame: str) -> pl.DataFrame:
    """An empty frame with the columns and types of ``frame``."""
    return pl.DataFrame(schema=FRAMES[frame])


def conform(frame: str, df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with exactly the columns of ``frame``, in order and cast to their types (missing ones null)."""
    cols = FRAMES[frame]
    return df.select([(pl.col(c) if c in df.columns else pl.lit(None)).cast(t).alias(c) for c, t in cols.items()])
