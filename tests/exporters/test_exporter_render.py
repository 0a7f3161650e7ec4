"""Rendering the snapshot: every metric family in both dialects, dcgm-exporter units, OpenMetrics parsed back."""

from __future__ import annotations

import pytest

from gpufleet.collectors.exposition import parse
from gpufleet.core.naming import MIB
from gpufleet.exporters.backend import ProcessMemory
from gpufleet.exporters.collector import GpuCollector, PodRef
from gpufleet.exporters.errors import Timeout
from gpufleet.exporters.metrics import ALL_GPU_METRICS
from gpufleet.exporters.sampler import Sampler
from gpufleet.exporters.sim import SimBackend, sim_fleet
from gpufleet.exporters.snapshot import Snapshot


class ProcBackend(SimBackend):
    def processes(self, index: int) -> list[ProcessMemory]:
        self._check("processes", index)
        return [ProcessMemory(4242, 3.0 * 2**30)]


def snapshot(gpus: int = 2, *, mig: bool = False) -> tuple[SimBackend, Snapshot]:
    backend = ProcBackend(sim_fleet(gpus=gpus, mig=mig))
    sampler = Sampler(backend, gpm_interval=0.0, processes=True, sleep=lambda s: None)
    sampler.start_backend()
    sampler.sample_fast()
    backend.inject("pcie_replays", Timeout, gpu=1, times=1)
    sampler.sample_slow()
    backend.emit_xid(0, 48)
    backend.emit_xid(0, 13)
    sampler.xid_timeout = 0.0
    sampler.poll_xids()
    sampler.sample_fast()  # a second pass counts clock events again
    return backend, sampler.snapshot()


def labels(s: object) -> dict[str, str]:
    return dict(s.labels)  # type: ignore[attr-defined]


def sample_names(text: str) -> set[str]:
    return {s.name for s in parse(text).samples}


def test_every_metric_family_is_served_in_both_dialects() -> None:
    backend, snap = snapshot()
    holders = {backend.gpus[0].uuid: [PodRef("team-a", "trainer-0", "main", (("app", "trainer"),))],
               backend.gpus[1].uuid: [PodRef("team-b", "infer-0", "vllm"), PodRef("team-b", "infer-1", "vllm")]}
    collector = GpuCollector(lambda: snap, hostname="node-a", attribution=lambda: holders,
                             pod_errors=lambda: {"socket_absent": 2.0})
    text = collector.render_text().decode()
    result = parse(text)
    assert result.errors == []
    names = sample_names(text)
    native = set(ALL_GPU_METRICS)
    dcgm = {m.dcgm for m in ALL_GPU_METRICS.values() if m.dcgm}
    assert native <= names, sorted(native - names)
    assert dcgm <= names, sorted(dcgm - names)
    # Every family has HELP and TYPE, and the counters are typed as counters.
    types = {f.name: f.type for f in result.families.values()}
    assert types["gpufleet_gpu_energy_joules_total"] == "counter"
    assert types["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] == "counter"
    assert types["gpufleet_gpu_power_watts"] == "gauge"
    assert all(f.help for f in result.families.values())


def test_dcgm_dialect_values_are_native_values_in_dcgm_units() -> None:
    _, snap = snapshot(gpus=1)
    text = GpuCollector(lambda: snap, hostname="node-a").render_text().decode()
    by = {(s.name, labels(s).get("gpu")): s.value for s in parse(text).samples}
    for native, dcgm, scale in (
        ("gpufleet_gpu_memory_used_bytes", "DCGM_FI_DEV_FB_USED", MIB),
        ("gpufleet_gpu_utilization_ratio", "DCGM_FI_DEV_GPU_UTIL", 0.01),
        ("gpufleet_gpu_sm_clock_hertz", "DCGM_FI_DEV_SM_CLOCK", 1e6),
        ("gpufleet_gpu_energy_joules_total", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", 1e-3),
        ("gpufleet_gpu_power_watts", "DCGM_FI_DEV_POWER_USAGE", 1.0),
        ("gpufleet_gpu_tensor_active_ratio", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", 1.0),
    ):
        assert by[(dcgm, "0")] == pytest.approx(by[(native, "0")] / scale), native
    # Grafana dashboard 12239 reads these labels.
    power = next(s for s in parse(text).samples if s.name == "DCGM_FI_DEV_POWER_USAGE")
    lab = labels(power)
    assert {"gpu", "UUID", "modelName", "Hostname", "device", "pci_bus_id"} <= set(lab)
    assert lab["Hostname"] == "node-a" and lab["device"] == "nvidia0" and lab["modelName"].startswith("NVIDIA H100")


def test_dialect_selection() -> None:
    _, snap = snapshot(gpus=1)
    collector = GpuCollector(lambda: snap, hostname="node-a", dialects=("native",))
    names = sample_names(collector.render_text().decode())
    assert "gpufleet_gpu_power_watts" in names and not any(n.startswith("DCGM_") for n in names)
    names = sample_names(collector.render_text(("dcgm",)).decode())
    assert "DCGM_FI_DEV_POWER_USAGE" in names and "gpufleet_gpu_power_watts" not in names
    assert "gpufleet_gpu_up" in names  # identity and self-metrics come with either dialect
    with pytest.raises(ValueError, match="unknown dialect"):
        GpuCollector(lambda: snap, hostname="n", dialects=("prometheus",))


def test_openmetrics_output_parses_back_to_the_same_samples() -> None:
    _, snap = snapshot()
    collector = GpuCollector(lambda: snap, hostname="node-a")
    text = collector.render_text().decode()
    om_text = collector.render_text(openmetrics=True).decode()
    assert om_text.endswith("# EOF\n")
    om = parse(om_text)
    assert om.openmetrics and om.errors == []
    assert om.families["gpufleet_gpu_energy_joules"].type == "counter"
    assert om.families["gpufleet_gpu_xid_errors"].type == "counter"

    def key(s: object) -> tuple[str, tuple[tuple[str, str], ...]]:
        return s.name, tuple(sorted(labels(s).items()))  # type: ignore[attr-defined]

    skip = {"gpufleet_exporter_scrape_duration_seconds"}  # differs between the two renders
    plain = {key(s): s.value for s in parse(text).samples if s.name not in skip}
    opm = {key(s): s.value for s in om.samples if s.name not in skip}
    assert plain == opm
    xid = {labels(s)["xid"]: (labels(s)["severity"], s.value) for s in om.samples
           if s.name == "gpufleet_gpu_xid_errors_total"}
    assert xid == {"13": ("application", 1.0), "48": ("critical", 1.0)}


def test_collect_yields_the_same_families_as_render_text() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    _, snap = snapshot(gpus=1)
    collector = GpuCollector(lambda: snap, hostname="node-a")
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    via_client = {(s.name, tuple(sorted(labels(s).items()))): s.value
                  for s in parse(generate_latest(registry).decode()).samples
                  if not s.name.startswith("gpufleet_exporter_scrape")}
    ours = {(s.name, tuple(sorted(labels(s).items()))): s.value
            for s in parse(collector.render_text().decode()).samples
            if not s.name.startswith("gpufleet_exporter_scrape")}
    assert via_client == ours


def test_mig_instances_have_their_own_series_and_dcgm_labels() -> None:
    backend, snap = snapshot(gpus=2, mig=True)
    migs = snap.gpus[0].migs
    assert [m.profile for m in migs] == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]
    owner = {migs[1].uuid: [PodRef("team-c", "notebook", "jupyter")]}
    text = GpuCollector(lambda: snap, hostname="node-a", attribution=lambda: owner).render_text().decode()
    samples = parse(text).samples
    used = [labels(s) for s in samples if s.name == "gpufleet_gpu_memory_used_bytes" and labels(s)["gpu"] == "0"
            and "mig_instance" in labels(s)]
    assert sorted(u["mig_profile"] for u in used) == sorted(m.profile for m in migs)
    dcgm = [labels(s) for s in samples if s.name == "DCGM_FI_DEV_FB_USED" and "GPU_I_ID" in labels(s)]
    assert len(dcgm) == 8 and {d["GPU_I_PROFILE"] for d in dcgm} == {"3g.40gb", "2g.20gb", "1g.10gb"}
    # The instance held by a pod carries its labels; the others do not.
    held = [u for u in used if u.get("pod") == "notebook"]
    assert len(held) == 1 and held[0]["mig_instance"] == str(migs[1].gi_id) and held[0]["namespace"] == "team-c"
    alloc = [labels(s) for s in samples if s.name == "gpufleet_gpu_pod_allocation"]
    assert alloc == [{**{k: alloc[0][k] for k in ("gpu", "gpu_uuid", "pci_bus_id", "device", "gpu_model", "node")},
                      "mig_instance": str(migs[1].gi_id), "mig_profile": "2g.20gb", "namespace": "team-c",
                      "pod": "notebook", "container": "jupyter"}]


def test_time_sliced_gpu_is_shared_not_duplicated() -> None:
    backend, snap = snapshot(gpus=1)
    holders = {backend.gpus[0].uuid: [PodRef("a", "p1", "c"), PodRef("a", "p2", "c"), PodRef("b", "p3", "c")]}
    text = GpuCollector(lambda: snap, hostname="node-a", attribution=lambda: holders).render_text().decode()
    samples = parse(text).samples
    power = [s for s in samples if s.name == "gpufleet_gpu_power_watts"]
    assert len(power) == 1 and "pod" not in labels(power[0])  # one series, not one per sharing pod
    shares = sorted((labels(s)["pod"], s.value) for s in samples if s.name == "gpufleet_gpu_pod_allocation")
    assert shares == [("p1", pytest.approx(1 / 3)), ("p2", pytest.approx(1 / 3)), ("p3", pytest.approx(1 / 3))]


def test_a_lost_gpu_keeps_its_pod_allocation_but_no_readings() -> None:
    from dataclasses import replace

    backend, snap = snapshot(gpus=2)
    lost = replace(snap, gpus=[replace(snap.gpus[0], up=False), snap.gpus[1]])
    holders = {backend.gpus[0].uuid: [PodRef("research", "train-0", "trainer")],
               backend.gpus[1].uuid: [PodRef("serving", "llm-0", "vllm")]}
    text = GpuCollector(lambda: lost, hostname="node-a", attribution=lambda: holders).render_text().decode()
    samples = parse(text).samples
    alloc = sorted((labels(s)["gpu"], labels(s)["pod"], s.value) for s in samples
                   if s.name == "gpufleet_gpu_pod_allocation")
    assert alloc == [("0", "train-0", 1.0), ("1", "llm-0", 1.0)]  # the pod still pays for the GPU it holds
    power = {labels(s)["gpu"] for s in samples if s.name == "gpufleet_gpu_power_watts"}
    assert power == {"1"}
    up = {labels(s)["gpu"]: s.value for s in samples if s.name == "gpufleet_gpu_up"}
    assert up == {"0": 0.0, "1": 1.0}


def test_a_failing_attribution_or_extra_source_never_breaks_the_scrape() -> None:
    _, snap = snapshot(gpus=1)

    def broken() -> dict[str, list[PodRef]]:
        raise RuntimeError("kubelet went away")

    def broken_extra() -> list[object]:
        raise OSError("results file unreadable")

    collector = GpuCollector(lambda: snap, hostname="node-a", attribution=broken,
                             extra=[broken_extra])  # type: ignore[list-item]
    names = sample_names(collector.render_text().decode())
    assert "gpufleet_gpu_power_watts" in names and "gpufleet_gpu_up" in names


def test_label_values_are_escaped() -> None:
    backend, snap = snapshot(gpus=1)
    holders = {backend.gpus[0].uuid: [PodRef("ns", 'we"ird\\pod\nx', "c")]}
    text = GpuCollector(lambda: snap, hostname="node-a", attribution=lambda: holders).render_text().decode()
    result = parse(text)
    assert result.errors == []
    pods = {labels(s).get("pod") for s in result.samples if s.name == "gpufleet_gpu_power_watts"}
    assert pods == {'we"ird\\pod\nx'}
