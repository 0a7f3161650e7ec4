"""OTLP push checked against a loopback OTLP/HTTP receiver that decodes the protobuf requests."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from gpufleet.exporters.errors import NvmlError
from gpufleet.exporters.metrics import ALL_GPU_METRICS
from gpufleet.exporters.otlp import EXPORTED, metrics_url, points, start_otlp, unit_of
from gpufleet.exporters.sampler import Sampler
from gpufleet.exporters.sim import SimBackend, sim_fleet
from gpufleet.exporters.snapshot import Snapshot

Key = tuple[str, tuple[tuple[str, str], ...]]


class Receiver:
    """An OTLP/HTTP metrics endpoint on 127.0.0.1 keeping each decoded request and its headers."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                req = ExportMetricsServiceRequest()
                req.ParseFromString(body)
                receiver.requests.append(req)
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                receiver.paths.append(self.path)
                out = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    """A frozen snapshot of a simulated 2-GPU node with an XID, clock events and an NVML error."""
    backend = SimBackend(sim_fleet("H100", 2))
    sampler = Sampler(backend, xid_timeout=0.01, gpm_interval=0.01)
    sampler.start_backend()
    backend.inject("power", NvmlError, gpu=1, times=1)
    sampler.sample_fast()
    sampler.sample_slow()
    backend.emit_xid(0, 48)
    sampler.poll_xids()
    snapshot = sampler.snapshot()
    sampler.stop()
    return snapshot


def received(req: ExportMetricsServiceRequest) -> tuple[dict[Key, float], dict[str, tuple[str, str]],
                                                         dict[str, str]]:
    """(name, sorted attributes) -> value; name -> (kind, unit); resource attributes."""
    values: dict[Key, float] = {}
    kinds: dict[str, tuple[str, str]] = {}
    resource: dict[str, str] = {}
    for rm in req.resource_metrics:
        resource.update({a.key: a.value.string_value for a in rm.resource.attributes})
        for sm in rm.scope_metrics:
            assert sm.scope.name == "gpufleet.exporters"
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                kinds[m.name] = (kind, m.unit)
                data = m.sum if kind == "sum" else m.gauge
                if kind == "sum":
                    assert m.sum.is_monotonic
                for dp in data.data_points:
                    attrs = tuple(sorted((a.key, a.value.string_value) for a in dp.attributes))
                    v = dp.as_double if dp.WhichOneof("value") == "as_double" else float(dp.as_int)
                    assert (m.name, attrs) not in values, f"duplicate point {m.name} {attrs}"
                    values[(m.name, attrs)] = v
    return values, kinds, resource


def expected(snap: Snapshot) -> dict[Key, float]:
    return {(name, tuple(sorted(attrs.items()))): v for name, rows in points(snap, "node-7").items()
            for attrs, v in rows}


def test_points_cover_every_series_of_the_snapshot(snap: Snapshot) -> None:
    pts = points(snap, "node-7")
    for st in snap.gpus:
        ident = {"gpu": str(st.identity.gpu_index), "gpu_uuid": st.identity.uuid,
                 "pci_bus_id": st.identity.pci_bus_id, "device": f"nvidia{st.identity.minor}",
                 "gpu_model": st.identity.name, "node": "node-7"}
        for s in (*st.fast, *st.slow):
            assert ({**ident, **dict(s.labels)}, s.value) in pts[s.name]
        assert (ident, 1.0) in pts["gpufleet_gpu_up"]
    g0 = snap.gpus[0].identity
    xid_rows = pts["gpufleet_gpu_xid_errors_total"]
    assert [(a["gpu_uuid"], a["xid"], a["severity"], v) for a, v in xid_rows] == [(g0.uuid, "48", "critical", 1.0)]
    assert ({"gpu": "0", "gpu_uuid": g0.uuid, "pci_bus_id": g0.pci_bus_id, "device": f"nvidia{g0.minor}",
             "gpu_model": g0.name, "node": "node-7"}, 48.0) in pts["gpufleet_gpu_last_xid"]
    assert pts["gpufleet_exporter_nvml_errors_total"] == [({"field": "power", "error": "unknown", "node": "node-7"},
                                                           1.0)]
    assert len(pts["gpufleet_gpu_clock_events_total"]) == 16  # 8 reasons x 2 GPUs
    assert set(pts) <= set(EXPORTED)


def test_lost_gpu_keeps_identity_with_up_zero(snap: Snapshot) -> None:
    from dataclasses import replace

    lost = replace(snap, gpus=[replace(snap.gpus[0], up=False), snap.gpus[1]])
    pts = points(lost, "n")
    ups = {a["gpu_uuid"]: v for a, v in pts["gpufleet_gpu_up"]}
    assert ups == {snap.gpus[0].identity.uuid: 0.0, snap.gpus[1].identity.uuid: 1.0}
    assert all(a["gpu_uuid"] != snap.gpus[0].identity.uuid for a, _ in pts["gpufleet_gpu_utilization_ratio"])
    assert len(pts["gpufleet_gpu_utilization_ratio"]) == 1


@pytest.mark.parametrize(("name", "unit"), [
    ("gpufleet_gpu_power_watts", "W"),
    ("gpufleet_gpu_energy_joules_total", "J"),
    ("gpufleet_gpu_memory_used_bytes", "By"),
    ("gpufleet_gpu_pcie_transmit_bytes_per_second", "By/s"),
    ("gpufleet_gpu_sm_clock_hertz", "Hz"),
    ("gpufleet_gpu_temperature_celsius", "Cel"),
    ("gpufleet_gpu_clock_violation_seconds_total", "s"),
    ("gpufleet_gpu_utilization_ratio", "1"),
    ("gpufleet_gpu_pcie_replays_total", ""),
    ("gpufleet_gpu_up", ""),
])
def test_units(name: str, unit: str) -> None:
    assert unit_of(name) == unit


@pytest.mark.parametrize(("endpoint", "url"), [
    ("http://collector:4318", "http://collector:4318/v1/metrics"),
    ("http://collector:4318/", "http://collector:4318/v1/metrics"),
    ("https://otlp.example:443/otlp/v1/metrics", "https://otlp.example:443/otlp/v1/metrics"),
])
def test_metrics_url(endpoint: str, url: str) -> None:
    assert metrics_url(endpoint) == url


@pytest.mark.parametrize("endpoint", ["collector:4318", "grpc://collector:4317", "http://"])
def test_bad_endpoint_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="OTLP endpoint"):
        start_otlp(lambda: Snapshot([]), endpoint, 10)


def test_push_equals_snapshot(receiver: Receiver, snap: Snapshot) -> None:
    handle = start_otlp(lambda: snap, receiver.url, 3600, headers={"x-tenant": "gpu-team"}, hostname="node-7")
    assert handle.endpoint == receiver.url + "/v1/metrics"
    handle.shutdown()  # the final collection is exported before the reader stops
    assert len(receiver.requests) == 1
    assert handle.exports == {"ok": 1, "failed": 0}
    assert receiver.paths == ["/v1/metrics"]
    assert receiver.headers[0]["x-tenant"] == "gpu-team"
    assert receiver.headers[0]["content-type"] == "application/x-protobuf"
    values, kinds, resource = received(receiver.requests[0])
    assert values == expected(snap)
    assert resource["service.name"] == "gpufleet-exporter"
    assert resource["host.name"] == "node-7"
    for name, (kind, unit) in kinds.items():
        assert kind == ("sum" if ALL_GPU_METRICS[name].type == "counter" else "gauge"), name
        assert unit == unit_of(name)
    assert kinds["gpufleet_gpu_power_watts"] == ("gauge", "W")
    assert kinds["gpufleet_gpu_energy_joules_total"] == ("sum", "J")
    assert len(values) > 40


def test_periodic_push_follows_the_latest_snapshot(receiver: Receiver, snap: Snapshot) -> None:
    from dataclasses import replace

    current = [snap]
    handle = start_otlp(lambda: current[0], receiver.url, 3600, hostname="node-7")
    assert handle.force_flush()
    first, _, _ = received(receiver.requests[-1])
    assert first == expected(snap)
    gpu0 = snap.gpus[0]
    moved = replace(snap, gpus=[replace(gpu0, fast=tuple(s._replace(value=123.0) if s.name == "gpufleet_gpu_power_watts"
                                                         else s for s in gpu0.fast)), snap.gpus[1]])
    current[0] = moved
    assert handle.force_flush()
    handle.shutdown()
    second, _, _ = received(receiver.requests[1])
    power = {a: v for (n, a), v in second.items() if n == "gpufleet_gpu_power_watts"}
    assert power[tuple(sorted({"gpu": "0", "gpu_uuid": gpu0.identity.uuid, "pci_bus_id": gpu0.identity.pci_bus_id,
                               "device": f"nvidia{gpu0.identity.minor}", "gpu_model": gpu0.identity.name,
                               "node": "node-7"}.items()))] == 123.0
    assert second == expected(moved)


def test_failing_snapshot_skips_points_not_the_reader(receiver: Receiver) -> None:
    def broken() -> Snapshot:
        raise RuntimeError("sampler gone")

    handle = start_otlp(broken, receiver.url, 3600)
    handle.shutdown()
    points_sent = sum(len(m.gauge.data_points) + len(m.sum.data_points) for r in receiver.requests
                      for rm in r.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
    assert points_sent == 0


def test_exporter_flag_starts_and_stops_the_push(receiver: Receiver) -> None:
    from gpufleet.exporters.app import ExporterOptions, build

    exp = build(ExporterOptions(backend="sim", listen="127.0.0.1:0", sim_gpus=2, hostname="node-9",
                                pod_resources_socket="", otlp_endpoint=receiver.url, otlp_interval=3600))
    exp.start()
    exp.stop()  # the last push happens on the way out
    assert len(receiver.requests) == 1
    values, kinds, resource = received(receiver.requests[0])
    assert resource["host.name"] == "node-9"
    ups = {dict(attrs)["gpu"]: v for (name, attrs), v in values.items() if name == "gpufleet_gpu_up"}
    assert ups == {"0": 1.0, "1": 1.0}
    assert all(dict(attrs).get("node") == "node-9" for _, attrs in values)
    assert kinds["gpufleet_gpu_utilization_ratio"] == ("gauge", "1")


def test_unreachable_collector_is_reported_not_raised(snap: Snapshot) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handle = start_otlp(lambda: snap, f"http://127.0.0.1:{port}", 3600, timeout_s=0.5)
    handle.force_flush(timeout_s=2.0)
    handle.shutdown(timeout_s=1.0)
    assert handle.exports["ok"] == 0
    assert handle.exports["failed"] >= 1
