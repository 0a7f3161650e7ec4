"""The simulated backend: probe results for the simulated fleet, in the same form the CUDA runner produces."""

from __future__ import annotations

from gpufleet.core.simfleet import FleetConfig, SimulatedFleet
from gpufleet.core.simfleet.probes import simulate_probes
from gpufleet.probes.results import CollectiveResult, GpuResult, Measurement, ProbeRun
from gpufleet.probes.specs import find_spec, pcie_link_bytes_per_second
from gpufleet.probes.stats import busbw_factor

__all__ = ["simulated_run"]


def simulated_run(cfg: FleetConfig | None = None, *, t: float | None = None, suite: str = "quick",
                  fleet: SimulatedFleet | None = None) -> ProbeRun:
    """Run the suite on the simulated fleet at time ``t`` (default: the fleet's start plus three days).

    Faults active at ``t`` apply: lost GPUs fail to probe, thermal nodes run slower; the straggler is slow.
    """
    fleet = fleet or SimulatedFleet(cfg or FleetConfig())
    when = t if t is not None else fleet.cfg.start + 3 * 86400 + 15 * 3600
    faults = fleet.faults_between(when - 1, when)
    lost = frozenset(f.target for f in faults if f.kind == "lost" and f.active(when))
    thermal = frozenset(f.target for f in faults if f.kind == "thermal" and f.active(when))
    sim_gpus, sim_colls = simulate_probes(fleet.topo, when, seed=fleet.cfg.seed, suite=suite, lost=lost,
                                          thermal=thermal)
    gpus = []
    for s in sim_gpus:
        spec = find_spec(s.nvml_name)
        ms = []
        if s.error:
            ms.append(Measurement("matmul", float("nan"), "flops", {"dtype": "bf16"}, correct=False, error=s.error))
        for f in s.figures:
            peak: float | None = None
            if spec is not None:
                if f.probe == "hbm_bandwidth":
                    peak = spec.hbm_bytes_per_second
                elif f.probe == "matmul":
                    peak = spec.matmul_flops(f.labels["dtype"])
                elif f.probe == "pcie_bandwidth":
                    peak = pcie_link_bytes_per_second(spec.pcie_gen, spec.pcie_lanes)
            ms.append(Measurement(f.probe, f.value, f.unit, dict(f.labels), peak, repeats=20,
                                  spread_ratio=0.004 if f.probe == "matmul" else 0.01))
        gpus.append(GpuResult(s.gpu_uuid, s.node, s.nvml_name, s.index, s.cluster, spec.key if spec else None,
                              [], s.duration_s, ms))
    colls = []
    for c in sim_colls:
        algbw = c.busbw / busbw_factor(c.collective, c.ranks)
        colls.append(CollectiveResult(c.node, c.collective, c.ranks, c.size_bytes, c.size_bytes / algbw, algbw,
                                      c.busbw, gpu_model=c.nvml_name, cluster=c.cluster))
    return ProbeRun(suite=suite, backend="sim", started_at=when - 20, finished_at=when, gpus=gpus,
                    collectives=colls, host={"node": "simulated"})
