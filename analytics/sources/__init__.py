"""Where the reports read from: the DuckDB store, a Prometheus-compatible API, or Parquet rollups."""

from gpufleet.analytics.sources.base import FRAMES, Source, Window, empty
from gpufleet.analytics.sources.spec import open_source

__all__ = ["FRAMES", "Source", "Window", "empty", "open_source"]
