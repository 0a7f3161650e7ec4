"""Who runs where: nodes, GPUs, teams, namespaces and the workloads placed on the GPUs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np

from gpufleet.core.simfleet.config import FleetConfig
from gpufleet.core.simfleet.specs import SPECS, GpuSpec

__all__ = ["Node", "Gpu", "Workload", "Topology", "build_topology", "TEAMS"]

# namespace -> team; "ml-platform" is shared infrastructure whose cost is spread over the others.
TEAMS = {
    "search-serving": "search",
    "chat-serving": "assistant",
    "code-serving": "devtools",
    "research-train": "research",
    "recsys-train": "recsys",
    "notebooks": "research",
    "ml-platform": "platform",
}

REGIONS = {"us-east-prod": ("aws", "us-east-1"), "eu-west-prod": ("aws", "eu-west-1")}
MIG_LAYOUT = ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]  # 7 slices


@dataclass
class Gpu:
    node: str
    cluster: str
    index: int
    uuid: str
    model: str
    spec: GpuSpec
    pci_bus_id: str
    mig: list[str] = field(default_factory=list)  # MIG profiles, one per instance
    speed: float = 1.0  # 1.0 nominal; a straggler runs slower


@dataclass
class Node:
    name: str
    cluster: str
    provider: str
    region: str
    model: str
    pricing: str
    gpus: list[Gpu]


@dataclass
class Workload:
    """A pod (or a set of pods) holding GPUs. ``kind``: inference | training | notebook | platform."""

    name: str
    kind: str
    namespace: str
    gpus: list[tuple[Gpu, int | None]]  # (gpu, MIG instance index or None)
    engine: str = ""  # vllm | sglang for inference
    model: str = ""
    params_b: float = 0.0
    capacity_rps: float = 1.0  # requests/s one replica serves at the latency knee
    base_rps: float = 0.0
    mfu: float = 0.0
    duty: tuple[float, float] = (1.0, 0.0)  # training: on-hours, off-hours of its cycle
    phase_h: float = 0.0

    def pod(self, i: int = 0) -> str:
        return f"{self.name}-{i}"


@dataclass
class Topology:
    nodes: list[Node]
    workloads: list[Workload]

    @property
    def gpus(self) -> list[Gpu]:
        return [g for n in self.nodes for g in n.gpus]


def _pick(rng: np.random.Generator, weights: dict[str, float], n: int) -> list[str]:
    """Deterministic allocation of n items to categories in proportion to the weights."""
    keys = list(weights)
    w = np.array([weights[k] for k in keys], dtype=float)
    counts = np.floor(w / w.sum() * n).astype(int)
    for i in np.argsort(-(w / w.sum() * n - counts))[: n - counts.sum()]:
        counts[i] += 1
    out = [k for k, c in zip(keys, counts, strict=True) for _ in range(c)]
    rng.shuffle(out)
    return out


def build_topology(cfg: FleetConfig) -> Topology:
    rng = np.random.default_rng(cfg.seed)
    models = sorted(_pick(rng, cfg.model_mix, cfg.nodes), key=lambda m: list(SPECS).index(m))
    pricing = _pick(rng, cfg.pricing_mix, cfg.nodes)
    nodes: list[Node] = []
    a100_seen = 0
    for i, model in enumerate(models):
        cluster = cfg.clusters[i % len(cfg.clusters)]
        provider, region = REGIONS.get(cluster, ("onprem", cluster))
        name = f"gpu-{model.lower()}-{i:04d}"
        gpus = []
        mig = False
        if model == "A100":
            a100_seen += 1
            mig = (a100_seen % max(1, round(1 / cfg.mig_fraction))) == 0 if cfg.mig_fraction > 0 else False
        for g in range(cfg.gpus_per_node):
            gid = uuid.UUID(bytes=rng.bytes(16), version=4)
            gpus.append(Gpu(name, cluster, g, f"GPU-{gid}", model, SPECS[model], f"00000000:{0x18 + g * 0x10:02X}:00.0",
                            mig=list(MIG_LAYOUT) if mig else []))
        nodes.append(Node(name, cluster, provider, region, model, pricing[i], gpus))
    all_gpus = [g for n in nodes for g in n.gpus]
    if len(all_gpus) > 8:
        rng.choice(np.array(all_gpus, dtype=object)).speed = 0.82  # the straggler
    return Topology(nodes, _place(rng, nodes))


def _place(rng: np.random.Generator, nodes: list[Node]) -> list[Workload]:
    """Fill nodes with workloads: training on whole nodes, serving replicas, notebooks, some free GPUs."""
    work: list[Workload] = []
    counters: dict[str, int] = {}

    def new(prefix: str) -> str:
        counters[prefix] = counters.get(prefix, 0) + 1
        return f"{prefix}-{counters[prefix]:03d}"

    serving = [  # engine, model, params (B), GPUs per replica, capacity rps, namespace
        ("vllm", "meta-llama/Llama-3.1-8B-Instruct", 8, 1, 6.0, "search-serving"),
        ("vllm", "meta-llama/Llama-3.1-70B-Instruct", 70, 4, 3.0, "chat-serving"),
        ("sglang", "Qwen/Qwen2.5-Coder-32B-Instruct", 32, 2, 4.0, "code-serving"),
    ]
    for n_i, node in enumerate(nodes):
        if node.gpus[0].mig:
            for g in node.gpus:
                for inst in range(len(g.mig)):
                    r = rng.random()
                    if r < 0.55:
                        work.append(Workload(new("nb"), "notebook", "notebooks", [(g, inst)]))
                    elif r < 0.8:
                        work.append(Workload(new("embed"), "inference", "search-serving", [(g, inst)],
                                             engine="vllm", model="BAAI/bge-large-en-v1.5", params_b=0.3,
                                             capacity_rps=20.0, base_rps=9.0))
            continue
        role = n_i % 4
        if role == 0 and node.model in ("H100", "H200"):
            ns = "research-train" if rng.random() < 0.7 else "recsys-train"
            on = float(rng.uniform(20, 60))
            work.append(Workload(new("train"), "training", ns, [(g, None) for g in node.gpus],
                                 model="llama-13b" if ns == "research-train" else "dlrm-xl",
                                 params_b=13.0 if ns == "research-train" else 4.0,
                                 mfu=float(rng.uniform(0.36, 0.46)), duty=(on, float(rng.uniform(2, 10))),
                                 phase_h=float(rng.uniform(0, on))))
            continue
        free = list(node.gpus)
        while free:
            engine, model, params, tp, cap, ns = serving[int(rng.integers(len(serving)))]
            r = rng.random()
            if r < 0.12:
                g = free.pop()
                work.append(Workload(new("nb"), "notebook", "notebooks", [(g, None)]))
            elif r < 0.2:
                free.pop()  # unallocated
            elif r < 0.24:
                g = free.pop()
                work.append(Workload(new("gateway"), "platform", "ml-platform", [(g, None)]))
            elif len(free) >= tp:
                gs = [free.pop() for _ in range(tp)]
                speed = SPECS[node.model].bf16_tflops / 989
                work.append(Workload(new(model.split("/")[1].split("-")[0].lower()), "inference", ns,
                                     [(g, None) for g in gs], engine=engine, model=model, params_b=params,
                                     capacity_rps=cap * speed, base_rps=cap * speed * float(rng.uniform(0.45, 0.7))))
            else:
                free.pop()
    return work
