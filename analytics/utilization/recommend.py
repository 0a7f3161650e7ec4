"""Idle-allocation ("squatting") detection and Optimize / Remove / Share recommendations."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["Recommendation", "per_pod_gpu_use", "recommend", "HOURS_PER_MONTH"]

HOURS_PER_MONTH = 730.0


@dataclass(frozen=True)
class Recommendation:
    """One action on one pod and what it saves per month."""

    namespace: str
    pod: str
    action: str  # Optimize | Remove | Share
    gpus: int
    keep_gpus: int
    monthly_savings_usd: float
    reason: str


def per_pod_gpu_use(alloc: pl.DataFrame, activity: pl.DataFrame) -> pl.DataFrame:
    """Per pod and GPU: the GPU's peak and mean activity while the pod held it, and its $/GPU-hour."""
    df = alloc.filter(pl.col("pod").is_not_null()).join(activity, on=["ts", "gpu_uuid"], how="left")
    return (df.group_by("namespace", "pod", "gpu_uuid")
            .agg(peak=pl.col("activity").max().fill_null(0.0), mean=pl.col("activity").mean().fill_null(0.0),
                 usd_per_gpu_hour=pl.col("usd_per_gpu_hour").mean()))


def recommend(pod_use: pl.DataFrame, *, idle_below: float = 0.05, share_below: float = 0.30,
              hours_per_month: float = HOURS_PER_MONTH) -> list[Recommendation]:
    """Kubecost-style GPU advice.

    A GPU is unused when its peak activity stays under ``idle_below``. A multi-GPU pod with unused GPUs:
    Optimize (keep the used ones). A pod none of whose GPUs were used: Remove. A single-GPU pod whose mean
    activity is under ``share_below``: Share (time-slice or MIG; saves half the GPU).
    """
    recs: list[Recommendation] = []
    for (ns, pod), g in pod_use.group_by("namespace", "pod", maintain_order=True):
        gpus = g.height
        price = float(g["usd_per_gpu_hour"].fill_null(0.0).sum()) / gpus
        unused = int((g["peak"] < idle_below).sum())
        if unused == gpus:
            recs.append(Recommendation(str(ns), str(pod), "Remove", gpus, 0, gpus * price * hours_per_month,
                                       f"no GPU activity above {idle_below:.0%} on any of {gpus} GPU(s)"))
        elif unused > 0:
            recs.append(Recommendation(str(ns), str(pod), "Optimize", gpus, gpus - unused,
                                       unused * price * hours_per_month,
                                       f"{unused} of {gpus} GPUs never above {idle_below:.0%}"))
        elif gpus == 1 and float(g["mean"][0]) < share_below:
            recs.append(Recommendation(str(ns), str(pod), "Share", 1, 1, 0.5 * price * hours_per_month,
                                       f"mean activity {float(g['mean'][0]):.0%} < {share_below:.0%}"))
    return sorted(recs, key=lambda r: -r.monthly_savings_usd)
