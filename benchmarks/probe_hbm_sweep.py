#!/usr/bin/env python3
"""HBM copy/triad: the probe's Triton kernels (with and without an eviction hint) over block sizes and warps vs PyTorch.

    python3 benchmarks/probe_hbm_sweep.py [--mib 512 1024 4096]

Prints TB/s (bytes read + written) per variant and the ratio to PyTorch's own device copy, the peer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import probe_device  # noqa: E402,F401  (makes gpufleet importable from a plain checkout)
import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from gpufleet.probes.kernels.hbm import triton_kernels  # noqa: E402
from gpufleet.probes.kernels.timing import time_repeats  # noqa: E402
from gpufleet.probes.stats import median  # noqa: E402


@triton.jit
def _copy_evict(src, dst, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst + offs, tl.load(src + offs, mask=mask, eviction_policy="evict_first"), mask=mask)


def _variants(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> dict[str, tuple[int, Callable[[], object]]]:
    copy_k, triad_k = triton_kernels()
    n = a.numel()
    two, three = 2 * n * 4, 3 * n * 4
    out: dict[str, tuple[int, Callable[[], object]]] = {
        "torch copy_": (two, lambda: a.copy_(b)),
        "torch add (triad)": (three, lambda: torch.add(b, c, alpha=0.5, out=a)),
    }
    for block in (1024, 2048, 4096, 8192, 16384):
        grid = ((n + block - 1) // block,)
        for warps in (4, 8, 16):
            out[f"triton copy B{block} w{warps}"] = (
                two, partial(lambda g, bl, w: copy_k[g](b, a, n, BLOCK=bl, num_warps=w), grid, block, warps))
            out[f"triton evict B{block} w{warps}"] = (
                two, partial(lambda g, bl, w: _copy_evict[g](b, a, n, BLOCK=bl, num_warps=w), grid, block, warps))
            out[f"triton triad B{block} w{warps}"] = (
                three, partial(lambda g, bl, w: triad_k[g](b, c, a, 0.5, n, BLOCK=bl, num_warps=w), grid, block, warps))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, nargs="+", default=[512, 2048])
    args = ap.parse_args()
    dev = torch.device("cuda", 0)
    for mib in args.mib:
        n = mib * (1 << 20) // 4
        b = torch.rand(n, device=dev)
        c = torch.rand(n, device=dev)
        a = torch.empty(n, device=dev)
        res = {name: nbytes / median(time_repeats(fn, dev, warmup=5, repeats=30))
               for name, (nbytes, fn) in _variants(a, b, c).items()}
        ref = res["torch copy_"]
        print(f"\n{mib} MiB per array (peer: torch copy_ {ref / 1e12:.3f} TB/s = {ref / 3.35e12:.1%} of 3.35)")
        for name, v in sorted(res.items(), key=lambda kv: -kv[1])[:16]:
            print(f"  {name:28} {v / 1e12:.3f} TB/s  {v / 3.35e12:6.1%}  x{v / ref:.3f} vs torch copy_")
        del a, b, c
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
