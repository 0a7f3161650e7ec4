import pytest

from gpufleet.collectors.exposition import parse
from gpufleet.core.simfleet import FleetConfig, SimulatedFleet
from gpufleet.core.simfleet.faults import faults_for_day
from gpufleet.core.simfleet.serving import diurnal

START = 1_767_225_600.0


def run(cfg, steps=3, step=300.0):
    f = SimulatedFleet(cfg)
    for i in range(1, steps + 1):
        f.advance(cfg.start + i * step, default_dt=step)
    return f


def test_same_seed_same_exposition():
    cfg = FleetConfig(nodes=4, seed=3, start=START)
    a, b = run(cfg), run(cfg)
    assert [a.render(t) for t in a.targets()] == [b.render(t) for t in b.targets()]
    c = run(cfg.model_copy(update={"seed": 4}))
    assert [a.render(t) for t in a.targets()] != [c.render(t) for t in c.targets()]


def test_fleet_shape_models_and_pricing():
    f = SimulatedFleet(FleetConfig(nodes=16, start=START))
    assert len(f.topo.gpus) == 128
    assert {n.model for n in f.topo.nodes} == {"H100", "H200", "A100", "L40S"}
    assert {n.pricing for n in f.topo.nodes} == {"on_demand", "reserved", "spot"}
    assert any(g.mig for g in f.topo.gpus)
    assert sum(1 for g in f.topo.gpus if g.speed < 1) == 1  # one straggler
    kinds = {w.kind for w in f.topo.workloads}
    assert kinds == {"inference", "training", "notebook", "platform"}
    assert {w.engine for w in f.topo.workloads if w.kind == "inference"} == {"vllm", "sglang"}


def test_every_target_renders_valid_exposition():
    f = run(FleetConfig(nodes=8, start=START))
    for t in f.targets():
        result = parse(f.render(t))
        assert result.errors == [], t.name
        assert result.families


def test_engine_counters_only_grow_and_latency_grows_with_load():
    cfg = FleetConfig(nodes=8, start=START)
    f = SimulatedFleet(cfg)
    name = next(w.name for w in f.topo.workloads if w.kind == "inference" and w.engine == "vllm")
    rep = f.replicas[name]
    prev = 0.0
    for i in range(1, 40):
        f.advance(cfg.start + i * 600, default_dt=600)
        assert rep.generation_tokens >= prev
        prev = rep.generation_tokens
    assert prev > 0

    import numpy as np

    from gpufleet.core.simfleet.serving import Replica
    def p_fast(load):
        r = Replica(capacity_rps=4, base_rps=2, params_b=8)
        rng = np.random.default_rng(0)
        r.step(rng, START + 15 * 3600, 3600, load_factor=load)
        cum = r.ttft.cumulative()
        return cum[8] / cum[-1]  # share under 250 ms
    assert p_fast(0.5) > p_fast(1.9)


@pytest.mark.parametrize("load", [0.5, 1.0, 3.0])
def test_latency_sums_add_up_part_by_part(load):
    """Queue wait is part of the time to first token, which is part of the end-to-end time, also in overload."""
    import numpy as np

    from gpufleet.core.simfleet.serving import Replica
    r = Replica(capacity_rps=4, base_rps=2, params_b=32)
    rng = np.random.default_rng(1)
    for hour in range(24):
        r.step(rng, START + hour * 3600, 3600, load_factor=load)
    assert 0 < r.queue.total < r.ttft.total < r.e2e.total


def test_diurnal_peak_and_weekend():
    monday = 1_767_571_200.0  # 2026-01-05 00:00 UTC, a Monday
    assert diurnal(monday + 15 * 3600) > 1.4 > 0.5 > diurnal(monday + 3 * 3600)
    assert diurnal(monday + 5 * 86400 + 15 * 3600) == pytest.approx(0.7 * diurnal(monday + 15 * 3600))


def test_scripted_faults_in_first_days():
    f = SimulatedFleet(FleetConfig(nodes=16, start=START))
    kinds = set()
    for day in range(5):
        for fault in faults_for_day(f.topo, 7, START, day):
            kinds.add((fault.kind, fault.xid))
    assert {("xid", 79), ("lost", 0), ("xid", 48), ("xid", 63), ("thermal", 0), ("overload", 0),
            ("errors", 0)} <= kinds


def test_lost_gpu_reports_up_zero_and_keeps_identity():
    cfg = FleetConfig(nodes=16, start=START)
    f = SimulatedFleet(cfg)
    lost = next(x for x in faults_for_day(f.topo, 7, START, 0) if x.kind == "lost")
    f.advance(lost.start + 60, default_dt=60)
    gpu = next(g for g in f.topo.gpus if g.uuid == lost.target)
    node_target = next(t for t in f.targets() if t.name.startswith(gpu.node + ":"))
    text = f.render(node_target)
    up = [ln for ln in text.splitlines() if ln.startswith("gpufleet_gpu_up") and gpu.uuid in ln]
    assert up and up[0].endswith(" 0")
    assert not [ln for ln in text.splitlines() if ln.startswith("DCGM_FI_DEV_GPU_UTIL") and gpu.uuid in ln]
    assert any(ln.startswith("DCGM_EXP_XID_ERRORS_TOTAL") and 'xid="79"' in ln and gpu.uuid in ln
               for ln in text.splitlines())


def test_config_rejects_unknown_models():
    with pytest.raises(ValueError, match="unknown GPU models"):
        FleetConfig(model_mix={"B300X": 1.0})
