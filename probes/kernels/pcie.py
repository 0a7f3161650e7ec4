"""Host-device copy bandwidth over PCIe with pinned host memory, each direction timed alone."""

from __future__ import annotations

from typing import Any

from gpufleet.probes.kernels.timing import time_repeats
from gpufleet.probes.results import Measurement
from gpufleet.probes.stats import median, spread_ratio

__all__ = ["pcie_probe"]


def pcie_probe(device: Any, nbytes: int, *, warmup: int = 3, repeats: int = 20,
               peak: float | None = None) -> list[Measurement]:
    """H2D and D2H bandwidth (bytes/s) of ``nbytes`` copies; the bytes that arrive are checked."""
    import torch

    pinned = device.type == "cuda"
    gen = torch.Generator(device=device).manual_seed(99)
    src = torch.randint(0, 256, (nbytes,), dtype=torch.uint8, device=device, generator=gen)
    back = torch.zeros(nbytes, dtype=torch.uint8, device=device)
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
    out = []
    for direction in ("d2h", "h2d"):
        if direction == "d2h":
            def run() -> None:
                host.copy_(src, non_blocking=pinned)
        else:
            def run() -> None:
                back.copy_(host, non_blocking=pinned)
        times = time_repeats(run, device, warmup=warmup, repeats=repeats)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates = [nbytes / t for t in times]
        out.append((direction, rates, times))
    correct = bool(torch.equal(back, src))  # device -> pinned host -> device, byte for byte
    return [Measurement("pcie_bandwidth", median(rates), "bytes_per_second", {"direction": d}, peak, repeats,
                        spread_ratio(rates), correct, None if correct else "bytes after the round trip differ",
                        {"bytes_per_call": nbytes, "pinned": pinned, "median_time_s": median(times)})
            for d, rates, times in out]
