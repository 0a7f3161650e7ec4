"""Simulated probe results for the simulated fleet: what the probe suite would measure on each GPU.

Figures are realistic per model (what healthy GPUs of that model reach with the suite's kernels),
vary by ~2-5% between GPUs and nodes, and follow the fleet's state: the straggler (``Gpu.speed < 1``)
multiplies slower, a node in a thermal episode runs ~12% slower, and a GPU that fell off the bus
cannot be probed at all. Same fleet, time and seed: same figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gpufleet.core.simfleet.topology import Gpu, Topology

__all__ = ["SimFigure", "SimGpuProbe", "SimCollective", "simulate_probes", "ACHIEVED"]

# What a healthy GPU of each model reaches: HBM copy/triad (bytes/s), matmul per dtype (FLOP/s), PCIe per
# direction (bytes/s), and 8-GPU NCCL bus bandwidth per collective (bytes/s).
ACHIEVED: dict[str, dict[str, float]] = {
    "H100": {"hbm_copy": 3.00e12, "hbm_triad": 3.05e12, "bf16": 790e12, "fp16": 785e12, "tf32": 370e12,
             "fp8": 1400e12, "h2d": 55.0e9, "d2h": 54.0e9, "all_reduce": 370e9, "all_gather": 355e9,
             "reduce_scatter": 355e9, "alltoall": 330e9},
    "H200": {"hbm_copy": 4.30e12, "hbm_triad": 4.35e12, "bf16": 790e12, "fp16": 785e12, "tf32": 372e12,
             "fp8": 1410e12, "h2d": 55.0e9, "d2h": 54.0e9, "all_reduce": 375e9, "all_gather": 360e9,
             "reduce_scatter": 360e9, "alltoall": 335e9},
    "A100": {"hbm_copy": 1.76e12, "hbm_triad": 1.78e12, "bf16": 262e12, "fp16": 262e12, "tf32": 128e12,
             "h2d": 25.0e9, "d2h": 24.5e9, "all_reduce": 230e9, "all_gather": 220e9, "reduce_scatter": 220e9,
             "alltoall": 200e9},
    "L40S": {"hbm_copy": 0.75e12, "hbm_triad": 0.76e12, "bf16": 275e12, "fp16": 275e12, "tf32": 132e12,
             "fp8": 520e12, "h2d": 25.0e9, "d2h": 24.5e9, "all_reduce": 22e9, "all_gather": 20e9,
             "reduce_scatter": 20e9, "alltoall": 18e9},
}
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "alltoall")
THERMAL_FACTOR = 0.88


@dataclass(frozen=True)
class SimFigure:
    """One figure: ``probe`` (hbm_bandwidth | matmul | pcie_bandwidth), its unit, qualifying labels, value."""

    probe: str
    unit: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class SimGpuProbe:
    """Everything the suite would report for one GPU; ``error`` set when the GPU cannot be probed."""

    gpu_uuid: str
    node: str
    cluster: str
    index: int
    model: str  # short model: H100
    nvml_name: str  # as NVML reports it
    figures: list[SimFigure] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0


@dataclass(frozen=True)
class SimCollective:
    """One NCCL collective on one node at ``size_bytes``."""

    node: str
    cluster: str
    model: str
    nvml_name: str
    collective: str
    ranks: int
    size_bytes: int
    busbw: float


def _gpu_figures(gpu: Gpu, rng: np.random.Generator, node_factor: float, suite: str) -> list[SimFigure]:
    a = ACHIEVED[gpu.model]
    gpu_factor = float(np.clip(rng.normal(1.0, 0.012), 0.97, 1.03))

    def jitter() -> float:
        return node_factor * gpu_factor * float(np.clip(rng.normal(1.0, 0.008), 0.98, 1.02))

    mem_speed = 0.5 + 0.5 * gpu.speed  # a slow SM clock costs the bandwidth probe less
    out = [SimFigure("hbm_bandwidth", "bytes_per_second", {"kernel": k}, a[f"hbm_{k}"] * mem_speed * jitter())
           for k in ("copy", "triad")]
    dtypes = ("bf16", "fp8") if suite == "quick" else ("bf16", "fp16", "tf32", "fp8")
    out += [SimFigure("matmul", "flops", {"dtype": d}, a[d] * gpu.speed * jitter()) for d in dtypes if d in a]
    out += [SimFigure("pcie_bandwidth", "bytes_per_second", {"direction": d},
                      a[d] * float(np.clip(rng.normal(1.0, 0.01), 0.97, 1.03))) for d in ("h2d", "d2h")]
    return out


def simulate_probes(topo: Topology, t: float, *, seed: int = 7, suite: str = "quick",
                    lost: frozenset[str] = frozenset(), thermal: frozenset[str] = frozenset(),
                    ) -> tuple[list[SimGpuProbe], list[SimCollective]]:
    """Probe results for every GPU of ``topo`` at time ``t``.

    ``lost`` holds GPU uuids off the bus (they report an error), ``thermal`` node names in a thermal
    episode (their GPUs run ~12% slower). MIG-partitioned GPUs are skipped: the suite needs the whole GPU.
    """
    if suite not in ("quick", "full"):
        raise ValueError(f"suite {suite!r} must be 'quick' or 'full'")
    rng = np.random.default_rng([seed, 4242, int(t) // 60])
    gpus: list[SimGpuProbe] = []
    colls: list[SimCollective] = []
    for node in topo.nodes:
        node_factor = float(np.clip(rng.normal(1.0, 0.01), 0.975, 1.025))
        if node.name in thermal:
            node_factor *= THERMAL_FACTOR
        probed = 0
        for g in node.gpus:
            if g.mig:
                continue
            duration = float(rng.uniform(14, 19) if suite == "quick" else rng.uniform(60, 75))
            if g.uuid in lost:
                gpus.append(SimGpuProbe(g.uuid, g.node, g.cluster, g.index, g.model, g.spec.name,
                                        error="GPU is lost (fell off the bus, XID 79): no CUDA context",
                                        duration_s=0.0))
                continue
            probed += 1
            gpus.append(SimGpuProbe(g.uuid, g.node, g.cluster, g.index, g.model, g.spec.name,
                                    _gpu_figures(g, rng, node_factor, suite), duration_s=duration))
        if probed == len(node.gpus) and probed > 1:
            a = ACHIEVED[node.model]
            slowest = min(g.speed for g in node.gpus)  # collectives move at the slowest rank's pace
            sizes = [1 << 28] if suite == "quick" else [1 << 20, 1 << 24, 1 << 28, 1 << 30]
            for coll in COLLECTIVES:
                for size in sizes:
                    small = min(1.0, (size / (1 << 26)) ** 0.35)  # small messages are latency-bound
                    bw = a[coll] * small * node_factor * (0.6 + 0.4 * slowest) * float(rng.normal(1.0, 0.01))
                    colls.append(SimCollective(node.name, node.cluster, node.model, node.gpus[0].spec.name, coll,
                                               len(node.gpus), size, bw))
    return gpus, colls
