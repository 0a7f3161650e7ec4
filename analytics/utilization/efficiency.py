"""Allocated vs used GPU-hours per group, from allocations and activity gauges."""

from __future__ import annotations

import polars as pl

__all__ = ["ACTIVITY_PREFERENCE", "gpu_activity", "utilization_by"]

# Best activity signal first: SM active (GPM/DCGM), then graphics-engine active, then NVML utilization.
ACTIVITY_PREFERENCE = ("gpufleet_gpu_sm_active_ratio", "gpufleet_gpu_graphics_engine_active_ratio",
                       "gpufleet_gpu_utilization_ratio")


def gpu_activity(util: pl.DataFrame) -> pl.DataFrame:
    """Hourly activity (0-1) per GPU from the best signal present for that GPU."""
    rank = {m: i for i, m in enumerate(ACTIVITY_PREFERENCE)}
    df = (util.filter(pl.col("mig_instance").is_null())
          .with_columns(rank=pl.col("metric").replace_strict(rank, default=99),
                        activity=pl.col("sum") / pl.col("count").cast(pl.Float64)))
    best = df.group_by("gpu_uuid").agg(pl.col("rank").min().alias("best"))
    return (df.join(best, on="gpu_uuid").filter(pl.col("rank") == pl.col("best"))
            .group_by("ts", "gpu_uuid").agg(pl.col("activity").mean(), pl.col("metric").first().alias("signal")))


def utilization_by(alloc: pl.DataFrame, util: pl.DataFrame, by: str = "namespace") -> pl.DataFrame:
    """Allocated GPU-hours, used GPU-hours (allocated x activity) and efficiency per ``by`` group.

    Free GPU time (no namespace) is reported under ``(unallocated)``.
    """
    act = gpu_activity(util)
    df = (alloc.join(act, on=["ts", "gpu_uuid"], how="left")
          .with_columns(gpu_hours=pl.col("gpu_seconds") / 3600, activity=pl.col("activity").fill_null(0.0)))
    df = df.with_columns(pl.when(pl.col("namespace").is_null()).then(pl.lit("(unallocated)"))
                         .otherwise(pl.col(by)).fill_null("(unknown)").alias(by))
    return (df.group_by(by).agg(allocated_gpu_hours=pl.col("gpu_hours").sum(),
                                used_gpu_hours=(pl.col("gpu_hours") * pl.col("activity")).sum())
            .with_columns(efficiency=pl.when(pl.col("allocated_gpu_hours") > 0)
                          .then(pl.col("used_gpu_hours") / pl.col("allocated_gpu_hours")).otherwise(0.0))
            .sort("allocated_gpu_hours", descending=True))
