"""Replicas, GPUs and money per month for a forecast load under a waiting-time SLO (M/M/c), pooled or split.

Each replica is one M/M/c server with service rate ``mu`` = its measured sustainable requests/s.
Headroom is a utilisation cap (0.8 keeps a fifth of the fleet spare for bursts and failures),
applied on top of the Erlang C latency answer. A pooled fleet serves the sum of the loads with one
queue; a split fleet sizes each pool on its own, which never needs fewer servers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gpufleet.analytics.capacity.erlang import Sizing, servers_for_slo
from gpufleet.analytics.capacity.specs import HOURS_PER_MONTH

__all__ = ["PoolPlan", "plan_pool", "PooledVsSplit", "pooled_vs_split"]


@dataclass(frozen=True)
class PoolPlan:
    """Sizing of one pool: replicas, GPUs and the monthly bill at ``usd_per_gpu_hour``."""

    name: str
    arrival_rate: float
    service_rate: float
    replicas: int
    gpus: int
    usd_per_month: float
    sizing: Sizing


def plan_pool(name: str, arrival_rate: float, service_rate: float, wait_slo_s: float, *, quantile: float = 0.99,
              headroom: float = 0.8, gpus_per_replica: int = 1, usd_per_gpu_hour: float = 0.0,
              min_replicas: int = 1) -> PoolPlan:
    """Size one pool; ``headroom`` is the highest mean utilisation allowed (0-1]."""
    if gpus_per_replica < 1:
        raise ValueError(f"{name}: GPUs per replica must be >= 1, got {gpus_per_replica}")
    if usd_per_gpu_hour < 0:
        raise ValueError(f"{name}: price must be >= 0 $/GPU-hour, got {usd_per_gpu_hour}")
    try:
        s = servers_for_slo(arrival_rate, service_rate, wait_slo_s, quantile, headroom, min_replicas)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    gpus = s.servers * gpus_per_replica
    return PoolPlan(name, arrival_rate, service_rate, s.servers, gpus, gpus * usd_per_gpu_hour * HOURS_PER_MONTH, s)


@dataclass(frozen=True)
class PooledVsSplit:
    """One pooled fleet beside the same load split into pools; ``saved_*`` is split minus pooled."""

    pooled: PoolPlan
    split: tuple[PoolPlan, ...]

    @property
    def saved_gpus(self) -> int:
        """GPUs the pooled fleet saves."""
        return sum(p.gpus for p in self.split) - self.pooled.gpus

    @property
    def saved_usd_per_month(self) -> float:
        """Money per month the pooled fleet saves."""
        return sum(p.usd_per_month for p in self.split) - self.pooled.usd_per_month


def pooled_vs_split(loads: Mapping[str, float], service_rate: float, wait_slo_s: float, *,
                    quantile: float = 0.99, headroom: float = 0.8, gpus_per_replica: int = 1,
                    usd_per_gpu_hour: float = 0.0) -> PooledVsSplit:
    """Size each pool of ``loads`` (req/s by pool) apart and all of them as one pool of identical replicas."""
    if not loads:
        raise ValueError("no pools to compare")
    kw = dict(quantile=quantile, headroom=headroom, gpus_per_replica=gpus_per_replica,
              usd_per_gpu_hour=usd_per_gpu_hour)
    split = tuple(plan_pool(n, lam, service_rate, wait_slo_s, **kw) for n, lam in loads.items())  # type: ignore[arg-type]
    pooled = plan_pool("pooled", sum(loads.values()), service_rate, wait_slo_s, **kw)  # type: ignore[arg-type]
    return PooledVsSplit(pooled, split)
