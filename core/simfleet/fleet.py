"""The simulated fleet: advance it in time, then scrape its targets as exposition text."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gpufleet.core.simfleet import render
from gpufleet.core.simfleet.config import FleetConfig
from gpufleet.core.simfleet.faults import DAY, Fault, faults_for_day
from gpufleet.core.simfleet.serving import Replica
from gpufleet.core.simfleet.telemetry import Activity, GpuCounters, GpuReading, read_gpu
from gpufleet.core.simfleet.topology import TEAMS, Node, Topology, Workload, build_topology

__all__ = ["SimulatedFleet", "SimTarget", "MODEL_SHAPES"]

# Model shapes for the training jobs (layers, heads, head dim, sequence length, parameters).
MODEL_SHAPES = {
    "llama-13b": {"layers": "40", "heads": "40", "head_dim": "128", "seq_len": "4096", "params": "13000000000"},
    "dlrm-xl": {"layers": "32", "heads": "32", "head_dim": "96", "seq_len": "2048", "params": "4000000000"},
}


@dataclass(frozen=True)
class SimTarget:
    """A scrape target of the simulated fleet."""

    name: str
    kind: str  # node | kube | engine | training
    labels: dict[str, str] = field(default_factory=dict)


class SimulatedFleet:
    """Deterministic for a given config and sequence of ``advance`` times."""

    def __init__(self, cfg: FleetConfig | None = None) -> None:
        self.cfg = cfg or FleetConfig()
        self.topo: Topology = build_topology(self.cfg)
        self.rng = np.random.default_rng([self.cfg.seed, 99])
        self.counters = {g.uuid: GpuCounters() for g in self.topo.gpus}
        self.readings: dict[str, GpuReading | None] = {}
        self.replicas = {w.name: Replica(w.capacity_rps, w.base_rps, w.params_b)
                         for w in self.topo.workloads if w.kind == "inference"}
        self.training = {w.name: [0.0, 0.0, False] for w in self.topo.workloads if w.kind == "training"}
        self.holders: dict[tuple[str, int | None], tuple[Workload, str]] = {}
        self.t: float | None = None
        self._faults: dict[int, list[Fault]] = {}
        self._by_name = {w.name: w for w in self.topo.workloads}
        self._nodes = {n.name: n for n in self.topo.nodes}

    # -- time ----------------------------------------------------------------------------------

    def faults_between(self, t0: float, t1: float) -> list[Fault]:
        first = int(math.floor((t0 - self.cfg.start) / DAY)) - 1
        last = int(math.floor((t1 - self.cfg.start) / DAY))
        out: list[Fault] = []
        for day in range(max(first, 0), max(last, 0) + 1):
            if day not in self._faults:
                self._faults[day] = faults_for_day(self.topo, self.cfg.seed, self.cfg.start, day, self.cfg.fault_scale)
            out.extend(f for f in self._faults[day] if f.end > t0 and f.start <= t1)
        return out

    def advance(self, t: float, default_dt: float = 60.0) -> None:
        """Move the fleet to time ``t``: traffic, jobs, counters and faults over the elapsed interval."""
        dt = default_dt if self.t is None else t - self.t
        if dt <= 0:
            return
        t_prev = t - dt
        faults = self.faults_between(t_prev, t)
        lost = {f.target for f in faults if f.kind == "lost" and f.active(t)}
        thermal = {f.target for f in faults if f.kind == "thermal" and f.active(t)}
        overload = {f.target: f.factor for f in faults if f.kind == "overload" and f.active(t)}
        errors = {f.target: f.factor for f in faults if f.kind == "errors" and f.active(t)}
        for f in faults:
            if f.kind == "xid" and t_prev <= f.start < t:
                c = self.counters[f.target]
                c.xids[f.xid] = c.xids.get(f.xid, 0) + 1
                c.last_xid = f.xid
                if f.xid == 63:
                    c.remap_uncorrectable += 1
                if f.xid == 64:
                    c.remap_failure = 1
        acts: dict[tuple[str, int | None], Activity] = {}
        self.holders = {}
        for w in self.topo.workloads:
            for gpu_key, act in self._run(w, t, dt, lost, overload, errors).items():
                acts[gpu_key] = act
        for node in self.topo.nodes:
            for g in node.gpus:
                keys = [(g.uuid, i) for i in range(len(g.mig))] if g.mig else [(g.uuid, None)]
                self.readings[g.uuid] = read_gpu(g, [acts.get(k, Activity()) for k in keys], self.counters[g.uuid],
                                                 self.rng, dt, thermal=node.name in thermal, lost=g.uuid in lost)
        self.t = t

    def _run(self, w: Workload, t: float, dt: float, lost: set[str], overload: dict[str, float],
             errors: dict[str, float]) -> dict[tuple[str, int | None], Activity]:
        keys = [(g.uuid, inst) for g, inst in w.gpus]
        down = any(g.uuid in lost for g, _ in w.gpus)
        pod = w.pod(0)
        if w.kind == "inference":
            rep = self.replicas[w.name]
            rep.step(self.rng, t, dt, load_factor=overload.get(w.name, 1.0), error_rate=errors.get(w.name, 0.0),
                     down=down)
            u = rep.utilization
            act = Activity(0.1 + 0.75 * u, 0.15 + 0.3 * u, 0.3 + 0.5 * u, 0.9)
        elif w.kind == "training":
            on, off = w.duty
            running_phase = ((t / 3600 + w.phase_h) % (on + off)) < on
            state = self.training[w.name]
            if not running_phase:
                state[2] = False
                return {}
            running = not down
            state[2] = running
            if running:
                speed = min(g.speed for g, _ in w.gpus)
                peak = w.gpus[0][0].spec.bf16_tflops * 1e12
                flops_per_token = 6 * w.params_b * 1e9
                tokens_per_s = w.mfu * speed * peak * len(w.gpus) / flops_per_token
                state[0] += tokens_per_s * dt
                state[1] += dt / 4.0
            act = Activity(0.92, w.mfu * 1.25, 0.45, 0.93) if running else Activity(0.0, 0.0, 0.0, 0.6)
        elif w.kind == "notebook":
            burst = self.rng.random() < 0.12
            act = Activity(float(self.rng.uniform(0.2, 0.7)) if burst else 0.0, 0.1 if burst else 0.0,
                           0.1 if burst else 0.0, 0.25)
        else:
            act = Activity(float(self.rng.uniform(0.04, 0.12)), 0.0, 0.05, 0.2)
        for k in keys:
            self.holders[k] = (w, pod)
        return dict.fromkeys(keys, act)

    # -- scraping -------------------------------------------------------------------------------

    def targets(self) -> list[SimTarget]:
        out = [SimTarget(f"{n.name}:9400", "node", {"cluster": n.cluster}) for n in self.topo.nodes]
        out += [SimTarget(f"kube-state-metrics.{c}:8080", "kube", {"cluster": c}) for c in self.cfg.clusters]
        for w in self.topo.workloads:
            node: Node = self._nodes[w.gpus[0][0].node]
            base = {"cluster": node.cluster, "namespace": w.namespace, "pod": w.pod(0), "node": node.name}
            if w.kind == "inference":
                service = f"{w.namespace.removesuffix('-serving')}-{w.model.split('/')[-1].lower()}"
                out.append(SimTarget(f"{w.pod(0)}:8000", "engine", {**base, "service": service}))
            elif w.kind == "training":
                out.append(SimTarget(f"{w.pod(0)}:9090", "training", base))
        return out

    def render(self, target: SimTarget) -> str:
        """The exposition text ``target`` serves right now."""
        if self.t is None:
            raise RuntimeError("advance the fleet before scraping it")
        if target.kind == "node":
            node = self._nodes[target.name.rsplit(":", 1)[0]]
            return render.render_node(node, self.readings, self.counters, self.holders)
        if target.kind == "kube":
            cluster = target.labels["cluster"]
            namespaces = {ns: team for ns, team in TEAMS.items()}
            requests = []
            seen = set()
            for (_uuid, _inst), (w, pod) in self.holders.items():
                node = self._nodes[w.gpus[0][0].node]
                if node.cluster != cluster or (w.name, pod) in seen:
                    continue
                seen.add((w.name, pod))
                requests.append((w.namespace, pod, w.kind, node.name, len(w.gpus)))
            return render.render_kube(namespaces, sorted(requests))
        pod = target.labels["pod"]
        w = self._by_name[pod.rsplit("-", 1)[0]]
        if target.kind == "engine":
            rep = self.replicas[w.name]
            return render.render_vllm(rep, w.model) if w.engine == "vllm" else render.render_sglang(rep, w.model)
        tokens, steps, running = self.training[w.name]
        shape = {**MODEL_SHAPES[w.model], "model": w.model, "gpus": str(len(w.gpus)),
                 "gpu_model": w.gpus[0][0].spec.name, "namespace": w.namespace}
        return render.render_training(w, tokens, steps, bool(running), shape)
