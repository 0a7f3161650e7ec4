"""Capacity report over a store: demand forecasts with backtests, and the fleet each service needs."""

from __future__ import annotations

import math
from typing import Any

import duckdb

from gpufleet.analytics.capacity.demand import hourly_demand, replica_profile, usd_per_gpu_hour
from gpufleet.analytics.capacity.forecast import forecast_series
from gpufleet.analytics.capacity.plan import plan_pool, pooled_vs_split
from gpufleet.analytics.capacity.specs import HOURS_PER_MONTH

__all__ = ["forecast_rows", "capacity_rows", "pooling_rows"]


def forecast_rows(con: duckdb.DuckDBPyConnection, metric: str, horizon: int = 24, season: int = 24,
                  level: float = 0.9) -> list[dict[str, Any]]:
    """One forecast row per service or team, with backtest errors beside the seasonal-naive baseline's.

    A row has the chosen method, the next ``horizon`` hours' total and peak hour with its interval.
    """
    rows: list[dict[str, Any]] = []
    for key, series in sorted(hourly_demand(con, metric).items()):
        res = forecast_series(series, horizon, season, level)
        fc, base = res.forecast, res.baseline
        peak = max(range(horizon), key=lambda i: fc.mean[i])
        model_bt = res.backtest(fc.method)
        naive_bt = res.backtest("seasonal_naive")
        last_bt = res.backtest("naive")
        rows.append({
            "key": key, "metric": metric, "method": fc.method, "history_h": res.history,
            "next_total": sum(fc.mean), "baseline_total": sum(base.mean),
            "peak": fc.mean[peak], "peak_lower": fc.lower[peak], "peak_upper": fc.upper[peak],
            "mape_pct": model_bt.mape_pct if model_bt else None, "mase": model_bt.mase if model_bt else None,
            "baseline_mape_pct": naive_bt.mape_pct if naive_bt else None,
            "baseline_mase": naive_bt.mase if naive_bt else None,
            "last_value_mape_pct": last_bt.mape_pct if last_bt else None,
            "last_value_mase": last_bt.mase if last_bt else None, "message": res.message,
        })
    return rows


def capacity_rows(con: duckdb.DuckDBPyConnection, wait_slo_s: float = 0.5, quantile: float = 0.99,
                  headroom: float = 0.8, horizon: int = 24, forecasts: list[dict[str, Any]] | None = None
                  ) -> list[dict[str, Any]]:
    """Per service: replicas and GPUs for the upper end of the forecast peak hour, and the monthly bill.

    ``forecasts`` are :func:`forecast_rows` of ``requests`` already computed (else they are computed here).
    """
    profiles = replica_profile(con)
    out: list[dict[str, Any]] = []
    for row in forecasts if forecasts is not None else forecast_rows(con, "requests", horizon):
        svc = row["key"]
        mu, replicas_now, gpr, model = profiles.get(svc, (0.0, 0, 1, ""))
        lam = float(row["peak_upper"]) / 3600
        base: dict[str, Any] = {"service": svc, "gpu_model": model, "peak_rps": lam, "replica_rps": mu,
                                "replicas_now": replicas_now, "gpus_per_replica": gpr}
        price = usd_per_gpu_hour(con, model) if model else None
        if mu <= 0 or not math.isfinite(mu):
            out.append({**base, "error": f"service {svc}: no measured per-replica throughput"})
            continue
        try:
            p = plan_pool(svc, lam, mu, wait_slo_s, quantile=quantile, headroom=headroom, gpus_per_replica=gpr,
                          usd_per_gpu_hour=price or 0.0)
        except ValueError as exc:
            out.append({**base, "error": str(exc)})
            continue
        out.append({**base, "replicas": p.replicas, "gpus": p.gpus, "utilization": p.sizing.utilization,
                    "binding": p.sizing.binding, "usd_per_month": p.usd_per_month if price is not None else None,
                    "error": "" if price is not None else f"no price for GPU model {model!r}"})
    return out


def pooling_rows(con: duckdb.DuckDBPyConnection, capacity: list[dict[str, Any]], wait_slo_s: float = 0.5,
                 quantile: float = 0.99, headroom: float = 0.8) -> list[dict[str, Any]]:
    """Per service served in several clusters: one pooled fleet vs a pool per cluster, in GPUs and $/month.

    Each cluster's load is its share of the service's observed peak-hour requests applied to the
    planned peak rate of ``capacity`` (rows of :func:`capacity_rows`).
    """
    shares = con.execute(
        "WITH h AS (SELECT json_extract_string(s.labels, '$.service') AS svc, json_extract_string(s.labels, "
        "'$.cluster') AS cl, date_trunc('hour', c.ts) AS hr, sum(c.delta) AS n FROM counters c JOIN series s "
        "USING (series_id) WHERE s.metric = 'gpufleet_serving_requests_total' GROUP BY ALL) "
        "SELECT svc, cl, max(n) FROM h WHERE svc IS NOT NULL AND cl IS NOT NULL GROUP BY ALL").fetchall()
    peaks: dict[str, dict[str, float]] = {}
    for svc, cl, n in shares:
        peaks.setdefault(str(svc), {})[str(cl)] = float(n)
    out: list[dict[str, Any]] = []
    for row in capacity:
        clusters = peaks.get(row["service"], {})
        if row.get("error") or len(clusters) < 2:
            continue
        total = sum(clusters.values())
        price = row["usd_per_month"] / row["gpus"] / HOURS_PER_MONTH if row.get("usd_per_month") else 0.0
        cmp = pooled_vs_split({c: row["peak_rps"] * v / total for c, v in clusters.items()}, row["replica_rps"],
                              wait_slo_s, quantile=quantile, headroom=headroom,
                              gpus_per_replica=row["gpus_per_replica"], usd_per_gpu_hour=price)
        out.append({"service": row["service"], "pools": len(clusters),
                    "split_gpus": sum(p.gpus for p in cmp.split), "pooled_gpus": cmp.pooled.gpus,
                    "saved_gpus": cmp.saved_gpus, "saved_usd_per_month": cmp.saved_usd_per_month})
    return out
