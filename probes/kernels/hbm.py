"""STREAM-style device-memory bandwidth: copy (a = b) and triad (a = b + s c) over arrays far larger than L2.

The kernels are Triton's (one pass, each element read and written once); without Triton the
same operations run through PyTorch (``copy_``, ``add`` with ``alpha``). Bandwidth counts bytes
read plus bytes written. The data is random, the output is poisoned with NaN before the check,
and the check compares every element with PyTorch's result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpufleet.probes.kernels.timing import time_repeats
from gpufleet.probes.results import Measurement
from gpufleet.probes.stats import median, spread_ratio, stream_bytes

__all__ = ["hbm_probe", "triton_kernels"]

# 2048 elements with 16 warps and no eviction hint measured fastest on an H100 (benchmarks/probe_hbm_sweep.py)
_BLOCK = 2048
_WARPS = 16
_SCALAR = 0.5
_CACHE: dict[str, Any] = {}


def triton_kernels() -> tuple[Any, Any]:
    """The Triton copy and triad kernels (compiled on first use); ImportError without Triton."""
    if "kernels" not in _CACHE:
        import triton
        import triton.language as tl

        @triton.jit
        def copy_kernel(src, dst, n, BLOCK: tl.constexpr):
            offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
            mask = offs < n
            tl.store(dst + offs, tl.load(src + offs, mask=mask), mask=mask)

        @triton.jit
        def triad_kernel(b, c, a, s, n, BLOCK: tl.constexpr):
            offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
            mask = offs < n
            x = tl.load(b + offs, mask=mask)
            y = tl.load(c + offs, mask=mask)
            tl.store(a + offs, x + s * y, mask=mask)

        _CACHE["kernels"] = (copy_kernel, triad_kernel)
    kernels: tuple[Any, Any] = _CACHE["kernels"]
    return kernels


def _ops(device: Any, n: int) -> tuple[str, Callable[..., Any], Callable[..., Any]]:
    import torch

    if device.type == "cuda":
        try:
            copy_k, triad_k = triton_kernels()
            grid = ((n + _BLOCK - 1) // _BLOCK,)

            def t_copy(src: torch.Tensor, dst: torch.Tensor) -> None:
                copy_k[grid](src, dst, n, BLOCK=_BLOCK, num_warps=_WARPS)

            def t_triad(b: torch.Tensor, c: torch.Tensor, a: torch.Tensor) -> None:
                triad_k[grid](b, c, a, _SCALAR, n, BLOCK=_BLOCK, num_warps=_WARPS)

            return "triton", t_copy, t_triad
        except ImportError:
            pass

    def p_copy(src: torch.Tensor, dst: torch.Tensor) -> None:
        dst.copy_(src)

    def p_triad(b: torch.Tensor, c: torch.Tensor, a: torch.Tensor) -> None:
        torch.add(b, c, alpha=_SCALAR, out=a)

    return "torch", p_copy, p_triad


def hbm_probe(device: Any, elements: int, *, warmup: int = 5, repeats: int = 30,
              peak: float | None = None) -> list[Measurement]:
    """Copy and triad bandwidth (bytes/s) over float32 arrays of ``elements`` each."""
    import torch

    gen = torch.Generator(device=device).manual_seed(1234)
    b = torch.rand(elements, device=device, generator=gen)
    c = torch.rand(elements, device=device, generator=gen)
    a = torch.empty(elements, device=device)
    impl, do_copy, do_triad = _ops(device, elements)
    fallback: str | None = None
    try:
        do_copy(b, a)
    except Exception as exc:  # noqa: BLE001 - a Triton that cannot compile here: run the PyTorch path
        _, do_copy, do_triad = _ops(torch.device("cpu"), elements)
        impl = "torch"
        fallback = f"{type(exc).__name__}: {str(exc)[:200]}"
    else:
        fallback = None
    out = []
    for kernel in ("copy", "triad"):
        a.fill_(float("nan"))
        if kernel == "copy":
            def run() -> None:
                do_copy(b, a)
        else:
            def run() -> None:
                do_triad(b, c, a)
        run()
        if kernel == "copy":
            correct = bool(torch.equal(a, b))
        else:
            ref = torch.add(b, c, alpha=_SCALAR)
            correct = bool(torch.isfinite(a).all()) and bool(torch.allclose(a, ref, rtol=1e-6, atol=1e-7))
            del ref
        times = time_repeats(run, device, warmup=warmup, repeats=repeats)
        nbytes = stream_bytes(kernel, elements, a.element_size())
        rates = [nbytes / t for t in times]
        if kernel == "triad":  # the timed runs rewrite a; check the last one too
            correct = correct and bool(torch.allclose(a, torch.add(b, c, alpha=_SCALAR), rtol=1e-6, atol=1e-7))
        detail: dict[str, Any] = {"impl": impl, "bytes_per_call": nbytes, "array_bytes": elements * a.element_size(),
                                  "median_time_s": median(times)}
        if fallback:
            detail["triton_error"] = fallback
        out.append(Measurement("hbm_bandwidth", median(rates), "bytes_per_second", {"kernel": kernel}, peak,
                               repeats, spread_ratio(rates), correct,
                               None if correct else "output did not match the reference", detail))
    return out
