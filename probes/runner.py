"""The probe runner: the suite on this node's GPUs, one GPU after another, then NCCL across them."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from gpufleet.probes.nvml import NvmlInfo
from gpufleet.probes.results import CollectiveResult, GpuResult, Measurement, ProbeRun
from gpufleet.probes.specs import MATMUL_DTYPES, GpuPeaks, UnknownGpuModel, pcie_link_bytes_per_second, resolve_spec
from gpufleet.probes.stats import COLLECTIVES

__all__ = ["Suite", "SUITES", "GpuBusy", "check_busy", "run_suite", "probe_device", "node_name"]

MiB = 1 << 20


@dataclass(frozen=True)
class Suite:
    """Sizes and repeats of one suite."""

    name: str
    hbm_elements: int  # float32 elements per array (three arrays for triad)
    hbm_repeats: int
    matmul_dtypes: tuple[str, ...]
    matmul_sizes: tuple[int, ...]
    matmul_repeats: int
    pcie_bytes: int
    pcie_repeats: int
    nccl_sizes: tuple[int, ...]
    nccl_iters: int
    warmup: int = 5


SUITES: dict[str, Suite] = {
    # quick: a few seconds per GPU; arrays of 2 GiB (40x the 50-60 MB L2 of Hopper), one 8192^3 matmul shape
    "quick": Suite("quick", 1 << 29, 30, ("bf16", "fp8"), (8192,), 20, 256 * MiB, 20, (64 * MiB, 256 * MiB), 20),
    # full: 2 GiB arrays, every dtype over a shape sweep, 1 GiB PCIe copies, NCCL from 1 MiB to 1 GiB
    "full": Suite("full", 1 << 29, 50, MATMUL_DTYPES, (2048, 4096, 8192, 16384), 30, 1024 * MiB, 30,
                  (MiB, 4 * MiB, 16 * MiB, 64 * MiB, 256 * MiB, 1024 * MiB), 20),
}


class GpuBusy(RuntimeError):
    """Another process computes on the GPU and ``force`` was not given."""


def check_busy(busy: dict[int, list[int]], uuids: dict[int, str], *, force: bool) -> None:
    """Raise :class:`GpuBusy` naming each GPU (index -> other pids in ``busy``) that others use, unless ``force``."""
    taken = {i: p for i, p in sorted(busy.items()) if p}
    if taken and not force:
        which = "; ".join(f"GPU {i} ({uuids.get(i, '?')}) runs pids {', '.join(map(str, p))}"
                          for i, p in taken.items())
        raise GpuBusy(f"{which}: probing would disturb that work and read low. Run when the GPU is free, "
                      f"or pass --force (the verdict then says the GPU was shared)")


def node_name() -> str:
    """The Kubernetes node (``NODE_NAME`` from the downward API) or the host name."""
    return os.environ.get("NODE_NAME") or socket.gethostname()


def probe_device(device: Any, suite: Suite, spec: GpuPeaks | None, pcie_peak: float | None = None,
                 on_progress: Callable[[str], None] | None = None) -> tuple[list[Measurement], list[str]]:
    """Every per-GPU probe of ``suite`` on ``device``; (measurements, notes on what was skipped)."""
    from gpufleet.probes.kernels.hbm import hbm_probe
    from gpufleet.probes.kernels.matmul import matmul_probe
    from gpufleet.probes.kernels.pcie import pcie_probe

    say = on_progress or (lambda _msg: None)
    out: list[Measurement] = []
    notes: list[str] = []

    def guarded(name: str, labels: dict[str, str], unit: str, fn: Callable[[], Any]) -> None:
        try:
            got = fn()
        except NotImplementedError as exc:
            notes.append(f"{name} {labels}: skipped ({exc})")
            return
        except Exception as exc:  # noqa: BLE001 - a probe that cannot run is a finding, not a crash
            out.append(Measurement(name, float("nan"), unit, labels, correct=False,
                                   error=f"{type(exc).__name__}: {str(exc)[:300]}"))
            return
        out.extend(got if isinstance(got, list) else [got])

    say("hbm")
    guarded("hbm_bandwidth", {}, "bytes_per_second",
            lambda: hbm_probe(device, suite.hbm_elements, warmup=suite.warmup, repeats=suite.hbm_repeats,
                              peak=spec.hbm_bytes_per_second if spec else None))
    for dtype in suite.matmul_dtypes:
        if spec is not None and spec.matmul_flops(dtype) is None:
            notes.append(f"matmul {dtype}: skipped ({spec.key} has no {dtype} tensor cores)")
            continue
        say(f"matmul {dtype}")
        peak = spec.matmul_flops(dtype) if spec else None
        guarded("matmul", {"dtype": dtype}, "flops",
                partial(matmul_probe, device, dtype, suite.matmul_sizes, warmup=suite.warmup,
                        repeats=suite.matmul_repeats, peak=peak))
    say("pcie")
    guarded("pcie_bandwidth", {}, "bytes_per_second",
            lambda: pcie_probe(device, suite.pcie_bytes, warmup=3, repeats=suite.pcie_repeats, peak=pcie_peak))
    return out, notes


def _prefixed(say: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    return lambda msg: say(prefix + msg)


def _gpu_identity(index: int) -> tuple[str, str]:
    import torch

    props = torch.cuda.get_device_properties(index)
    raw = str(getattr(props, "uuid", "") or "")
    uuid = raw if raw.startswith(("GPU-", "MIG-")) or not raw else f"GPU-{raw}"
    return uuid or f"cuda:{index}", str(props.name)


def run_suite(suite: str = "quick", devices: Sequence[int] | None = None, *, force: bool = False,
              node: str | None = None, nccl: bool = True, nvml: NvmlInfo | None = None,
              on_progress: Callable[[str], None] | None = None) -> ProbeRun:
    """Probe this node's CUDA GPUs (all, or ``devices``) with ``suite``; raises GpuBusy unless ``force``."""
    import torch

    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA GPU is visible to PyTorch here; use --backend sim for the simulated fleet")
    s = SUITES[suite]
    nvml = nvml or NvmlInfo()
    count = torch.cuda.device_count()
    indices = list(devices) if devices is not None else list(range(count))
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise ValueError(f"GPU indices {bad} do not exist; this node has {count} (0..{count - 1})")
    node = node or node_name()
    idents = {i: _gpu_identity(i) for i in indices}
    busy = {i: nvml.other_processes(idents[i][0]) or [] for i in indices}
    check_busy(busy, {i: idents[i][0] for i in indices}, force=force)
    say = on_progress or (lambda _msg: None)
    started = time.time()
    notes: list[str] = []
    results: list[GpuResult] = []
    for i in indices:
        uuid, name = idents[i]
        try:
            spec: GpuPeaks | None = resolve_spec(name)
        except UnknownGpuModel as exc:
            spec = None
            notes.append(str(exc))
        link = nvml.pcie_link(uuid)
        if link is None and spec is not None:
            link = (spec.pcie_gen, spec.pcie_lanes)
        pcie_peak = pcie_link_bytes_per_second(*link) if link else None
        device = torch.device("cuda", i)
        torch.cuda.set_device(device)
        t0 = time.perf_counter()
        ms, gpu_notes = probe_device(device, s, spec, pcie_peak, on_progress=_prefixed(say, f"GPU {i}: "))
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        duration = time.perf_counter() - t0
        others = sorted(set(busy[i]) | set(nvml.other_processes(uuid) or []))
        notes += [f"GPU {i}: {n}" for n in gpu_notes]
        if link:
            notes.append(f"GPU {i}: PCIe Gen{link[0]} x{link[1]}")
        results.append(GpuResult(uuid, node, name, i, None, spec.key if spec else None, others, duration, ms))
    colls: list[CollectiveResult] = []
    if nccl and len(indices) > 1 and indices == list(range(len(indices))):
        from gpufleet.probes.kernels.nccl import nccl_probe

        say(f"nccl over {len(indices)} GPUs")
        try:
            rows = nccl_probe(len(indices), s.nccl_sizes, COLLECTIVES, iters=s.nccl_iters)
        except Exception as exc:  # noqa: BLE001 - a broken fabric is a finding
            notes.append(f"nccl: {type(exc).__name__}: {str(exc)[:300]}")
            rows = []
        model = results[0].gpu_model if results else None
        colls = [CollectiveResult(node, r["collective"], r["ranks"], r["size_bytes"], r["time_s"], r["algbw"],
                                  r["busbw"], r["correct"], None if r["correct"] else "result did not match",
                                  model) for r in rows]
    host = {"node": node, "torch": torch.__version__, "cuda": str(torch.version.cuda),
            "driver": nvml.driver_version() or "unknown", "notes": "; ".join(notes)}
    try:
        import triton

        host["triton"] = str(triton.__version__)
    except ImportError:
        host["triton"] = "absent"
    return ProbeRun(suite, "cuda", started, time.time(), results, colls, host=host)
