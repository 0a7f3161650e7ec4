"""NCCL collectives through torch.distributed, one process per GPU: algbw and busbw over a size sweep.

Sizes follow nccl-tests: the total buffer (the all_gather output, the reduce_scatter input, the
all_reduce and alltoall buffers). Each rank's input is a shared random tensor times (rank + 1), so
every collective's exact result is known; it is checked once per size before timing. The timed
all_reduce averages (same traffic as a sum, values stay bounded). Time per call is the slowest
rank's, the median of several trials of back-to-back calls.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from gpufleet.probes.stats import COLLECTIVES, busbw_factor, median

__all__ = ["nccl_probe", "SAFE_ENV"]

# NVLink multicast (NVLS) stays off: a program that uses it can take a shared host's GPUs out of service.
SAFE_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check(coll: str, out: Any, base: Any, world: int, rank: int) -> bool:
    import torch

    chunk = base.numel() // world
    if coll == "all_reduce":
        exp = base * (world * (world + 1) / 2)
    elif coll == "all_gather":
        exp = torch.cat([base[:chunk] * (r + 1) for r in range(world)])
    elif coll == "reduce_scatter":
        exp = base[rank * chunk:(rank + 1) * chunk] * (world * (world + 1) / 2)
    else:  # alltoall: block j comes from rank j, which sent its block `rank`
        exp = torch.cat([base[rank * chunk:(rank + 1) * chunk] * (j + 1) for j in range(world)])
    return bool(torch.isfinite(out).all()) and bool(torch.allclose(out, exp, rtol=1e-5, atol=1e-6))


def _worker(rank: int, world: int, port: int, sizes: Sequence[int], colls: Sequence[str], iters: int,
            trials: int, queue: Any) -> None:
    import torch
    import torch.distributed as dist

    for k, v in SAFE_ENV.items():
        os.environ[k] = v
    torch.cuda.set_device(rank)
    dev = torch.device("cuda", rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            device_id=dev)
    rows = []
    try:
        for coll in colls:
            for size in sizes:
                count = size // 4 // world * world
                gen = torch.Generator(device=dev).manual_seed(size)
                base = torch.rand(count, device=dev, generator=gen)
                chunk = count // world
                if coll == "all_gather":
                    inp = base[:chunk] * (rank + 1)
                    out = torch.full((count,), float("nan"), device=dev)

                    def call(inp: Any = inp, out: Any = out) -> None:
                        dist.all_gather_into_tensor(out, inp)
                elif coll == "reduce_scatter":
                    inp = base * (rank + 1)
                    out = torch.full((chunk,), float("nan"), device=dev)

                    def call(inp: Any = inp, out: Any = out) -> None:
                        dist.reduce_scatter_tensor(out, inp)
                elif coll == "alltoall":
                    inp = base * (rank + 1)
                    out = torch.full((count,), float("nan"), device=dev)

                    def call(inp: Any = inp, out: Any = out) -> None:
                        dist.all_to_all_single(out, inp)
                else:
                    out = base * (rank + 1)
                    inp = out

                    def call(inp: Any = inp, out: Any = out) -> None:
                        dist.all_reduce(out)
                call()
                torch.cuda.synchronize(dev)
                ok = torch.tensor([1.0 if _check(coll, out, base, world, rank) else 0.0], device=dev)
                dist.all_reduce(ok, op=dist.ReduceOp.MIN)
                if coll == "all_reduce":
                    def call(inp: Any = inp, out: Any = out) -> None:
                        dist.all_reduce(out, op=dist.ReduceOp.AVG)
                for _ in range(3):
                    call()
                times = []
                for _ in range(trials):
                    dist.barrier(device_ids=[rank])
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    for _ in range(iters):
                        call()
                    end.record()
                    torch.cuda.synchronize(dev)
                    t = torch.tensor([start.elapsed_time(end) / 1e3 / iters], device=dev)
                    dist.all_reduce(t, op=dist.ReduceOp.MAX)
                    times.append(float(t))
                finite = torch.tensor([1.0 if bool(torch.isfinite(out).all()) else 0.0], device=dev)
                dist.all_reduce(finite, op=dist.ReduceOp.MIN)
                t_med = median(times)
                nbytes = count * 4
                algbw = nbytes / t_med
                rows.append({"collective": coll, "ranks": world, "size_bytes": nbytes, "time_s": t_med,
                             "algbw": algbw, "busbw": algbw * busbw_factor(coll, world),
                             "correct": bool(ok.item() == 1.0 and finite.item() == 1.0),
                             "spread_ratio": (max(times) - min(times)) / t_med})
                del inp, out, base
        if rank == 0:
            queue.put(rows)
    finally:
        dist.destroy_process_group()


def nccl_probe(world: int, sizes: Sequence[int], collectives: Sequence[str] = COLLECTIVES, *, iters: int = 20,
               trials: int = 5) -> list[dict[str, Any]]:
    """Run the collectives on GPUs 0..world-1 (one spawned process each); rows of figures per size."""
    import torch.multiprocessing as mp

    unknown = sorted(set(collectives) - set(COLLECTIVES))
    if unknown:
        raise ValueError(f"unknown collectives {unknown}; known: {', '.join(COLLECTIVES)}")
    if world < 2:
        raise ValueError(f"NCCL probes need at least 2 GPUs, got {world}")
    os.environ.update(SAFE_ENV)
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.spawn(_worker, args=(world, _free_port(), list(sizes), list(collectives), iters, trials, queue),
             nprocs=world, join=True)
    rows: list[dict[str, Any]] = queue.get() if not queue.empty() else []
    return rows
