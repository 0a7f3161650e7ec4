"""Effective training time ratio and ML productivity goodput under failures and checkpointing.

Each failure loses, on average, half a checkpoint interval of work plus the restart cost; writing
a checkpoint costs ``checkpoint_cost_s`` each interval. With MTTF ``M``, interval ``tau``, restart
``R`` and checkpoint cost ``C``: ETTR = (1 - C / tau) * (1 - (tau / 2 + R) / M), floored at 0.
Goodput is scheduling x runtime x program goodput (Google's ML productivity goodput).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ettr", "Goodput", "ml_goodput", "young_interval_s"]


def ettr(mttf_s: float, checkpoint_interval_s: float, restart_s: float, checkpoint_cost_s: float = 0.0) -> float:
    """Expected share of wall time that is productive training (0-1)."""
    if checkpoint_interval_s <= 0:
        raise ValueError(f"checkpoint interval must be > 0 s, got {checkpoint_interval_s}")
    if restart_s < 0 or checkpoint_cost_s < 0:
        raise ValueError("restart and checkpoint costs must be >= 0 s")
    if mttf_s <= 0:
        raise ValueError(f"MTTF must be > 0 s, got {mttf_s}")
    save = max(0.0, 1.0 - checkpoint_cost_s / checkpoint_interval_s)
    lost = 0.0 if math.isinf(mttf_s) else (checkpoint_interval_s / 2 + restart_s) / mttf_s
    return max(0.0, save * (1.0 - lost))


def young_interval_s(mttf_s: float, checkpoint_cost_s: float) -> float:
    """Young's near-optimal checkpoint interval ``sqrt(2 C M)``."""
    return math.sqrt(2 * checkpoint_cost_s * mttf_s)


@dataclass(frozen=True)
class Goodput:
    """The three factors and their product."""

    scheduling: float
    runtime: float
    program: float

    @property
    def total(self) -> float:
        """Scheduling x runtime x program goodput."""
        return self.scheduling * self.runtime * self.program


def ml_goodput(scheduling: float, runtime: float, program: float) -> Goodput:
    """Check each factor lies in [0, 1] and combine them."""
    for name, v in (("scheduling", scheduling), ("runtime", runtime), ("program", program)):
        if not 0 <= v <= 1:
            raise ValueError(f"{name} goodput must be in [0, 1], got {v}")
    return Goodput(scheduling, runtime, program)
