"""An inference replica under diurnal Poisson traffic: latency that grows with load.

Latencies are lognormal with medians that rise with utilisation (and with a backlog once
arrivals outrun capacity); histogram counts are drawn as multinomials over each engine's
real bucket boundaries, so the cumulative counters look exactly like an engine's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Replica", "TTFT_BUCKETS", "ITL_BUCKETS", "E2E_BUCKETS", "diurnal"]

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
               40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
               480.0, 960.0, 1920.0, 7680.0)
OUTCOMES = ("stop", "length", "abort", "error")


def diurnal(t: float) -> float:
    """Traffic relative to the daily mean: peak mid-afternoon UTC, trough before dawn, quieter weekends."""
    hour = (t % 86400) / 3600
    day = int(t // 86400 + 4) % 7  # 1970-01-01 was a Thursday; 5, 6 are Saturday, Sunday
    weekend = 0.7 if day in (5, 6) else 1.0
    return max(0.05, (1 + 0.6 * math.sin(2 * math.pi * (hour - 9) / 24))) * weekend


def _lognormal_probs(bounds: tuple[float, ...], median: float, sigma: float) -> np.ndarray:
    """P(bucket i) for a lognormal over finite ``bounds`` plus the +Inf bucket."""
    cdf = np.array([0.5 * (1 + math.erf((math.log(b) - math.log(median)) / (sigma * math.sqrt(2)))) for b in bounds])
    p = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    return np.clip(p, 0, None) / p.clip(0, None).sum()


def _mean(median: float, sigma: float) -> float:
    """The mean of a lognormal distribution with this median and log-space spread."""
    return median * math.exp(sigma * sigma / 2)


@dataclass
class Hist:
    bounds: tuple[float, ...]
    counts: np.ndarray = field(init=False)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = np.zeros(len(self.bounds) + 1, dtype=np.int64)

    def observe(self, rng: np.random.Generator, n: int, median: float, sigma: float, mean: float | None = None) -> None:
        """Count ``n`` lognormal observations; the sum grows by ``n * mean`` (by default the lognormal's mean)."""
        if n <= 0:
            return
        self.counts += rng.multinomial(n, _lognormal_probs(self.bounds, median, sigma))
        self.total += n * (mean if mean is not None else _mean(median, sigma))

    def cumulative(self) -> np.ndarray:
        return np.cumsum(self.counts)


@dataclass
class Replica:
    """One engine endpoint (a pod). Counters only grow; gauges describe the last interval."""

    capacity_rps: float
    base_rps: float
    params_b: float
    ttft: Hist = field(default_factory=lambda: Hist(TTFT_BUCKETS))
    itl: Hist = field(default_factory=lambda: Hist(ITL_BUCKETS))
    tpot: Hist = field(default_factory=lambda: Hist(ITL_BUCKETS))
    e2e: Hist = field(default_factory=lambda: Hist(E2E_BUCKETS))
    queue: Hist = field(default_factory=lambda: Hist(E2E_BUCKETS))
    prompt_tokens: float = 0.0
    generation_tokens: float = 0.0
    cached_tokens: float = 0.0
    outcomes: dict[str, float] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0.0))
    preemptions: float = 0.0
    backlog: float = 0.0
    running: float = 0.0
    waiting: float = 0.0
    kv_usage: float = 0.0
    utilization: float = 0.0  # offered load over capacity, for the GPU model

    def step(self, rng: np.random.Generator, t: float, dt: float, *, load_factor: float = 1.0,
             error_rate: float = 0.0, down: bool = False) -> None:
        lam = self.base_rps * diurnal(t) * load_factor * float(rng.normal(1.0, 0.04))
        lam = max(lam, 0.0)
        cap = self.capacity_rps
        self.backlog = max(0.0, self.backlog + (lam - cap) * dt)
        rho = min(lam / cap, 0.985)
        self.utilization = 0.0 if down else min(lam / cap, 1.0)
        n = int(rng.poisson(lam * dt))
        size = math.sqrt(max(self.params_b, 0.5) / 8)
        wait = self.backlog / cap
        queue_median = 0.02 * rho / (1 - rho) + wait
        ttft_median = 0.06 * size * (1 + 0.5 * rho / (1 - rho)) + queue_median
        itl_median = 0.011 * size * (1 + 0.9 * rho)
        gen_mean = 220.0
        e2e_median = ttft_median + gen_mean * itl_median
        if down:
            self.outcomes["error"] += n
            self.running = self.waiting = self.kv_usage = 0.0
            return
        gen = float(rng.gamma(20, gen_mean / 20)) * n
        prompt = float(rng.gamma(20, 850 / 20)) * n
        # a request's queue wait is part of its time to first token, which is part of its end-to-end time:
        # the sums add up part by part, so no mean is larger than the one it is part of
        queue_mean = _mean(max(queue_median, 0.001), 0.9)
        ttft_mean = queue_mean + _mean(ttft_median - queue_median, 0.55)
        e2e_mean = ttft_mean + gen_mean * _mean(itl_median, 0.25)
        self.ttft.observe(rng, n, ttft_median, 0.55, ttft_mean)
        self.e2e.observe(rng, n, e2e_median, 0.45, e2e_mean)
        self.queue.observe(rng, n, max(queue_median, 0.001), 0.9, queue_mean)
        self.tpot.observe(rng, n, itl_median, 0.25)
        self.itl.observe(rng, max(int(gen) - n, 0), itl_median, 0.4)
        self.prompt_tokens += round(prompt)
        self.generation_tokens += round(gen)
        self.cached_tokens += round(prompt * float(rng.uniform(0.3, 0.45)))
        err = min(1.0, 0.001 + error_rate + (0.04 if lam > cap else 0.0))
        counts = rng.multinomial(n, [0.9 * (1 - err), 0.085 * (1 - err), 0.015 * (1 - err), err])
        for k, c in zip(OUTCOMES, counts, strict=True):
            self.outcomes[k] += int(c)
        self.running = float(round(lam * e2e_median * 1.1))
        self.waiting = float(round(self.backlog + rho * rho / (1 - rho)))
        self.kv_usage = min(0.99, 0.12 + 0.8 * rho + 0.1 * min(self.backlog, 1.0))
        self.preemptions += int(rng.poisson(n * 0.3 * max(0.0, self.kv_usage - 0.88)))
