"""Mean time to failure from failure counts and exposure, and its projection for a job of N GPUs.

With independent GPUs failing at rate ``r`` per GPU-hour, a job of ``n`` GPUs fails at ``n r``,
so its MTTF is ``1 / (n r)`` hours.
"""

from __future__ import annotations

import math

__all__ = ["failure_rate", "mttf_hours", "job_mttf_hours"]


def failure_rate(failures: float, unit_hours: float) -> float:
    """Failures per unit-hour (GPU-hour or node-hour)."""
    if unit_hours <= 0:
        raise ValueError(f"exposure must be > 0 unit-hours, got {unit_hours}")
    if failures < 0:
        raise ValueError(f"failures must be >= 0, got {failures}")
    return failures / unit_hours


def mttf_hours(failures: float, unit_hours: float) -> float:
    """MTTF of one unit in hours (inf with no failures)."""
    rate = failure_rate(failures, unit_hours)
    return math.inf if rate == 0 else 1.0 / rate


def job_mttf_hours(rate_per_gpu_hour: float, gpus: int) -> float:
    """MTTF in hours of a job spanning ``gpus`` GPUs: ``1 / (gpus * rate)``."""
    if gpus < 1:
        raise ValueError(f"gpus must be >= 1, got {gpus}")
    if rate_per_gpu_hour < 0:
        raise ValueError(f"failure rate must be >= 0, got {rate_per_gpu_hour}")
    return math.inf if rate_per_gpu_hour == 0 else 1.0 / (gpus * rate_per_gpu_hour)
