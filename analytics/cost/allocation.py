"""OpenCost-style GPU chargeback: workload cost, idle cost and shared cost, reconciled to the cent."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import polars as pl

from gpufleet.analytics.cost.money import split_cents, to_cents

__all__ = ["billable_gpus", "price_allocations", "chargeback", "SHARED_NAMESPACES", "SplitMode"]

SHARED_NAMESPACES = ("kube-system", "gpu-operator", "ml-platform", "ingress-nginx", "monitoring")
SplitMode = Literal["even", "weight", "metric", "none"]


def billable_gpus(requested: float, used: float, *, whole: bool = True) -> float:
    """GPUs a workload pays for: max(request, usage), requests rounded up to whole GPUs by default."""
    req = math.ceil(requested - 1e-9) if whole else requested
    return max(float(req), used)


def price_allocations(alloc: pl.DataFrame, prices: Mapping[tuple[str, str, str, str], float],
                      default_category: str = "on_demand") -> pl.DataFrame:
    """Add ``usd_per_gpu_hour``, ``gpu_hours`` and ``cost_usd`` to allocation rows.

    ``gpu_seconds`` already carries the holder's share of the GPU (a MIG slice or a time-slice replica), so
    a 1g.10gb slice of an H100 pays 1/7 of the GPU's hour. ``prices`` maps (provider, region, gpu_model,
    pricing_category) to $/GPU-hour; a row with no price raises ValueError naming the key.
    """
    keys = alloc.select("provider", "region", "gpu_model", "pricing_category").unique()
    rates = []
    for prov, reg, model, cat in keys.iter_rows():
        key = (prov, reg, model, cat or default_category)
        if key not in prices:
            raise ValueError(f"no price for provider={prov} region={reg} gpu_model={model} category={key[3]}; "
                             "add it to the price catalog")
        rates.append((prov, reg, model, cat, prices[key]))
    rate_df = pl.DataFrame(rates, schema=["provider", "region", "gpu_model", "pricing_category",
                                          "usd_per_gpu_hour"], orient="row")
    return (alloc.join(rate_df, on=["provider", "region", "gpu_model", "pricing_category"], how="left",
                       nulls_equal=True)
            .with_columns(gpu_hours=pl.col("gpu_seconds") / 3600)
            .with_columns(cost_usd=pl.col("gpu_hours") * pl.col("usd_per_gpu_hour")))


def chargeback(priced: pl.DataFrame, by: str = "namespace", *, idle: SplitMode = "weight",
               shared: SplitMode = "weight", shared_namespaces: tuple[str, ...] = SHARED_NAMESPACES,
               metric: Mapping[str, float] | None = None) -> pl.DataFrame:
    """Cost per ``by`` group with idle and shared cost spread over the other groups.

    Rows with no namespace are idle GPU time; rows in ``shared_namespaces`` are shared cost. Each is
    spread ``even``-ly, by ``weight`` (the groups' own cost), by a custom ``metric`` (group -> weight)
    or kept as its own line (``none``). All sums are integer cents; the total equals the asset cost
    (the sum of every row's cost, rounded to the cent) exactly.
    """
    df = priced.with_columns(
        _kind=pl.when(pl.col("namespace").is_null()).then(pl.lit("idle"))
        .when(pl.col("namespace").is_in(list(shared_namespaces))).then(pl.lit("shared"))
        .otherwise(pl.lit("workload")),
        _group=pl.col(by).fill_null("__unallocated__"))
    asset_cents = to_cents(float(df["cost_usd"].sum()))
    # Line costs to the micro-dollar: a float sum depends on the order of its rows, which differs between
    # sources, and the cent split below must not flip a tie on the last bits of that sum.
    per = (df.group_by("_kind", "_group").agg(pl.col("gpu_hours").sum(), pl.col("cost_usd").sum().round(6))
           .sort("_kind", "_group"))
    own = per.filter(pl.col("_kind") == "workload")
    groups = own["_group"].to_list()
    # One cent split of the whole asset cost by each line's float cost, so every later split is exact.
    lines = per.rows(named=True)
    line_cents = split_cents(asset_cents, [r["cost_usd"] for r in lines])
    base = {g: 0 for g in groups}
    hours = {g: 0.0 for g in groups}
    extra: dict[str, dict[str, int]] = {"idle": {}, "shared": {}}
    pools = {"idle": 0, "shared": 0}
    for r, c in zip(lines, line_cents, strict=True):
        if r["_kind"] == "workload":
            base[r["_group"]] += c
            hours[r["_group"]] += r["gpu_hours"]
        else:
            pools[r["_kind"]] += c
    out_lines: dict[str, int] = {}
    for kind, mode in (("idle", idle), ("shared", shared)):
        if mode == "none" or not groups:
            if pools[kind]:
                out_lines[f"__{kind}__"] = pools[kind]
            continue
        if mode == "even":
            w = [1.0] * len(groups)
        elif mode == "weight":
            w = [float(base[g]) for g in groups]
        else:
            if metric is None:
                raise ValueError(f"{kind} split 'metric' needs a metric mapping (group -> weight)")
            w = [float(metric.get(g, 0.0)) for g in groups]
        extra[kind] = dict(zip(groups, split_cents(pools[kind], w), strict=True))
    rows = [{by: g, "gpu_hours": hours[g], "cost_cents": base[g], "idle_cents": extra["idle"].get(g, 0),
             "shared_cents": extra["shared"].get(g, 0)} for g in groups]
    rows += [{by: k, "gpu_hours": 0.0, "cost_cents": v, "idle_cents": 0, "shared_cents": 0}
             for k, v in out_lines.items()]
    res = pl.DataFrame(rows, schema={by: pl.String, "gpu_hours": pl.Float64, "cost_cents": pl.Int64,
                                     "idle_cents": pl.Int64, "shared_cents": pl.Int64})
    res = res.with_columns(total_cents=pl.col("cost_cents") + pl.col("idle_cents") + pl.col("shared_cents"))
    assert int(res["total_cents"].sum()) == asset_cents
    return res.sort("total_cents", descending=True)
