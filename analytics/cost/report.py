"""Reports over a :class:`CostSource`: cost and utilization tables the CLI prints."""

from __future__ import annotations

import datetime as dt

import polars as pl

from gpufleet.analytics.cost.allocation import chargeback, price_allocations
from gpufleet.analytics.cost.anomaly import CostAnomaly, bucket_costs, detect_anomalies
from gpufleet.analytics.cost.focus import focus_rows
from gpufleet.analytics.cost.pricing import Catalog, price_rows
from gpufleet.analytics.cost.query import CostSource
from gpufleet.analytics.cost.tokens import compute_times, token_cost
from gpufleet.analytics.cost.whatif import break_even_utilization, compare_pricing, rightsize
from gpufleet.analytics.utilization.efficiency import gpu_activity, utilization_by
from gpufleet.analytics.utilization.recommend import Recommendation, per_pod_gpu_use, recommend

__all__ = ["price_map", "priced", "cost_report", "utilization_report", "model_cost_report", "focus_export",
           "recommendations", "energy", "rightsizing", "cost_anomalies", "pricing_whatif",
           "UTILIZATION_BY"]


def price_map(catalog: Catalog, stored: pl.DataFrame | None = None) -> dict[tuple[str, str, str, str], float]:
    """(provider, region, gpu_model, category) -> $/GPU-hour: the catalog, overridden by newest stored prices."""
    out = {(r.provider, r.region, r.gpu_model, r.pricing_category): r.usd_per_gpu_hour for r in price_rows(catalog)}
    if stored is not None and stored.height:
        for row in stored.sort("effective_from").iter_rows(named=True):
            out[(row["provider"], row["region"], row["gpu_model"], row["pricing_category"])] = row["usd_per_gpu_hour"]
    return out


def priced(src: CostSource, catalog: Catalog, window: dt.timedelta) -> pl.DataFrame:
    """Allocations in the window with their price and cost."""
    w = src.window(window)
    return price_allocations(src.allocations(w), price_map(catalog, src.prices()))


def cost_report(src: CostSource, catalog: Catalog, window: dt.timedelta, by: str = "namespace") -> pl.DataFrame:
    """Chargeback per ``by`` (team, namespace, node, cluster) with idle and shared cost spread by weight."""
    if by == "model":
        return model_cost_report(src, catalog, window)
    return chargeback(priced(src, catalog, window), by)


def model_cost_report(src: CostSource, catalog: Catalog, window: dt.timedelta,
                      goodput: dict[str, float] | None = None) -> pl.DataFrame:
    """Cost per served model: GPU cost of its pods, $/1M input and output tokens, $/request."""
    w = src.window(window)
    p = price_allocations(src.allocations(w), price_map(catalog, src.prices()))
    pod_cost = p.filter(pl.col("pod").is_not_null()).group_by("namespace", "pod").agg(pl.col("cost_usd").sum())
    s = src.serving(w)
    if s.height == 0:
        return pl.DataFrame(schema={"model": pl.String, "cost_usd": pl.Float64})
    wide = s.pivot(on="metric", index=["model", "namespace", "pod"], values="value", aggregate_function="sum")
    wide = wide.join(pod_cost, on=["namespace", "pod"], how="left").fill_null(0.0)

    def col(name: str) -> pl.Expr:
        full = f"gpufleet_serving_{name}"
        return pl.col(full) if full in wide.columns else pl.lit(0.0)

    per_model = wide.group_by("model").agg(
        cost_usd=pl.col("cost_usd").sum(), prompt=col("prompt_tokens_total").sum(),
        cached=col("prefix_cache_hit_tokens_total").sum(), output=col("generation_tokens_total").sum(),
        requests=col("requests_total").sum(), prefill=col("request_prefill_time_seconds_sum").sum(),
        decode=col("request_decode_time_seconds_sum").sum(), ttft=col("time_to_first_token_seconds_sum").sum(),
        queue=col("request_queue_time_seconds_sum").sum(), e2e=col("e2e_request_latency_seconds_sum").sum())
    rows = []
    for r in per_model.iter_rows(named=True):
        prefill, decode = compute_times(prefill_s=r["prefill"], decode_s=r["decode"], ttft_s=r["ttft"],
                                        queue_s=r["queue"], e2e_s=r["e2e"])
        tc = token_cost(r["cost_usd"], prompt_tokens=r["prompt"], cached_tokens=r["cached"],
                        output_tokens=r["output"], prefill_s=prefill, decode_s=decode,
                        requests=r["requests"], goodput_requests=(goodput or {}).get(r["model"]))
        rows.append({"model": r["model"], "cost_usd": tc.cost_usd, "usd_per_1m_tokens": tc.usd_per_1m,
                     "input_usd_per_1m": tc.input_usd_per_1m, "output_usd_per_1m": tc.output_usd_per_1m,
                     "usd_per_request": tc.usd_per_request, "usd_per_goodput_request": tc.usd_per_goodput_request})
    return pl.DataFrame(rows).sort("cost_usd", descending=True)


UTILIZATION_BY = {"team": "team", "namespace": "namespace", "node": "node", "cluster": "cluster",
                  "model": "gpu_model", "workload": "workload"}


def utilization_report(src: CostSource, window: dt.timedelta, by: str = "namespace") -> pl.DataFrame:
    """Allocated vs used GPU-hours and efficiency per ``by``.

    ``by`` is team, namespace, node, cluster, model (the GPU model) or workload (``namespace/pod``).
    """
    if by not in UTILIZATION_BY:
        raise ValueError(f"utilization by {by!r}: use one of {', '.join(UTILIZATION_BY)}")
    w = src.window(window)
    alloc = src.allocations(w)
    if by == "workload":
        alloc = alloc.with_columns(workload=pl.concat_str("namespace", pl.lit("/"), "pod"))
    return utilization_by(alloc, src.utilization(w), UTILIZATION_BY[by])


def pricing_whatif(src: CostSource, catalog: Catalog, window: dt.timedelta,
                   spot_interruption_overhead: float = 0.10) -> pl.DataFrame:
    """Per GPU model: its allocated GPU-hours priced on demand, reserved (every hour of its GPUs) and spot.

    Reserved pays for every hour of the window that holds data (not the hours asked for before the store
    began). The on-demand rate is the catalog's (or stored) mean on-demand $/GPU-hour of that model over the regions
    it is sold in; discounts come from the catalog.
    """
    w = src.window(window)
    alloc = src.allocations(w)
    od: dict[str, list[float]] = {}
    for (_, _, model, cat), v in price_map(catalog, src.prices()).items():
        if cat == "on_demand":
            od.setdefault(model, []).append(v)
    hours = float(alloc["ts"].dt.truncate("1h").n_unique())
    per = (alloc.group_by("gpu_model")
           .agg(gpus=pl.col("gpu_uuid").n_unique(),
                used=pl.col("gpu_seconds").filter(pl.col("namespace").is_not_null()).sum() / 3600)
           .sort("gpu_model"))
    rows = []
    for r in per.iter_rows(named=True):
        if r["gpu_model"] not in od:
            raise ValueError(f"no on-demand price for GPU model {r['gpu_model']!r}; add it to the price catalog")
        rate = sum(od[r["gpu_model"]]) / len(od[r["gpu_model"]])
        scen = {s.category: s for s in compare_pricing(
            r["used"], hours, r["gpus"], rate, reserved_discount=catalog.discounts.reserved,
            spot_discount=catalog.discounts.spot, spot_interruption_overhead=spot_interruption_overhead)}
        rows.append({"gpu_model": r["gpu_model"], "gpus": r["gpus"], "window_hours": hours,
                     "allocated_gpu_hours": r["used"], "on_demand_usd_per_gpu_hour": rate,
                     "on_demand_usd": scen["on_demand"].cost_usd, "reserved_usd": scen["reserved"].cost_usd,
                     "spot_usd": scen["spot"].cost_usd,
                     "break_even_utilization": break_even_utilization(rate, rate * (1 - catalog.discounts.reserved)),
                     "advice": scen["reserved"].note})
    return pl.DataFrame(rows)


def recommendations(src: CostSource, catalog: Catalog, window: dt.timedelta) -> list[Recommendation]:
    """Optimize / Remove / Share advice with monthly savings."""
    w = src.window(window)
    p = price_allocations(src.allocations(w), price_map(catalog, src.prices()))
    return recommend(per_pod_gpu_use(p, gpu_activity(src.utilization(w))))


def focus_export(src: CostSource, catalog: Catalog, window: dt.timedelta) -> pl.DataFrame:
    """FOCUS 1.2 rows for the window, with tokens per pod."""
    w = src.window(window)
    prices = price_map(catalog, src.prices())
    p = price_allocations(src.allocations(w), prices)
    lp = {(a, b, c): v for (a, b, c, d), v in prices.items() if d == "on_demand"}
    s = src.serving(w)
    tokens = (s.filter(pl.col("metric").is_in(["gpufleet_serving_prompt_tokens_total",
                                               "gpufleet_serving_generation_tokens_total"]))
              .group_by("namespace", "pod").agg(tokens=pl.col("value").sum()))
    # Tokens belong to the pod, not to each hour: put them on the pod's first row only.
    out = focus_rows(p, lp, tokens=tokens)
    first = pl.int_range(pl.len()).over("x_Namespace", "x_Pod") == 0
    return out.with_columns(x_Tokens=pl.when(first).then(pl.col("x_Tokens")).otherwise(None))


def energy(src: CostSource, catalog: Catalog, window: dt.timedelta, by: str = "namespace") -> pl.DataFrame:
    """kWh, electricity cost and kg CO2e per ``by`` (or per GPU with ``by='gpu_uuid'``)."""
    from gpufleet.analytics.cost.energy import energy_by_workload, energy_report

    w = src.window(window)
    e = catalog.energy
    if by == "gpu_uuid":
        return energy_report(src.energy(w), pue=e.pue, usd_per_kwh=e.usd_per_kwh, gco2_per_kwh=e.grid_gco2_per_kwh)
    return energy_by_workload(src.energy(w), src.allocations(w), by=by, pue=e.pue, usd_per_kwh=e.usd_per_kwh,
                              gco2_per_kwh=e.grid_gco2_per_kwh)


def rightsizing(src: CostSource, catalog: Catalog, window: dt.timedelta, probe: str = "matmul_bf16",
                by: str = "namespace") -> pl.DataFrame:
    """Per ``by`` group and GPU model: its workload GPU-hours moved to every probed model at on-demand prices.

    Hours scale by the probe-measured throughput (``probe``, mean per GPU model) of the current model over
    the target's; ``savings_usd`` is the current on-demand cost minus the target's (negative: dearer). A
    group on a model with no probe result is left out; an empty frame means no probe results at all.
    """
    w = src.window(window)
    pr = src.probes().filter(pl.col("probe") == probe)
    throughput = dict(zip(pr["gpu_model"], pr["value"], strict=True))
    od: dict[str, list[float]] = {}
    for (_, _, m, c), v in price_map(catalog, src.prices()).items():
        if c == "on_demand":
            od.setdefault(m, []).append(v)
    rate = {m: sum(v) / len(v) for m, v in od.items()}
    a = (src.allocations(w).filter(pl.col("namespace").is_not_null())
         .group_by(by, "gpu_model").agg(gpu_hours=pl.col("gpu_seconds").sum() / 3600).sort(by, "gpu_model"))
    rows = []
    for r in a.iter_rows(named=True):
        model = r["gpu_model"]
        if model not in throughput or model not in rate:
            continue
        current = r["gpu_hours"] * rate[model]
        for s in rightsize(r["gpu_hours"], model, throughput, rate):
            rows.append({by: r[by], "gpu_model": model, "gpu_hours": r["gpu_hours"], "current_usd": current,
                         "target_model": s.category,
                         "target_gpu_hours": r["gpu_hours"] * throughput[model] / throughput[s.category],
                         "target_usd": s.cost_usd, "savings_usd": current - s.cost_usd})
    schema = {by: pl.String, "gpu_model": pl.String, "gpu_hours": pl.Float64, "current_usd": pl.Float64,
              "target_model": pl.String, "target_gpu_hours": pl.Float64, "target_usd": pl.Float64,
              "savings_usd": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def cost_anomalies(src: CostSource, catalog: Catalog, *, by: str = "team", bucket: dt.timedelta = dt.timedelta(days=1),
                   baseline: int = 7, z: float = 3.0, min_rel: float = 0.25,
                   min_usd: float = 1.0) -> list[CostAnomaly]:
    """Groups whose spend in the newest ``bucket`` is far above the median of the ``baseline`` buckets before it."""
    w = src.window(bucket * (baseline + 1))
    p = price_allocations(src.allocations(w), price_map(catalog, src.prices()))
    costs = bucket_costs(p, w.start, bucket, by)
    return detect_anomalies(costs, start=w.start, bucket=bucket, by=by, baseline=baseline, z=z, min_rel=min_rel,
                            min_usd=min_usd)
