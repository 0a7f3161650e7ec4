"""The fault schedule: XIDs, lost GPUs, thermal episodes and serving incidents, day by day.

Each day's faults come from their own seeded generator, so any day can be computed alone
(the live exporter backend needs no history). The first days also carry one scripted fault
of each kind, so a short demo always shows every failure class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpufleet.core.simfleet.topology import Topology

__all__ = ["Fault", "faults_for_day", "DAY"]

DAY = 86400.0

# Events per GPU-day (per node-day for thermal), a few times the Llama 3 paper's rates so a
# small fleet shows them within a week.
RATES = {79: 1.5e-3, 48: 1.5e-3, 94: 3e-3, 64: 4e-4, 74: 8e-4, 119: 5e-4, 13: 1e-2, 31: 8e-3, 43: 4e-3}
THERMAL_PER_NODE_DAY = 0.02


@dataclass(frozen=True)
class Fault:
    """``kind``: xid | lost | thermal | overload | errors. ``target`` is a GPU uuid, node, or workload."""

    kind: str
    target: str
    start: float
    end: float
    xid: int = 0
    factor: float = 1.0

    def active(self, t: float) -> bool:
        return self.start <= t < self.end


def faults_for_day(topo: Topology, seed: int, start: float, day: int, scale: float = 1.0) -> list[Fault]:
    rng = np.random.default_rng([seed, 1000 + day])
    t0 = start + day * DAY
    gpus = topo.gpus
    nodes = topo.nodes
    out: list[Fault] = []

    def at() -> float:
        return t0 + float(rng.uniform(0, DAY))

    def xid(uuid: str, code: int, when: float) -> None:
        out.append(Fault("xid", uuid, when, when + 1, xid=code))
        if code == 79:  # off the bus until someone power-cycles the node
            out.append(Fault("lost", uuid, when, when + float(rng.uniform(3, 8)) * 3600))
        if code == 48:  # a double-bit error retires a row
            out.append(Fault("xid", uuid, when + 30, when + 31, xid=63))

    if scale > 0 and gpus:
        scripted = rng.permutation(len(gpus))
        if day == 0 and len(gpus) > 2:
            xid(gpus[scripted[0]].uuid, 79, t0 + 10 * 3600)
        if day == 1 and len(gpus) > 2:
            xid(gpus[scripted[1]].uuid, 48, t0 + 14 * 3600)
            xid(gpus[scripted[2]].uuid, 94, t0 + 3 * 3600)
        if day == 2 and nodes:
            node = nodes[int(rng.integers(len(nodes)))].name
            out.append(Fault("thermal", node, t0 + 13 * 3600, t0 + 17 * 3600))
        for code, rate in RATES.items():
            for _ in range(rng.poisson(rate * scale * len(gpus))):
                xid(gpus[int(rng.integers(len(gpus)))].uuid, code, at())
        for _ in range(rng.poisson(THERMAL_PER_NODE_DAY * scale * len(nodes))):
            when = at()
            out.append(Fault("thermal", nodes[int(rng.integers(len(nodes)))].name, when,
                             when + float(rng.uniform(1, 5)) * 3600))
        serving = sorted({w.name for w in topo.workloads if w.kind == "inference" and not w.gpus[0][1]})
        if serving and day in (1, 4) or (serving and rng.random() < 0.15 * scale):
            name = serving[int(rng.integers(len(serving)))]
            when = t0 + (15 if day == 1 else float(rng.uniform(8, 20))) * 3600
            out.append(Fault("overload", name, when, when + 5400, factor=2.2))
        if serving and day in (3,) or (serving and rng.random() < 0.1 * scale):
            name = serving[int(rng.integers(len(serving)))]
            when = t0 + float(rng.uniform(6, 20)) * 3600
            out.append(Fault("errors", name, when, when + 3600, factor=0.08))
    return out
