"""The sampler on the simulated backend: fault isolation per call, GPU loss and return, XIDs, processes, health."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpufleet.collectors.exposition import parse
from gpufleet.exporters import errors as nv_errors
from gpufleet.exporters.backend import CALLS, DeviceIdentity, ProcessMemory
from gpufleet.exporters.collector import GpuCollector
from gpufleet.exporters.sampler import Sampler
from gpufleet.exporters.sim import SimBackend, sim_fleet
from gpufleet.exporters.snapshot import Snapshot
from gpufleet.exporters.xidlog import XidLog

ERRORS: dict[str, type[nv_errors.NvmlError]] = {
    c.kind: c for c in (nv_errors.NotSupported, nv_errors.NoPermission, nv_errors.NotFound,
                        nv_errors.InsufficientSize, nv_errors.DriverNotLoaded, nv_errors.Timeout, nv_errors.GpuIsLost,
                        nv_errors.Uninitialized, nv_errors.InvalidArgument, nv_errors.NoData, nv_errors.Unknown)}
LOST = {"gpu_is_lost", "driver_not_loaded", "uninitialized"}
# The series each per-GPU call feeds (for MIG and GPM: the ones that vanish with it).
SERIES = {
    "utilization": "gpufleet_gpu_utilization_ratio", "encoder_decoder": "gpufleet_gpu_encoder_utilization_ratio",
    "memory": "gpufleet_gpu_memory_total_bytes", "power": "gpufleet_gpu_power_watts",
    "energy": "gpufleet_gpu_energy_joules_total", "temperature": "gpufleet_gpu_temperature_celsius",
    "memory_temperature": "gpufleet_gpu_memory_temperature_celsius", "clocks": "gpufleet_gpu_sm_clock_hertz",
    "clock_events": "gpufleet_gpu_clock_event_active", "violation": "gpufleet_gpu_clock_violation_seconds_total",
    "pcie_throughput": "gpufleet_gpu_pcie_transmit_bytes_per_second",
    "pcie_replays": "gpufleet_gpu_pcie_replays_total", "nvlink": "gpufleet_gpu_nvlink_bytes_total",
    "ecc": "gpufleet_gpu_ecc_errors_total", "remapped_rows": "gpufleet_gpu_remapped_rows_correctable_total",
    "processes": "gpufleet_gpu_process_memory_used_bytes", "gpm_support": "gpufleet_gpu_gpm_supported",
    "gpm_sample": "gpufleet_gpu_sm_active_ratio", "mig_instances": "gpufleet_gpu_memory_free_bytes",
}


class ProcBackend(SimBackend):
    """The simulated backend with a fixed list of compute processes per GPU."""

    def __init__(self, *args: object, procs: int = 5, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.procs = procs

    def processes(self, index: int) -> list[ProcessMemory]:
        self._check("processes", index)
        return [ProcessMemory(100 + k, float((k + 1) * 2**30)) for k in range(self.procs)]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(gpus: int = 2, *, mig: bool = False, processes: bool = True, **kw: object) -> tuple[ProcBackend, Sampler]:
    backend = ProcBackend(sim_fleet(gpus=gpus, mig=mig))
    sampler = Sampler(backend, gpm_interval=0.0, reinit_backoff=0.0, processes=processes, xid_timeout=0.0,
                      sleep=lambda s: None, **kw)  # type: ignore[arg-type]
    return backend, sampler


def one_pass(sampler: Sampler) -> Snapshot:
    sampler.sample_fast()
    sampler.sample_slow()
    return sampler.snapshot()


def names_for(snap: Snapshot, gpu: int) -> set[str]:
    state = next(s for s in snap.gpus if s.identity.gpu_index == gpu)
    return {s.name for s in (*state.fast, *state.slow)}


def render(snap: Snapshot, **kw: object) -> str:
    return GpuCollector(lambda: snap, hostname="node-a", **kw).render_text().decode()  # type: ignore[arg-type]


PER_GPU_CALLS = [c for c in CALLS if c not in ("device_count", "identity", "xid_wait")]


def test_every_call_kind_is_covered() -> None:
    assert set(PER_GPU_CALLS) == set(SERIES)
    assert set(ERRORS) == set(nv_errors.ERROR_KINDS)


@pytest.mark.parametrize("kind", sorted(ERRORS))
@pytest.mark.parametrize("call", PER_GPU_CALLS)
def test_a_fault_on_one_call_drops_only_that_field(call: str, kind: str) -> None:
    backend, sampler = make(mig=call == "mig_instances")
    sampler.start_backend()
    before = names_for(one_pass(sampler), 0)
    assert SERIES[call] in before
    backend.inject(call, ERRORS[kind], gpu=0)
    snap = one_pass(sampler)
    assert snap.errors[(call, kind)] >= 1
    gpu0 = next(s for s in snap.gpus if s.identity.gpu_index == 0)
    if kind in LOST and call != "gpm_sample":
        # The GPU is lost: up 0 with its identity, none of its readings.
        assert not gpu0.up and gpu0.identity.uuid == backend.gpus[0].uuid
        text = render(snap)
        lost = [s for s in parse(text).families["gpufleet_gpu_up"].samples if dict(s.labels)["gpu"] == "0"]
        assert [(dict(s.labels)["gpu_uuid"], s.value) for s in lost] == [(backend.gpus[0].uuid, 0.0)]
    else:
        assert gpu0.up
        after = names_for(snap, 0)
        if call == "mig_instances":
            assert not any(s.labels and s.labels[0][0] == "mig_instance" for s in gpu0.slow)
        elif call == "gpm_support" and kind == "not_supported":
            assert "gpufleet_gpu_gpm_supported" in after and "gpufleet_gpu_sm_active_ratio" not in after
        else:
            assert SERIES[call] not in after
        # Everything that did not fail is still there.
        others = {SERIES[c] for c in PER_GPU_CALLS if c not in (call, "mig_instances")} & before
        if call == "gpm_support":
            others.discard("gpufleet_gpu_sm_active_ratio")
            if kind == "not_supported":
                others.add("gpufleet_gpu_gpm_supported")
        assert others <= after
    # The other GPU is untouched, and the scrape renders.
    assert SERIES[call] in names_for(snap, 1)
    assert "gpufleet_exporter_nvml_errors_total" in render(snap)


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_device_count_and_xid_wait_faults_are_counted(kind: str) -> None:
    backend, sampler = make()
    backend.inject("device_count", ERRORS[kind], times=1)
    assert sampler.start_backend() is False
    assert sampler.errors[("device_count", kind)] == 1
    assert sampler.health()[0] is False
    assert sampler.start_backend() is True  # the fault was one-shot
    backend.inject("xid_wait", ERRORS[kind])
    assert sampler.poll_xids() == 0
    assert sampler.errors[("xid_wait", kind)] == 1


def test_identity_fault_lists_the_gpu_as_down() -> None:
    backend, sampler = make()
    backend.inject("identity", nv_errors.Unknown, gpu=1)
    sampler.start_backend()
    assert [g.up for g in sampler.gpus] == [True, False]
    assert sampler.errors[("identity", "unknown")] == 1


def test_lost_gpu_keeps_identity_and_returns_after_reinit() -> None:
    clock = Clock()
    backend, sampler = make(clock=clock)
    sampler.reinit_backoff = 10.0
    sampler.start_backend()
    one_pass(sampler)
    uuid1 = backend.gpus[1].uuid
    backend.emit_xid(1, 79)
    sampler.poll_xids()
    backend.lose(1)
    clock.t += 11
    snap = one_pass(sampler)
    text = render(snap)
    fams = parse(text).families
    ups = {dict(s.labels)["gpu"]: (dict(s.labels)["gpu_uuid"], dict(s.labels)["gpu_model"], s.value)
           for s in fams["gpufleet_gpu_up"].samples}
    assert ups["1"] == (uuid1, "NVIDIA H100 80GB HBM3", 0.0) and ups["0"][2] == 1.0
    assert {dict(s.labels)["gpu"] for s in fams["gpufleet_gpu_power_watts"].samples} == {"0"}
    # The XID counter of the lost GPU survives; the reason it fell off is visible.
    xid = [s for s in fams["gpufleet_gpu_xid_errors_total"].samples if dict(s.labels)["gpu_uuid"] == uuid1]
    assert [(dict(s.labels)["xid"], dict(s.labels)["severity"], s.value) for s in xid] == [("79", "critical", 1.0)]
    assert snap.errors[("utilization", "gpu_is_lost")] >= 1
    assert sampler.reinits == 0
    sampler.sample_fast()  # the next pass re-initialises NVML at once; the GPU is still gone
    assert sampler.reinits == 1 and not sampler.gpus[1].up and sampler.gpus[1].identity.uuid == uuid1
    reinits = sampler.reinits
    # Power-cycled: NVML is initialised again (after the back-off) and the GPU answers.
    backend.restore(1)
    init_count = backend.init_count
    sampler.sample_fast()
    assert not sampler.gpus[1].up  # still inside the back-off
    clock.t += 11
    sampler.sample_fast()
    assert sampler.gpus[1].up and backend.init_count == init_count + 1 and sampler.reinits == reinits + 1
    snap = one_pass(sampler)
    assert "gpufleet_gpu_power_watts" in names_for(snap, 1)
    assert "gpufleet_exporter_nvml_reinits_total " + f"{float(sampler.reinits)!r}" in render(snap)


def test_driver_unload_and_reload() -> None:
    clock = Clock()
    backend, sampler = make(clock=clock)
    sampler.start_backend()
    one_pass(sampler)
    backend.unload_driver()
    clock.t += 1
    one_pass(sampler)
    assert [g.up for g in sampler.gpus] == [False, False]
    ok, detail = sampler.health()
    assert not ok and detail["gpus_up"] == 0
    sampler.sample_fast()  # re-initialising fails: the driver is gone
    ok, detail = sampler.health()
    assert not ok and detail["nvml"] == "unavailable"
    assert sampler.errors[("init", "driver_not_loaded")] == 1
    backend.load_driver()
    clock.t += 1
    sampler.sample_fast()
    assert [g.up for g in sampler.gpus] == [True, True]
    ok, detail = sampler.health()
    assert ok and detail["nvml"] == "usable" and detail["gpus_up"] == 2


def test_xids_counted_by_code_and_severity_and_logged(tmp_path: Path) -> None:
    backend, sampler = make()
    log = XidLog(tmp_path / "xid.jsonl", node="node-a", gpu_index=lambda u: 0 if u == backend.gpus[0].uuid else 1,
                 clock=lambda: 1234.5)
    sampler.on_xid = log
    sampler.wall = lambda: 1795400000.0
    sampler.start_backend()
    one_pass(sampler)
    for xid in (13, 13, 48, 63, 31, 4242):
        backend.emit_xid(0, xid)
    backend.emit_xid(1, 94)
    assert sampler.poll_xids() == 7
    snap = sampler.snapshot()
    fams = parse(render(snap)).families
    got = {(dict(s.labels)["gpu"], dict(s.labels)["xid"], dict(s.labels)["severity"]): s.value
           for s in fams["gpufleet_gpu_xid_errors_total"].samples}
    assert got == {("0", "13", "application"): 2.0, ("0", "31", "application"): 1.0, ("0", "48", "critical"): 1.0,
                   ("0", "63", "warning"): 1.0, ("0", "4242", "warning"): 1.0, ("1", "94", "warning"): 1.0}
    seen = {(dict(s.labels)["gpu"], dict(s.labels)["xid"], dict(s.labels)["severity"]): s.value
            for s in fams["gpufleet_gpu_xid_last_seen_timestamp_seconds"].samples}
    assert seen == {k: 1795400000.0 for k in got}  # when each code was last seen, for the store to land
    last = {dict(s.labels)["gpu"]: s.value for s in fams["DCGM_FI_DEV_XID_ERRORS"].samples}
    assert last == {"0": 4242.0, "1": 94.0}
    dcgm = {(dict(s.labels)["gpu"], dict(s.labels)["xid"]): s.value for s in fams["DCGM_EXP_XID_ERRORS_TOTAL"].samples}
    assert dcgm[("0", "13")] == 2.0
    lines = [json.loads(line) for line in (tmp_path / "xid.jsonl").read_text().splitlines()]
    assert len(lines) == 7
    assert lines[2] == {"time": 1234.5, "node": "node-a", "gpu_uuid": backend.gpus[0].uuid, "gpu": 0, "xid": 48,
                        "severity": "critical", "failure_class": "hbm", "meaning": "double-bit ECC error",
                        "action": "reset the GPU; drain if 63/64 follow"}


def test_a_failing_xid_sink_is_counted_not_fatal() -> None:
    backend, sampler = make()

    def broken(_ev: object) -> None:
        raise OSError("disk full")

    sampler.on_xid = broken
    sampler.start_backend()
    backend.emit_xid(0, 48)
    assert sampler.poll_xids() == 1
    assert sampler.xids[backend.gpus[0].uuid] == {48: 1.0}
    assert sampler.errors[("xid_sink", "unknown")] == 1


def test_per_process_memory_is_opt_in_and_bounded() -> None:
    _, off = make(processes=False)
    off.start_backend()
    assert "gpufleet_gpu_process_memory_used_bytes" not in names_for(one_pass(off), 0)
    _, on = make(processes=True, max_processes=2)
    on.start_backend()
    snap = one_pass(on)
    state = snap.gpus[0]
    procs = {s.labels[0][1]: s.value for s in state.slow if s.name == "gpufleet_gpu_process_memory_used_bytes"}
    gib = float(2**30)
    assert procs == {"104": 5 * gib, "103": 4 * gib, "other": 6 * gib}  # 3 + 2 + 1 GiB summed
    with pytest.raises(ValueError, match="max_processes"):
        make(max_processes=0)


def test_health_goes_stale_when_sampling_stops() -> None:
    clock = Clock()
    _, sampler = make(clock=clock)
    assert sampler.health()[0] is False  # nothing sampled yet
    sampler.start_backend()
    sampler.sample_fast()
    ok, detail = sampler.health()
    assert ok and detail["last_sample_age_seconds"] == 0.0 and detail["gpus"] == 2
    clock.t += 3 * sampler.fast_interval + 6
    ok, detail = sampler.health()
    assert not ok and detail["last_sample_age_seconds"] == pytest.approx(3 * sampler.fast_interval + 6)


def test_gpm_unsupported_is_said_in_a_metric() -> None:
    backend = SimBackend(sim_fleet(gpus=1), gpm=False)
    sampler = Sampler(backend, gpm_interval=0.0, sleep=lambda s: None)
    sampler.start_backend()
    snap = one_pass(sampler)
    slow = {s.name: s.value for s in snap.gpus[0].slow}
    assert slow["gpufleet_gpu_gpm_supported"] == 0.0
    assert "gpufleet_gpu_sm_active_ratio" not in slow


def test_threads_run_and_stop() -> None:
    backend = SimBackend(sim_fleet(gpus=1))
    sampler = Sampler(backend, fast_interval=0.05, slow_interval=0.1, gpm_interval=0.01, xid_timeout=0.05)
    sampler.start()
    try:
        backend.emit_xid(0, 48)
        for _ in range(200):
            if sampler.xids and "slow" in sampler.finished:
                break
            import time

            time.sleep(0.02)
        assert sampler.alive()
        assert sampler.xids[backend.gpus[0].uuid] == {48: 1.0}
        assert "slow" in sampler.finished
    finally:
        sampler.stop()
    assert not sampler.alive() and backend.initialized is False


def test_reinit_never_runs_under_a_pass_of_the_other_loop() -> None:
    # GPU 1 is lost, so the fast loop re-initialises NVML. A slow pass started while NVML is shut down
    # must wait for the re-initialisation rather than read "uninitialized" and mark GPU 0 lost.
    import threading

    backend, sampler = make()
    sampler.start_backend()
    one_pass(sampler)
    backend.lose(1)
    sampler.sample_fast()
    assert [g.up for g in sampler.gpus] == [True, False]
    slow_done = threading.Event()
    started: list[threading.Thread] = []
    real_shutdown = backend.shutdown

    def shutdown_and_race() -> None:
        real_shutdown()
        t = threading.Thread(target=lambda: (sampler.sample_slow(), slow_done.set()), daemon=True)
        t.start()
        started.append(t)
        t.join(0.3)  # it cannot finish while the re-initialisation holds the passes

    backend.shutdown = shutdown_and_race  # type: ignore[method-assign]
    sampler.sample_fast()  # re-initialises; GPU 1 is still lost
    started[0].join(10)
    assert slow_done.is_set()
    assert sampler.gpus[0].up and not sampler.gpus[1].up
    assert ("utilization", "uninitialized") not in sampler.errors
    assert not any(kind == "uninitialized" for (_field, kind) in sampler.errors)


class Renumbering(SimBackend):
    """NVML after a GPU fell off the bus for good: the count drops and the later GPUs move down an index."""

    removed: set[int] = set()

    def _visible(self) -> list[int]:
        return [k for k in range(len(self.gpus)) if k not in self.removed]

    def device_count(self) -> int:
        self._check("device_count")
        return len(self._visible())

    def identity(self, index: int) -> DeviceIdentity:
        g = self.gpus[self._visible()[index]]
        return DeviceIdentity(index, g.uuid, g.spec.name, g.pci_bus_id, index)


def test_a_vanished_gpu_stays_down_when_nvml_renumbers_the_rest() -> None:
    backend = Renumbering(sim_fleet(gpus=4))
    backend.removed = set()
    sampler = Sampler(backend, gpm_interval=0.0, reinit_backoff=0.0, sleep=lambda s: None)
    sampler.start_backend()
    uuids = [g.identity.uuid for g in sampler.gpus]
    backend.removed = {1}
    backend.lose(1)
    sampler.sample_fast()  # GPU 1 lost
    backend.restore(1)  # reads by index now reach the renumbered GPUs (the stand-in keeps values by old index)
    sampler.sample_fast()  # re-initialised: three GPUs, renumbered
    fams = parse(render(sampler.snapshot())).families
    ups = sorted((dict(s.labels)["gpu_uuid"], dict(s.labels)["gpu"], s.value) for s in fams["gpufleet_gpu_up"].samples)
    assert ups == sorted([(uuids[0], "0", 1.0), (uuids[2], "1", 1.0), (uuids[3], "2", 1.0), (uuids[1], "1", 0.0)])


def test_fast_pass_runs_while_a_slow_pass_blocks() -> None:
    import threading

    entered, release = threading.Event(), threading.Event()

    class BlockingPcie(SimBackend):
        def pcie_throughput(self, index: int) -> tuple[float, float]:
            entered.set()
            release.wait(10)
            return super().pcie_throughput(index)

    backend = BlockingPcie(sim_fleet(gpus=1))
    sampler = Sampler(backend, gpm_interval=0.0, sleep=lambda s: None)
    sampler.start_backend()
    slow = threading.Thread(target=sampler.sample_slow, daemon=True)
    slow.start()
    assert entered.wait(10)
    sampler.sample_fast()  # not held up by the slow pass's blocking PCIe read
    assert slow.is_alive() and "fast" in sampler.finished
    release.set()
    slow.join(10)
    assert "slow" in sampler.finished
