"""``ParquetSource``: the report frames from hive-partitioned Parquet rollups.

Local or on S3-compatible storage, read with polars (partition pruning on ``date``, predicate pushdown on ``ts``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import polars as pl

from gpufleet.analytics.cost.query import Window
from gpufleet.analytics.sources.base import conform, empty
from gpufleet.analytics.sources.layout import storage_options, table_glob

__all__ = ["ParquetSource"]


class ParquetSource:
    """Reads ``root`` as written by :func:`gpufleet.analytics.sources.export.export_parquet`."""

    def __init__(self, root: str, *, options: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.options = dict(options) if options is not None else storage_options(root)

    def _scan(self, table: str) -> pl.LazyFrame | None:
        try:
            lf = pl.scan_parquet(table_glob(self.root, table), hive_partitioning=True,
                                 storage_options=self.options)
            lf.collect_schema()
        except (FileNotFoundError, pl.exceptions.ComputeError, OSError):
            return None
        return lf

    def _hours(self, table: str, frame: str, w: Window) -> pl.DataFrame:
        lf = self._scan(table)
        if lf is None:
            return empty(frame)
        last_day = (w.end - dt.timedelta(microseconds=1)).date()
        df = (lf.filter(pl.col("date").cast(pl.Date).is_between(w.start.date(), last_day))
              .filter((pl.col("ts") >= w.start) & (pl.col("ts") < w.end)).collect())
        return df

    def window(self, length: dt.timedelta) -> Window:
        """The window of ``length`` ending at the newest hour of allocations."""
        lf = self._scan("gpu_allocations_1h")
        newest = lf.select(pl.col("ts").max()).collect().item() if lf is not None else None
        if newest is None:
            raise ValueError(f"{self.root} holds no gpu_allocations_1h rollups (export some with "
                             "`gpufleet export parquet`)")
        end = newest + dt.timedelta(hours=1)
        return Window(end - length, end)

    def allocations(self, w: Window) -> pl.DataFrame:
        """GPU-seconds per hour, GPU and holder, with node pricing facts and team."""
        return conform("allocations", self._hours("gpu_allocations_1h", "allocations", w))

    def utilization(self, w: Window) -> pl.DataFrame:
        """Hourly sum and count of the activity gauges."""
        return conform("utilization", self._hours("gpu_utilization_1h", "utilization", w))

    def energy(self, w: Window) -> pl.DataFrame:
        """Joules per hour and GPU."""
        return conform("energy", self._hours("gpu_energy_1h", "energy", w))

    def serving(self, w: Window) -> pl.DataFrame:
        """Serving counters summed over the window."""
        df = self._hours("serving_1h", "serving", w)
        keys = ["metric", "model", "service", "namespace", "pod", "node", "outcome"]
        return conform("serving", df.group_by(keys).agg(pl.col("value").sum()))

    def requests(self, w: Window) -> pl.DataFrame:
        """The largest GPU request per pod and container."""
        df = self._hours("gpu_requests_1h", "requests", w)
        return conform("requests", df.group_by("namespace", "pod", "container").agg(pl.col("gpus_requested").max()))

    def probes(self) -> pl.DataFrame:
        """Mean probe value per GPU model and probe, over every exported day."""
        lf = self._scan("probe_results")
        if lf is None:
            return empty("probes")
        df = lf.group_by("gpu_model", "probe", "unit").agg(value=pl.col("value").mean(), n=pl.len()).collect()
        return conform("probes", df)

    def prices(self) -> pl.DataFrame:
        """The exported price list."""
        lf = self._scan("prices")
        return empty("prices") if lf is None else conform("prices", lf.collect())
