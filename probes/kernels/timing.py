"""Timing of device work: CUDA events around each repeat after a warm-up (host clock on the CPU)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["time_repeats"]


def time_repeats(fn: Callable[[], Any], device: Any, *, warmup: int, repeats: int) -> list[float]:
    """Seconds per call of ``fn`` for each of ``repeats`` calls after ``warmup`` untimed calls.

    On a CUDA device each call sits between two recorded events and is read after one final
    synchronisation, so launches queue back to back and no host clock enters the figure.
    """
    import torch

    if repeats < 1:
        raise ValueError(f"repeats {repeats} must be at least 1")
    for _ in range(warmup):
        fn()
    if device.type != "cuda":
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return out
    torch.cuda.synchronize(device)
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
    for start, end in events:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize(device)
    return [start.elapsed_time(end) / 1e3 for start, end in events]
