"""Energy, electricity cost and carbon from the GPU energy counter."""

from __future__ import annotations

import polars as pl

__all__ = ["JOULES_PER_KWH", "energy_report"]

JOULES_PER_KWH = 3.6e6


def energy_report(energy: pl.DataFrame, *, pue: float, usd_per_kwh: float, gco2_per_kwh: float,
                  by: str = "gpu_uuid") -> pl.DataFrame:
    """Per ``by`` group: GPU kWh, facility kWh (x PUE), electricity cost and kg CO2e."""
    return (energy.group_by(by).agg(gpu_kwh=pl.col("joules").sum() / JOULES_PER_KWH)
            .with_columns(facility_kwh=pl.col("gpu_kwh") * pue)
            .with_columns(energy_usd=pl.col("facility_kwh") * usd_per_kwh,
                          kg_co2e=pl.col("facility_kwh") * gco2_per_kwh / 1000)
            .sort(by))
