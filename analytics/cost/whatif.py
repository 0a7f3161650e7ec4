"""What-if pricing: on-demand vs reserved vs spot, and rightsizing to another GPU model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Scenario", "compare_pricing", "break_even_utilization", "rightsize"]


@dataclass(frozen=True)
class Scenario:
    """The same GPU-hours priced one way."""

    category: str
    cost_usd: float
    note: str


def break_even_utilization(on_demand: float, reserved: float) -> float:
    """Busy fraction above which a reservation (paid every hour) beats paying on demand for used hours."""
    return reserved / on_demand


def compare_pricing(used_gpu_hours: float, window_hours: float, gpus: int, on_demand: float, *,
                    reserved_discount: float, spot_discount: float, spot_interruption_overhead: float = 0.10
                    ) -> list[Scenario]:
    """Price the same usage on demand, reserved and spot.

    On demand pays the used hours; reserved pays every hour of ``gpus``; spot pays the used hours plus
    ``spot_interruption_overhead`` of work redone after interruptions.
    """
    reserved = on_demand * (1 - reserved_discount)
    util = used_gpu_hours / (gpus * window_hours) if gpus and window_hours else 0.0
    be = break_even_utilization(on_demand, reserved)
    return [
        Scenario("on_demand", used_gpu_hours * on_demand, "pay per used GPU-hour"),
        Scenario("reserved", gpus * window_hours * reserved,
                 f"utilization {util:.0%} vs break-even {be:.0%}: "
                 + ("reserve" if util >= be else "stay on demand")),
        Scenario("spot", used_gpu_hours * (1 + spot_interruption_overhead) * on_demand * (1 - spot_discount),
                 f"{spot_interruption_overhead:.0%} of work redone after interruptions"),
    ]


def rightsize(gpu_hours: float, current_model: str, throughput: Mapping[str, float],
              price: Mapping[str, float]) -> list[Scenario]:
    """The same work on each other GPU model: hours scale by probe-measured throughput (current/other)."""
    if current_model not in throughput:
        raise ValueError(f"no probe throughput for {current_model!r}; run the probes on that model first")
    base = throughput[current_model]
    out = []
    for model, tp in sorted(throughput.items()):
        if model in price and tp > 0:
            hours = gpu_hours * base / tp
            out.append(Scenario(model, hours * price[model], f"{hours:,.1f} GPU-h at {tp / base:.2f}x"))
    return sorted(out, key=lambda s: s.cost_usd)
