"""M/M/c queueing (Erlang B and C) and the smallest server count meeting a waiting-time target.

``A = lambda / mu`` is the offered load in Erlangs. Erlang C, the probability that an arrival
waits, comes from the numerically stable Erlang B recursion ``B(k) = A B(k-1) / (k + A B(k-1))``
and ``C = c B / (c - A (1 - B))``. Waiting time in M/M/c is 0 with probability ``1 - C`` and
exponential with rate ``c mu - lambda`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["erlang_b", "erlang_c", "wait_probability_over", "mean_wait", "wait_quantile", "servers_for_slo",
           "Sizing"]


def _check(servers: int, load: float) -> None:
    if servers < 1:
        raise ValueError(f"servers must be >= 1, got {servers}")
    if load < 0 or not math.isfinite(load):
        raise ValueError(f"offered load must be a finite number >= 0, got {load}")


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/c/c with ``servers`` servers and ``load`` Erlangs."""
    _check(servers, load)
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c; 1.0 when the system is unstable (load >= servers)."""
    _check(servers, load)
    if load >= servers:
        return 1.0
    b = erlang_b(servers, load)
    return servers * b / (servers - load * (1 - b))


def wait_probability_over(servers: int, arrival_rate: float, service_rate: float, t: float) -> float:
    """P(wait > t) in M/M/c."""
    load = arrival_rate / service_rate
    c = erlang_c(servers, load)
    if load >= servers:
        return 1.0
    return c * math.exp(-(servers * service_rate - arrival_rate) * t)


def mean_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean time in queue in M/M/c (inf when unstable)."""
    load = arrival_rate / service_rate
    if load >= servers:
        return math.inf
    return erlang_c(servers, load) / (servers * service_rate - arrival_rate)


def wait_quantile(servers: int, arrival_rate: float, service_rate: float, q: float) -> float:
    """The ``q`` quantile of the waiting time in M/M/c (0 when at least ``q`` of arrivals do not wait)."""
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    load = arrival_rate / service_rate
    if load >= servers:
        return math.inf
    c = erlang_c(servers, load)
    if c <= 1 - q:
        return 0.0
    return math.log(c / (1 - q)) / (servers * service_rate - arrival_rate)


@dataclass(frozen=True)
class Sizing:
    """Servers needed for a load: the binding constraint and the resulting queue figures."""

    servers: int
    load_erlangs: float
    utilization: float
    wait_probability: float
    wait_quantile_s: float
    binding: str  # "latency" | "utilization" | "minimum"


def servers_for_slo(arrival_rate: float, service_rate: float, wait_slo_s: float, quantile: float = 0.99,
                    max_utilization: float = 1.0, min_servers: int = 1, limit: int = 100_000) -> Sizing:
    """Fewest servers so that the ``quantile`` of waiting time is <= ``wait_slo_s`` and utilisation <= the cap."""
    if service_rate <= 0 or not math.isfinite(service_rate):
        raise ValueError(f"service rate must be > 0, got {service_rate}")
    if arrival_rate < 0 or not math.isfinite(arrival_rate):
        raise ValueError(f"arrival rate must be a finite number >= 0, got {arrival_rate}")
    if wait_slo_s < 0:
        raise ValueError(f"waiting-time SLO must be >= 0 s, got {wait_slo_s}")
    if not 0 < max_utilization <= 1:
        raise ValueError(f"max utilization must be in (0, 1], got {max_utilization}")
    load = arrival_rate / service_rate
    c_lat = math.floor(load) + 1
    while wait_quantile(c_lat, arrival_rate, service_rate, quantile) > wait_slo_s:
        c_lat += 1
        if c_lat > limit:
            raise ValueError(f"no server count up to {limit} meets the target for {arrival_rate} req/s")
    c_util = max(1, math.ceil(load / max_utilization - 1e-9))
    c = max(c_lat, c_util, min_servers)
    binding = "latency" if c == c_lat else "utilization" if c == c_util else "minimum"
    return Sizing(c, load, load / c, erlang_c(c, load), wait_quantile(c, arrival_rate, service_rate, quantile),
                  binding)
