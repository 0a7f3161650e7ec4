"""Hourly demand series read from a store: requests and tokens per service, GPU-hours per team."""

from __future__ import annotations

import duckdb
import numpy as np

from gpufleet.analytics.capacity.specs import DEFAULT_USD_PER_GPU_HOUR, family_of

__all__ = ["hourly_demand", "replica_profile", "usd_per_gpu_hour", "METRICS"]

_SERVING = {
    "requests": "('gpufleet_serving_requests_total')",
    "tokens": "('gpufleet_serving_prompt_tokens_total', 'gpufleet_serving_generation_tokens_total')",
}
METRICS = ("requests", "tokens", "gpu_hours")


def _fill(rows: list[tuple[str, float, float]]) -> dict[str, np.ndarray]:
    """Group (key, hour epoch, value) rows into gap-free hourly arrays (missing hours are 0, edges dropped)."""
    if not rows:
        return {}
    lo = min(r[1] for r in rows)
    hi = max(r[1] for r in rows)
    n = int(round((hi - lo) / 3600)) + 1
    out: dict[str, np.ndarray] = {}
    for key, h, v in rows:
        arr = out.setdefault(str(key), np.zeros(n))
        arr[int(round((h - lo) / 3600))] += float(v)
    # the first and last hours are partial scrapes of the window: drop them
    return {k: v[1:-1] if len(v) > 2 else v for k, v in out.items()}


def hourly_demand(con: duckdb.DuckDBPyConnection, metric: str) -> dict[str, np.ndarray]:
    """``requests``/``tokens`` per hour by service, or ``gpu_hours`` per hour by team.

    Read from the hourly rollups (kept for two years), or from the raw tables (kept 15 days) in a store
    whose rollups are not built yet.
    """
    if metric == "gpu_hours":
        sql = ("SELECT coalesce(n.team, a.namespace, 'unallocated') AS k, epoch(a.ts) AS h, "
               "sum(a.gpu_seconds) / 3600 FROM gpu_allocations_1h a LEFT JOIN namespaces n USING (namespace) "
               "GROUP BY ALL")
        raw = ("SELECT coalesce(n.team, a.namespace, 'unallocated') AS k, epoch(date_trunc('hour', a.ts)) AS h, "
               "sum(a.share * a.interval_s) / 3600 FROM gpu_allocations a LEFT JOIN namespaces n USING (namespace) "
               "GROUP BY ALL")
    elif metric in _SERVING:
        names = _SERVING[metric]
        sql = ("SELECT s.labels->>'service' AS k, epoch(c.ts) AS h, sum(c.delta) FROM counters_1h c "
               f"JOIN series s USING (series_id) WHERE s.metric IN {names} AND s.labels->>'service' IS NOT NULL "
               "GROUP BY ALL")
        raw = ("SELECT s.labels->>'service' AS k, epoch(date_trunc('hour', c.ts)) AS h, sum(c.delta) "
               f"FROM counters c JOIN series s USING (series_id) WHERE s.metric IN {names} "
               "AND s.labels->>'service' IS NOT NULL GROUP BY ALL")
    else:
        raise ValueError(f"demand metric must be one of {', '.join(METRICS)}, got {metric!r}")
    rows = con.execute(sql).fetchall() or con.execute(raw).fetchall()
    return _fill(rows)


def replica_profile(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[float, int, int, str]]:
    """Per service: per-replica req/s, replica count, GPUs per replica and the replicas' GPU model.

    The per-replica rate is the 95th percentile of hourly per-pod completed requests/s, a measured
    lower bound on what one replica sustains.
    """
    rates = con.execute(
        "WITH h AS (SELECT json_extract_string(s.labels, '$.service') AS svc, json_extract_string(s.labels, '$.pod') "
        "AS pod, date_trunc('hour', c.ts) AS hr, sum(c.delta) / 3600 AS rps FROM counters c JOIN series s "
        "USING (series_id) WHERE s.metric = 'gpufleet_serving_requests_total' GROUP BY ALL) "
        "SELECT svc, quantile_cont(rps, 0.95), count(DISTINCT pod), min(pod) FROM h WHERE svc IS NOT NULL "
        "GROUP BY svc").fetchall()
    gpus = dict(con.execute("SELECT pod, count(DISTINCT gpu_uuid) FROM gpu_allocations WHERE pod IS NOT NULL "
                            "GROUP BY pod").fetchall())
    models = dict(con.execute("SELECT a.pod, any_value(g.gpu_model) FROM gpu_allocations a JOIN gpus g "
                              "USING (gpu_uuid) WHERE a.pod IS NOT NULL GROUP BY a.pod").fetchall())
    return {str(svc): (float(mu), int(n), int(gpus.get(pod, 1)), str(models.get(pod, "")))
            for svc, mu, n, pod in rates}


def usd_per_gpu_hour(con: duckdb.DuckDBPyConnection, gpu_model: str) -> float | None:
    """Median on-demand price of a GPU model from the store's prices table, else the built-in default."""
    fam = family_of(gpu_model)
    row = con.execute("SELECT median(usd_per_gpu_hour) FROM prices WHERE pricing_category = 'on_demand' AND "
                      "(gpu_model = ? OR gpu_model = ?)", [gpu_model, fam]).fetchone()
    if row is not None and row[0] is not None:
        return float(row[0])
    return DEFAULT_USD_PER_GPU_HOUR.get(fam)
