"""Energy, electricity cost and carbon from the GPU energy counter."""

from __future__ import annotations

import polars as pl

__all__ = ["JOULES_PER_KWH", "energy_report", "energy_by_workload"]

JOULES_PER_KWH = 3.6e6


def energy_report(energy: pl.DataFrame, *, pue: float, usd_per_kwh: float, gco2_per_kwh: float,
                  by: str = "gpu_uuid") -> pl.DataFrame:
    """Per ``by`` group: GPU kWh, facility kWh (x PUE), electricity cost and kg CO2e."""
    return (energy.group_by(by).agg(gpu_kwh=pl.col("joules").sum() / JOULES_PER_KWH)
            .with_columns(facility_kwh=pl.col("gpu_kwh") * pue)
            .with_columns(energy_usd=pl.col("facility_kwh") * usd_per_kwh,
                          kg_co2e=pl.col("facility_kwh") * gco2_per_kwh / 1000)
            .sort(by))


def energy_by_workload(energy: pl.DataFrame, alloc: pl.DataFrame, *, pue: float, usd_per_kwh: float,
                       gco2_per_kwh: float, by: str = "namespace") -> pl.DataFrame:
    """Split each GPU-hour's energy over its holders by their share of the time observed, then report per ``by``.

    Time nobody held (and hours with no allocation rows) lands under ``(unallocated)``.
    """
    held = alloc.group_by("ts", "gpu_uuid").agg(pl.col("gpu_seconds").sum().alias("held"))
    parts = (alloc.join(held, on=["ts", "gpu_uuid"])
             .with_columns(frac=pl.col("gpu_seconds") / pl.col("held")))
    parts = parts.with_columns(pl.when(pl.col("namespace").is_null()).then(pl.lit("(unallocated)"))
                               .otherwise(pl.col(by)).fill_null("(unknown)").alias(by))
    spread = (energy.join(parts.select("ts", "gpu_uuid", by, "frac"), on=["ts", "gpu_uuid"], how="left")
              .with_columns(pl.col(by).fill_null("(unallocated)"), pl.col("frac").fill_null(1.0))
              .with_columns(joules=pl.col("joules") * pl.col("frac")))
    return energy_report(spread, pue=pue, usd_per_kwh=usd_per_kwh, gco2_per_kwh=gco2_per_kwh, by=by)
