"""FOCUS 1.2 cost rows from priced GPU allocations."""

from __future__ import annotations

import datetime as dt

import polars as pl

__all__ = ["FOCUS_MANDATORY", "PRICING_CATEGORY", "focus_rows"]

FOCUS_MANDATORY = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodStart",
    "BillingPeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodStart",
    "ChargePeriodEnd", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
)
PRICING_CATEGORY = {"on_demand": "Standard", "reserved": "Committed", "spot": "Dynamic"}


def focus_rows(priced: pl.DataFrame, list_price: dict[tuple[str, str, str], float], *,
               account: str = "gpufleet", tokens: pl.DataFrame | None = None) -> pl.DataFrame:
    """One FOCUS row per hour, node, namespace and pod: a usage charge for GPU time.

    ``list_price`` maps (provider, region, gpu_model) to the on-demand $/GPU-hour (ListCost);
    ``tokens`` (namespace, pod, tokens) adds ``x_Tokens`` to the matching rows.
    """
    df = (priced.group_by("ts", "provider", "region", "node", "gpu_model", "pricing_category", "namespace", "team",
                          "pod")
          .agg(pl.col("gpu_hours").sum(), pl.col("cost_usd").sum(), pl.col("usd_per_gpu_hour").first()))
    lp = pl.DataFrame([(*k, v) for k, v in list_price.items()],
                      schema=["provider", "region", "gpu_model", "list_usd"], orient="row")
    df = df.join(lp, on=["provider", "region", "gpu_model"], how="left", nulls_equal=True)
    if tokens is not None:
        df = df.join(tokens.select("namespace", "pod", "tokens"), on=["namespace", "pod"], how="left")
    else:
        df = df.with_columns(tokens=pl.lit(None, pl.Float64))
    month = pl.col("ts").dt.truncate("1mo")
    return df.select(
        BilledCost=pl.col("cost_usd"),
        BillingAccountId=pl.lit(account), BillingAccountName=pl.lit(account), BillingCurrency=pl.lit("USD"),
        BillingPeriodStart=month, BillingPeriodEnd=month.dt.offset_by("1mo"),
        ChargeCategory=pl.lit("Usage"), ChargeClass=pl.lit(None, pl.String),
        ChargeDescription=pl.format("GPU time on {} ({})", pl.col("node"), pl.col("gpu_model")),
        ChargePeriodStart=pl.col("ts"), ChargePeriodEnd=pl.col("ts") + dt.timedelta(hours=1),
        ContractedCost=pl.col("cost_usd"), EffectiveCost=pl.col("cost_usd"),
        InvoiceIssuerName=pl.col("provider"),
        ListCost=pl.col("gpu_hours") * pl.col("list_usd").fill_null(pl.col("usd_per_gpu_hour")),
        PricingQuantity=pl.col("gpu_hours"), PricingUnit=pl.lit("GPU-Hours"),
        ProviderName=pl.col("provider"), PublisherName=pl.col("provider"),
        ServiceCategory=pl.lit("Compute"), ServiceName=pl.lit("GPU compute"),
        PricingCategory=pl.col("pricing_category").replace_strict(PRICING_CATEGORY, default="Standard"),
        RegionId=pl.col("region"), ResourceId=pl.col("node"),
        x_GpuHours=pl.col("gpu_hours"), x_GpuModel=pl.col("gpu_model"), x_Namespace=pl.col("namespace"),
        x_Team=pl.col("team"), x_Pod=pl.col("pod"), x_Tokens=pl.col("tokens"),
    ).sort("ChargePeriodStart", "ResourceId")
