"""Dense matrix-product throughput per dtype over a small shape sweep: the achievable MFU ceiling.

bf16, fp16 and tf32 run through ``torch.matmul`` (cuBLAS); fp8 (e4m3 operands, bf16 output) through
``torch._scaled_mm`` where the GPU and PyTorch support it. Operands are random. Each shape's output
is poisoned, then a block of rows is checked against a float64 product of the same (rounded)
operands by relative Frobenius error; NaN never passes. The figure is the best shape's median.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gpufleet.probes.kernels.timing import time_repeats
from gpufleet.probes.results import Measurement
from gpufleet.probes.stats import matmul_flop, median, spread_ratio

__all__ = ["matmul_probe", "TOLERANCE"]

# Relative Frobenius error allowed against the float64 product of the same operands.
TOLERANCE = {"bf16": 1e-2, "fp16": 5e-3, "tf32": 5e-3, "fp8": 2e-2}
_CHECK_ROWS = 256


def _operands(dtype: str, n: int, device: Any, gen: Any) -> tuple[Callable[[], Any], Any, Any, Any]:
    """(run, a as used, b as used, output) for one square shape."""
    import torch

    a32 = torch.randn(n, n, device=device, generator=gen)
    b32 = torch.randn(n, n, device=device, generator=gen)
    if dtype in ("bf16", "fp16"):
        t = torch.bfloat16 if dtype == "bf16" else torch.float16
        a, b = a32.to(t), b32.to(t)
        c = torch.full((n, n), float("nan"), device=device, dtype=t)
        del a32, b32
        return (lambda: torch.matmul(a, b, out=c)), a, b, c
    if dtype == "tf32":
        c = torch.full((n, n), float("nan"), device=device)
        return (lambda: torch.matmul(a32, b32, out=c)), a32, b32, c
    if dtype == "fp8":
        if device.type != "cuda" or not hasattr(torch, "float8_e4m3fn"):
            raise NotImplementedError("fp8 needs a CUDA GPU with FP8 tensor cores and torch._scaled_mm")
        a8 = a32.to(torch.float8_e4m3fn)
        b8 = b32.t().contiguous().to(torch.float8_e4m3fn).t()  # column-major, as _scaled_mm wants
        one = torch.ones((), device=device, dtype=torch.float32)
        del a32, b32
        holder: dict[str, Any] = {}

        def run() -> Any:
            holder["c"] = torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
            return holder["c"]

        return run, a8, b8, holder
    raise ValueError(f"unknown matmul dtype {dtype!r}; known: {', '.join(TOLERANCE)}")


def _rel_error(c: Any, a: Any, b: Any) -> float:
    import torch

    rows = min(_CHECK_ROWS, a.shape[0])
    ref = a[:rows].to(torch.float32).to(torch.float64) @ b.to(torch.float32).to(torch.float64)
    got = c[:rows].to(torch.float64)
    err = float(torch.linalg.vector_norm(got - ref) / torch.linalg.vector_norm(ref))
    return err if err == err else float("inf")  # NaN -> inf: never passes


def matmul_probe(device: Any, dtype: str, sizes: Sequence[int], *, warmup: int = 5, repeats: int = 20,
                 peak: float | None = None) -> Measurement:
    """Best median FLOP/s of ``dtype`` over square shapes ``sizes``; per-shape figures in ``detail``."""
    import torch

    prev = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if dtype == "tf32" else "highest")
    gen = torch.Generator(device=device).manual_seed(4321)
    shapes: list[dict[str, Any]] = []
    try:
        for n in sizes:
            run, a, b, c = _operands(dtype, n, device, gen)  # NotImplementedError: dtype unsupported here
            run()
            out = c["c"] if isinstance(c, dict) else c
            err = _rel_error(out, a, b)
            finite = bool(torch.isfinite(out).all())
            times = time_repeats(run, device, warmup=warmup, repeats=repeats)
            out = c["c"] if isinstance(c, dict) else c
            finite = finite and bool(torch.isfinite(out).all())
            rates = [matmul_flop(n, n, n) / t for t in times]
            shapes.append({"n": n, "flops": median(rates), "spread_ratio": spread_ratio(rates), "rel_error": err,
                           "correct": finite and err <= TOLERANCE[dtype], "median_time_s": median(times)})
            del run, a, b, c, out
    finally:
        torch.set_float32_matmul_precision(prev)
    best = max(shapes, key=lambda s: s["flops"])
    correct = all(s["correct"] for s in shapes)
    worst = max(s["rel_error"] for s in shapes)
    return Measurement("matmul", best["flops"], "flops", {"dtype": dtype}, peak, repeats, best["spread_ratio"],
                       correct, None if correct else f"relative error {worst:.2e} over tolerance {TOLERANCE[dtype]}",
                       {"best_n": best["n"], "shapes": shapes, "tolerance": TOLERANCE[dtype]})
