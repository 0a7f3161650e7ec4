"""Pod attribution from a fake kubelet pod-resources v1 gRPC server on a unix socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from gpufleet.exporters.collector import GpuCollector, PodRef
from gpufleet.exporters.podresources import PodResourcesWatcher, api_pb2
from gpufleet.exporters.podresources.client import LIST_METHOD, PodResourcesError, list_pod_resources
from gpufleet.exporters.podresources.devices import (
    Holder,
    allowed_labels,
    build_attribution,
    device_uuid,
    gpu_holders,
    is_gpu_resource,
    label_name,
)
from gpufleet.exporters.podresources.labels import LabelCache, kube_label_source

GPU0 = "GPU-0b1c2d3e-0000-4000-8000-000000000000"
GPU1 = "GPU-0b1c2d3e-0000-4000-8000-000000000001"
GPU2 = "GPU-0b1c2d3e-0000-4000-8000-000000000002"
MIG_A = "MIG-5f6a7b8c-0000-4000-8000-00000000000a"
MIG_B = "MIG-5f6a7b8c-0000-4000-8000-00000000000b"


def _pod(ns: str, name: str, *containers: tuple[str, list[tuple[str, list[str]]]]) -> api_pb2.PodResources:
    return api_pb2.PodResources(namespace=ns, name=name, containers=[
        api_pb2.ContainerResources(name=c, devices=[api_pb2.ContainerDevices(resource_name=r, device_ids=ids)
                                                    for r, ids in devs], cpu_ids=[0, 1])
        for c, devs in containers])


def node_listing() -> api_pb2.ListPodResourcesResponse:
    """A node with a whole GPU, a time-sliced GPU shared by two pods, two MIG instances and non-GPU devices."""
    return api_pb2.ListPodResourcesResponse(pod_resources=[
        _pod("train", "llama-0", ("trainer", [("nvidia.com/gpu", [GPU0])]), ("sidecar", [])),
        _pod("serve", "vllm-a", ("engine", [("nvidia.com/gpu.shared", [f"{GPU1}::0", f"{GPU1}::3"])])),
        _pod("serve", "vllm-b", ("engine", [("nvidia.com/gpu", [f"{GPU1}::1"])])),
        _pod("batch", "mig-job", ("worker", [("nvidia.com/mig-1g.10gb", [MIG_A]),
                                             ("example.com/fpga", ["fpga-0"])])),
        _pod("batch", "mig-job-2", ("worker", [("nvidia.com/mig-3g.40gb", [MIG_B])])),
        _pod("net", "sriov", ("nic", [("intel.com/sriov", ["0000:3b:00.1"])])),
    ])


class FakeKubelet:
    """Serves ``List`` on a unix socket; ``listing``, ``fail`` and ``delay_s`` change what it answers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.listing = node_listing()
        self.fail: grpc.StatusCode | None = None
        self.delay_s = 0.0
        self.calls = 0
        self._release = threading.Event()
        handler = grpc.method_handlers_generic_handler("v1.PodResourcesLister", {
            "List": grpc.unary_unary_rpc_method_handler(
                self._list, request_deserializer=api_pb2.ListPodResourcesRequest.FromString,
                response_serializer=api_pb2.ListPodResourcesResponse.SerializeToString)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port(f"unix://{path}")

    def _list(self, request: api_pb2.ListPodResourcesRequest, context: grpc.ServicerContext,
              ) -> api_pb2.ListPodResourcesResponse:
        self.calls += 1
        if self.delay_s:
            self._release.wait(self.delay_s)
        if self.fail is not None:
            context.abort(self.fail, "kubelet says no")
        return self.listing

    def start(self) -> FakeKubelet:
        self.server.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.stop(None).wait(5)


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[FakeKubelet]:
    path = tmp_path / "kubelet.sock"
    assert len(str(path)) < 100, "unix socket paths are limited to 107 bytes"
    fake = FakeKubelet(path).start()
    yield fake
    fake.stop()


# -- pure mapping ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("nvidia.com/gpu", True),
    ("nvidia.com/gpu.shared", True),
    ("nvidia.com/mig-1g.10gb", True),
    ("nvidia.com/mig-3g.40gb.shared", True),
    ("nvidia.com/mig-", False),
    ("nvidia.com/gpus", False),
    ("amd.com/gpu", False),
    ("example.com/fpga", False),
    ("", False),
])
def test_gpu_resources(name: str, expected: bool) -> None:
    assert is_gpu_resource(name) is expected


@pytest.mark.parametrize(("device_id", "expected"), [
    (GPU0, GPU0),
    (f"{GPU0}::0", GPU0),
    (f"{GPU0}::17", GPU0),
    (f"{MIG_A}::2", MIG_A),
    ("GPU-x::a", "GPU-x::a"),  # not a replica suffix
    ("::3", "::3"),
])
def test_device_uuid_strips_replica_suffix(device_id: str, expected: str) -> None:
    assert device_uuid(device_id) == expected


def test_holders_from_listing() -> None:
    holders = gpu_holders(node_listing())
    assert holders == [
        Holder(GPU0, "train", "llama-0", "trainer"),
        Holder(GPU1, "serve", "vllm-a", "engine"),  # two replicas, one holder
        Holder(GPU1, "serve", "vllm-b", "engine"),
        Holder(MIG_A, "batch", "mig-job", "worker"),
        Holder(MIG_B, "batch", "mig-job-2", "worker"),
    ]


def test_build_attribution_bounded_and_sorted() -> None:
    holders = [Holder(GPU1, "z", "p2", "c"), Holder(GPU1, "a", "p1", "c"), Holder(GPU2, "a", "p3", "c")]
    labels = {("a", "p1"): (("label_team", "ml"),)}
    att, dropped = build_attribution(holders, labels, max_entries=10)
    assert dropped == 0
    assert att == {GPU1: [PodRef("a", "p1", "c", (("label_team", "ml"),)), PodRef("z", "p2", "c")],
                   GPU2: [PodRef("a", "p3", "c")]}
    att, dropped = build_attribution(holders, labels, max_entries=2)
    assert dropped == 1
    assert sum(len(v) for v in att.values()) == 2
    assert GPU2 not in att


@pytest.mark.parametrize(("key", "expected"), [
    ("team", "label_team"),
    ("app.kubernetes.io/name", "label_app_kubernetes_io_name"),
    ("example.com/cost-center", "label_example_com_cost_center"),
])
def test_label_names(key: str, expected: str) -> None:
    assert label_name(key) == expected


def test_allowed_labels_only_allowlisted_and_present() -> None:
    pod = {"team": "ml", "app.kubernetes.io/name": "vllm", "secret-ish": "x"}
    assert allowed_labels(pod, ["team", "app.kubernetes.io/name", "missing"]) == (
        ("label_app_kubernetes_io_name", "vllm"), ("label_team", "ml"))
    assert allowed_labels(pod, []) == ()


# -- the gRPC client -------------------------------------------------------------------------------

def test_list_over_unix_socket(kubelet: FakeKubelet) -> None:
    resp = list_pod_resources(str(kubelet.path), 2.0)
    assert [p.name for p in resp.pod_resources] == ["llama-0", "vllm-a", "vllm-b", "mig-job", "mig-job-2", "sriov"]
    assert LIST_METHOD == "/v1.PodResourcesLister/List"


def test_client_error_kinds(tmp_path: Path, kubelet: FakeKubelet) -> None:
    with pytest.raises(PodResourcesError) as err:
        list_pod_resources(str(tmp_path / "absent.sock"), 1.0)
    assert err.value.kind == "socket_absent"
    plain = tmp_path / "plain-file"
    plain.write_text("not a socket")
    with pytest.raises(PodResourcesError) as err:
        list_pod_resources(str(plain), 1.0)
    assert err.value.kind == "not_a_socket"
    kubelet.fail = grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(PodResourcesError) as err:
        list_pod_resources(str(kubelet.path), 1.0)
    assert err.value.kind == "permission_denied"
    assert "kubelet says no" in str(err.value)


# -- the watcher -------------------------------------------------------------------------------------

def test_watcher_attribution_full_mig_and_time_sliced(kubelet: FakeKubelet) -> None:
    w = PodResourcesWatcher(str(kubelet.path), refresh_s=60)
    assert w.attribution() == {}  # nothing before the first poll, and no blocking
    assert w.refresh() is True
    assert w.attribution() == {
        GPU0: [PodRef("train", "llama-0", "trainer")],
        GPU1: [PodRef("serve", "vllm-a", "engine"), PodRef("serve", "vllm-b", "engine")],
        MIG_A: [PodRef("batch", "mig-job", "worker")],
        MIG_B: [PodRef("batch", "mig-job-2", "worker")],
    }
    assert w.errors() == {}


def test_watcher_cache_bound(kubelet: FakeKubelet) -> None:
    pods = [_pod("ns", f"p{i}", ("c", [("nvidia.com/gpu", [f"{GPU0}::{i}"])])) for i in range(50)]
    kubelet.listing = api_pb2.ListPodResourcesResponse(pod_resources=pods)
    w = PodResourcesWatcher(str(kubelet.path), max_entries=8)
    assert w.refresh() is True
    assert len(w.attribution()[GPU0]) == 8
    assert w.errors() == {"too_many_devices": 1.0}


def test_watcher_socket_absent_is_empty_and_counted(tmp_path: Path) -> None:
    w = PodResourcesWatcher(str(tmp_path / "nope.sock"), refresh_s=0.05)
    w.start()
    try:
        for _ in range(200):
            if w.errors().get("socket_absent", 0) >= 2:
                break
            threading.Event().wait(0.01)
    finally:
        w.stop()
    assert w.attribution() == {}
    assert w.errors()["socket_absent"] >= 2
    assert set(w.errors()) == {"socket_absent"}


def test_watcher_socket_disappears_clears_attribution(tmp_path: Path) -> None:
    fake = FakeKubelet(tmp_path / "k.sock").start()
    w = PodResourcesWatcher(str(fake.path))
    assert w.refresh()
    assert len(w.attribution()) == 4
    fake.stop()
    fake.path.unlink(missing_ok=True)
    assert w.refresh() is False
    assert w.attribution() == {}
    assert w.errors() == {"socket_absent": 1.0}


def test_watcher_server_error_keeps_recent_map_then_expires(kubelet: FakeKubelet) -> None:
    now = [100.0]
    w = PodResourcesWatcher(str(kubelet.path), refresh_s=10, clock=lambda: now[0])
    assert w.refresh()
    kubelet.fail = grpc.StatusCode.UNAVAILABLE
    now[0] = 110.0
    assert w.refresh() is False
    assert len(w.attribution()) == 4  # one failed poll keeps the last answer
    now[0] = 131.0  # past three refresh intervals
    assert w.refresh() is False
    assert w.attribution() == {}
    assert w.errors() == {"unavailable": 2.0}
    kubelet.fail = None
    assert w.refresh()
    assert len(w.attribution()) == 4


def test_watcher_timeout_counts_deadline_and_scrape_never_waits(kubelet: FakeKubelet) -> None:
    kubelet.delay_s = 3.0
    w = PodResourcesWatcher(str(kubelet.path), timeout_s=0.2, refresh_s=60)
    w.start()
    try:
        for _ in range(300):
            if w.errors():
                break
            assert w.attribution() == {}  # served from the cache while the call hangs
            threading.Event().wait(0.01)
    finally:
        w.stop()
    assert w.errors() == {"deadline_exceeded": 1.0}


def test_watcher_stale_socket_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # the file stays, nobody listens: what a crashed kubelet leaves
    assert path.is_socket()
    w = PodResourcesWatcher(str(path), timeout_s=1.0)
    assert w.refresh() is False
    assert w.errors() == {"unavailable": 1.0}


# -- pod labels --------------------------------------------------------------------------------------

def test_watcher_labels_from_source_with_allowlist(kubelet: FakeKubelet) -> None:
    calls: list[tuple[str, str]] = []
    now = [1000.0]
    cluster = {("serve", "vllm-a"): {"team": "search", "app.kubernetes.io/name": "vllm", "tier": "gold"},
               ("serve", "vllm-b"): {"team": "ads"}}

    def source(ns: str, pod: str) -> dict[str, str]:
        calls.append((ns, pod))
        if ns == "batch":
            raise TimeoutError("api server slow")
        return cluster.get((ns, pod), {})

    w = PodResourcesWatcher(str(kubelet.path), label_allowlist=("team", "app.kubernetes.io/name"),
                            label_source=source, clock=lambda: now[0])
    assert w.refresh()
    att = w.attribution()
    assert att[GPU1] == [PodRef("serve", "vllm-a", "engine", (("label_app_kubernetes_io_name", "vllm"),
                                                               ("label_team", "search"))),
                         PodRef("serve", "vllm-b", "engine", (("label_team", "ads"),))]
    assert att[GPU0] == [PodRef("train", "llama-0", "trainer")]
    assert att[MIG_A] == [PodRef("batch", "mig-job", "worker")]  # fetch failed: no labels, not invented
    # a timeout ends the pass: the last pod waits for the next one
    assert calls == [("train", "llama-0"), ("serve", "vllm-a"), ("serve", "vllm-b"), ("batch", "mig-job")]
    assert w.errors() == {"labels_timeout": 1.0}
    now[0] += 10
    assert w.refresh()  # cached labels are not fetched again; the failed pod waits out its retry delay
    assert calls[4:] == [("batch", "mig-job-2")]
    now[0] += 60
    assert w.refresh()
    assert calls[5:] == [("batch", "mig-job")]
    assert w.errors() == {"labels_timeout": 3.0}


def test_label_cache_http_errors_do_not_stop_the_pass_but_budget_does() -> None:
    class Forbidden(Exception):
        status = 403

    now = [0.0]
    fetched: list[str] = []

    def source(ns: str, pod: str) -> dict[str, str]:
        fetched.append(pod)
        now[0] += 4  # a slow API server
        if pod == "a":
            raise Forbidden()
        return {"team": pod}

    errors: list[str] = []
    cache = LabelCache(source, ["team"], max_pods=10, budget_s=10, clock=lambda: now[0], on_error=errors.append)
    out = cache.labels_for([("n", p) for p in "abcd"])
    assert errors == ["labels_http_403"]
    assert fetched == ["a", "b", "c"]  # d is past the 10 s budget
    assert out == {("n", "a"): (), ("n", "b"): (("label_team", "b"),), ("n", "c"): (("label_team", "c"),),
                   ("n", "d"): ()}
    assert cache.labels_for([("n", p) for p in "abcd"])[("n", "d")] == (("label_team", "d"),)


def test_no_kube_config_means_no_labels(kubelet: FakeKubelet, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kube_label_source() is None
    w = PodResourcesWatcher(str(kubelet.path), label_allowlist=["team"])
    assert w.refresh()
    assert all(ref.labels == () for refs in w.attribution().values() for ref in refs)
    assert w.errors() == {"labels_unconfigured": 1.0}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"refresh_s": 0}, "refresh_s 0"),
    ({"timeout_s": -1}, "timeout_s -1"),
    ({"max_entries": 0}, "max_entries 0"),
    ({"label_allowlist": ["team", "bad key"]}, "label_allowlist"),
])
def test_watcher_rejects_bad_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PodResourcesWatcher("/run/kubelet.sock", **kwargs)  # type: ignore[arg-type]


# -- into the scrape -----------------------------------------------------------------------------------

def test_attribution_reaches_exposition(kubelet: FakeKubelet) -> None:
    from gpufleet.exporters.sampler import Sampler
    from gpufleet.exporters.sim import SimBackend, sim_fleet

    backend = SimBackend(sim_fleet("H100", 2))
    sampler = Sampler(backend)
    sampler.start_backend()
    sampler.sample_fast()
    uuids = [g.identity.uuid for g in sampler.gpus]
    kubelet.listing = api_pb2.ListPodResourcesResponse(pod_resources=[
        _pod("train", "llama-0", ("trainer", [("nvidia.com/gpu", [uuids[0]])])),
        _pod("serve", "a", ("engine", [("nvidia.com/gpu", [f"{uuids[1]}::0"])])),
        _pod("serve", "b", ("engine", [("nvidia.com/gpu", [f"{uuids[1]}::1"])])),
    ])
    w = PodResourcesWatcher(str(kubelet.path))
    assert w.refresh()
    col = GpuCollector(sampler.snapshot, hostname="node-1", attribution=w.attribution, pod_errors=w.errors)
    text = col.render_text(["native"]).decode()
    util = [line for line in text.splitlines() if line.startswith("gpufleet_gpu_utilization_ratio{")]
    assert any(f'gpu_uuid="{uuids[0]}"' in line and 'pod="llama-0"' in line and 'namespace="train"' in line
               and 'container="trainer"' in line for line in util)
    # a time-sliced GPU has two holders: its series carry no single pod, the allocation splits it
    assert any(f'gpu_uuid="{uuids[1]}"' in line and "pod=" not in line for line in util)
    alloc = [line for line in text.splitlines() if line.startswith("gpufleet_gpu_pod_allocation{")]
    assert sorted(line.rsplit(" ", 1)[1] for line in alloc if uuids[1] in line) == ["0.5", "0.5"]
    kubelet.fail = grpc.StatusCode.UNAVAILABLE
    assert w.refresh() is False
    text = col.render_text(["native"]).decode()
    assert 'gpufleet_exporter_pod_resources_errors_total{error="unavailable"} 1.0' in text
    sampler.stop()


# -- wired into the exporter ---------------------------------------------------------------------------

def test_exporter_flags_wire_the_watcher(kubelet: FakeKubelet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from gpufleet.exporters.app import ExporterOptions, build
    from gpufleet.exporters.sim import SimBackend, sim_fleet

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    uuids = [g.uuid for g in SimBackend(sim_fleet("H100", 2, seed=7)).gpus]
    kubelet.listing = api_pb2.ListPodResourcesResponse(pod_resources=[
        _pod("train", "llama-0", ("trainer", [("nvidia.com/gpu", [uuids[1]])]))])
    exp = build(ExporterOptions(backend="sim", listen="127.0.0.1:0", sim_gpus=2, sim_seed=7, hostname="node-1",
                                pod_resources_socket=str(kubelet.path), pod_label_allowlist=("team",)))
    exp.start()
    try:
        watcher = exp.collector.attribution.__self__  # type: ignore[union-attr]
        assert isinstance(watcher, PodResourcesWatcher)
        assert watcher.label_allowlist == ("team",)
        for _ in range(500):
            if watcher.refreshes and watcher.attribution():
                break
            threading.Event().wait(0.01)
        text = httpx.get(exp.url + "/metrics", timeout=10).text
    finally:
        exp.stop()
    assert watcher._thread is None  # stopped with the exporter
    line = next(x for x in text.splitlines() if x.startswith("gpufleet_gpu_power_watts{") and uuids[1] in x)
    assert 'pod="llama-0"' in line and 'namespace="train"' in line and 'container="trainer"' in line
    assert "label_team" not in line  # no kube config: allowlisted labels stay empty
    assert 'gpufleet_exporter_pod_resources_errors_total{error="labels_unconfigured"} 1.0' in text


def test_mig_instances_get_their_own_pods(kubelet: FakeKubelet) -> None:
    from gpufleet.exporters.sampler import Sampler
    from gpufleet.exporters.sim import SimBackend, sim_fleet

    backend = SimBackend(sim_fleet(gpus=1, mig=True))
    sampler = Sampler(backend, gpm_interval=0.01)
    sampler.start_backend()
    sampler.sample_fast()
    sampler.sample_slow()
    migs = sampler.gpus[0].migs
    assert len(migs) >= 2
    first, second = migs[0], migs[1]
    kubelet.listing = api_pb2.ListPodResourcesResponse(pod_resources=[
        _pod("team-a", "notebook", ("jupyter", [(f"nvidia.com/mig-{first.profile}", [first.uuid])])),
        _pod("team-b", "infer-0", ("engine", [(f"nvidia.com/mig-{second.profile}.shared", [f"{second.uuid}::0"])])),
        _pod("team-b", "infer-1", ("engine", [(f"nvidia.com/mig-{second.profile}.shared", [f"{second.uuid}::1"])])),
    ])
    w = PodResourcesWatcher(str(kubelet.path))
    assert w.refresh()
    col = GpuCollector(sampler.snapshot, hostname="node-1", attribution=w.attribution, pod_errors=w.errors)
    text = col.render_text(["native"]).decode()
    sampler.stop()
    mig_lines = [x for x in text.splitlines() if x.startswith("gpufleet_gpu_memory_used_bytes{") and "mig_instance" in x]
    by_instance = {x.split('mig_instance="')[1].split('"')[0]: x for x in mig_lines}
    assert 'pod="notebook"' in by_instance[str(first.gi_id)]
    assert 'namespace="team-a"' in by_instance[str(first.gi_id)]
    assert "pod=" not in by_instance[str(second.gi_id)]  # shared instance: split in the allocation rows
    alloc = [x for x in text.splitlines() if x.startswith("gpufleet_gpu_pod_allocation{")
             and f'mig_instance="{second.gi_id}"' in x]
    assert sorted((x.split('pod="')[1].split('"')[0], x.rsplit(" ", 1)[1]) for x in alloc) == [
        ("infer-0", "0.5"), ("infer-1", "0.5")]


def test_grpc_is_not_loaded_while_the_socket_is_absent(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from gpufleet.exporters.podresources import PodResourcesWatcher as W; "
            f"w = W({str(tmp_path / 'absent.sock')!r}); w.refresh(); print(w.errors(), 'grpc' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "{'socket_absent': 1.0} False"
