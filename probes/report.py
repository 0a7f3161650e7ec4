"""Read probe verdicts back from the store (``probe_results`` rows derived from ``gpufleet_probe_*``)."""

from __future__ import annotations

from typing import Any

__all__ = ["latest_verdicts"]

_SQL = """
WITH latest AS (
    SELECT gpu_uuid, max(ts) AS ts FROM probe_results
    WHERE gpu_uuid IS NOT NULL AND probe IN ('verdict_healthy', 'verdict_degraded', 'verdict_failed')
    GROUP BY gpu_uuid
)
SELECT p.gpu_uuid, any_value(p.node), any_value(p.gpu_model), any_value(p.cluster), l.ts,
       max(CASE WHEN p.probe LIKE 'verdict_%' AND p.value = 1 THEN substr(p.probe, 9) END) AS verdict,
       max(CASE WHEN p.probe = 'lost_throughput' THEN p.value END) AS lost_ratio,
       max(CASE WHEN p.probe = 'lost_usd_per_day' THEN p.value END) AS lost_usd
FROM probe_results p JOIN latest l ON p.gpu_uuid = l.gpu_uuid AND p.ts = l.ts
GROUP BY p.gpu_uuid, l.ts
ORDER BY CASE verdict WHEN 'failed' THEN 0 WHEN 'degraded' THEN 1 ELSE 2 END, any_value(p.node), p.gpu_uuid
"""


def latest_verdicts(con: Any) -> list[dict[str, Any]]:
    """One row per GPU: its most recent verdict, lost ratio and lost $/day (None when unpriced)."""
    rows = con.execute(_SQL).fetchall()
    return [{"gpu_uuid": u, "node": n, "gpu_model": m, "cluster": c, "ts": str(ts), "verdict": v or "unknown",
             "lost_ratio": float(lr or 0.0), "lost_usd_per_day": float(usd) if usd is not None else None}
            for u, n, m, c, ts, v, lr, usd in rows]
