"""OTLP push of the exporter's measurements through opentelemetry-sdk (needs ``gpufleet[otel]``).

The same series as ``/metrics`` in the native dialect: ``gpufleet_gpu_*`` names in base units with
the GPU identity (``gpu``, ``gpu_uuid``, ``pci_bus_id``, ``device``, ``gpu_model``, ``node``) as
attributes. Observable gauges and counters read the sampler's latest snapshot when the SDK's
periodic reader collects; nothing is sampled twice. :func:`points` is the pure mapping;
:func:`start_otlp` wires it to an OTLP/HTTP (protobuf) exporter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from gpufleet import __version__
from gpufleet.core.naming import xid_info
from gpufleet.exporters.metrics import ALL_GPU_METRICS
from gpufleet.exporters.snapshot import Snapshot

__all__ = ["OtlpHandle", "EXPORTED", "points", "unit_of", "metrics_url", "start_otlp"]

Attrs = dict[str, str]
Points = dict[str, list[tuple[Attrs, float]]]

# Per-scrape reports about the HTTP side (scrape duration, pod-resources errors, build info) and the
# allocation rows stay on /metrics; everything measured on the GPUs, and the sampler's own errors, is pushed.
EXPORTED: tuple[str, ...] = tuple(n for n in ALL_GPU_METRICS if n.startswith("gpufleet_gpu_")
                                  and n != "gpufleet_gpu_pod_allocation") + (
    "gpufleet_exporter_nvml_errors_total", "gpufleet_exporter_nvml_reinits_total",
    "gpufleet_exporter_sample_duration_seconds")

_UNITS: tuple[tuple[str, str], ...] = (
    ("_bytes_per_second", "By/s"), ("_bytes", "By"), ("_hertz", "Hz"), ("_watts", "W"), ("_joules", "J"),
    ("_celsius", "Cel"), ("_seconds", "s"), ("_ratio", "1"),
)


def unit_of(name: str) -> str:
    """The UCUM unit a native name's suffix states (``""`` for plain counts and states)."""
    base = name.removesuffix("_total")
    return next((unit for suffix, unit in _UNITS if base.endswith(suffix)), "")


def points(snap: Snapshot, hostname: str) -> Points:
    """Every exported value of ``snap``: name -> [(attributes, value)], in native names and base units."""
    out: Points = {}

    def add(name: str, attrs: Attrs, value: float) -> None:
        out.setdefault(name, []).append((attrs, float(value)))

    identity: dict[str, Attrs] = {}
    for st in snap.gpus:
        ident = st.identity
        base = identity[ident.uuid] = {
            "gpu": str(ident.gpu_index), "gpu_uuid": ident.uuid, "pci_bus_id": ident.pci_bus_id,
            "device": f"nvidia{ident.minor}", "gpu_model": ident.name, "node": hostname}
        add("gpufleet_gpu_up", base, 1.0 if st.up else 0.0)
        if not st.up:
            continue
        for s in (*st.fast, *st.slow):
            add(s.name, {**base, **dict(s.labels)}, s.value)
        add("gpufleet_gpu_last_xid", base, snap.last_xid.get(ident.uuid, 0.0))
        for reason, n in snap.clock_events.get(ident.uuid, {}).items():
            add("gpufleet_gpu_clock_events_total", {**base, "clock_event": reason}, n)
    for uuid, per in snap.xids.items():
        if uuid in identity:
            for xid, n in sorted(per.items()):
                add("gpufleet_gpu_xid_errors_total",
                    {**identity[uuid], "xid": str(xid), "severity": xid_info(xid).severity}, n)
    for (field, kind), n in sorted(snap.errors.items()):
        add("gpufleet_exporter_nvml_errors_total", {"field": field, "error": kind, "node": hostname}, n)
    add("gpufleet_exporter_nvml_reinits_total", {"node": hostname}, snap.reinits)
    for loop, v in sorted(snap.durations.items()):
        add("gpufleet_exporter_sample_duration_seconds", {"loop": loop, "node": hostname}, v)
    return out


def metrics_url(endpoint: str) -> str:
    """The OTLP/HTTP metrics URL: a bare ``http(s)://host:port`` gets the standard ``/v1/metrics`` path."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"OTLP endpoint {endpoint!r}: expected http(s)://HOST:PORT[/PATH], e.g. "
                         f"http://otel-collector:4318")
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/metrics"
    return endpoint


class _Latest:
    """The snapshot's points, computed once per collection pass.

    The SDK observes instruments in the order they were created, so the first instrument's callback
    starts a pass and takes a fresh snapshot; the others of the pass reuse it.
    """

    def __init__(self, getter: Callable[[], Snapshot], hostname: str, first: str) -> None:
        self.getter = getter
        self.hostname = hostname
        self.first = first
        self._points: Points | None = None
        self._lock = threading.Lock()

    def get(self, name: str) -> list[tuple[Attrs, float]]:
        with self._lock:
            if name == self.first or self._points is None:
                try:
                    self._points = points(self.getter(), self.hostname)
                except Exception:  # noqa: BLE001 - a bad snapshot skips one push, never kills the reader
                    self._points = {}
            return self._points.get(name, [])


class OtlpHandle:
    """A running OTLP push; ``shutdown()`` sends a last export and stops the reader thread.

    ``exports`` counts finished export calls by outcome (``ok``, ``failed``).
    """

    def __init__(self, provider: Any, endpoint: str, exports: dict[str, int] | None = None) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.exports = exports if exports is not None else {"ok": 0, "failed": 0}

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Collect and export now."""
        return bool(self.provider.force_flush(timeout_millis=int(timeout_s * 1000)))

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Export once more and stop."""
        self.provider.shutdown(timeout_millis=int(timeout_s * 1000))


def start_otlp(snapshot_getter: Callable[[], Snapshot], endpoint: str, interval_s: float,
               headers: Mapping[str, str] | None = None, *, hostname: str = "", timeout_s: float = 5.0,
               resource_attributes: Mapping[str, str] | None = None) -> OtlpHandle:
    """Push the snapshot's measurements to ``endpoint`` (OTLP/HTTP protobuf) every ``interval_s`` seconds.

    Raises ``ValueError`` for a malformed endpoint or interval; a down collector is retried by the SDK
    and never affects sampling or ``/metrics``.
    """
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    url = metrics_url(endpoint)
    if not 0 < interval_s <= 86400:
        raise ValueError(f"OTLP interval {interval_s}: use a number of seconds above 0")
    attrs: dict[str, str] = {"service.name": "gpufleet-exporter", "service.version": __version__}
    if hostname:
        attrs["host.name"] = hostname
    attrs.update(resource_attributes or {})
    exports = {"ok": 0, "failed": 0}

    class _CountingExporter(OTLPMetricExporter):
        def export(self, metrics_data: Any, timeout_millis: float | None = 10_000, **kwargs: Any) -> MetricExportResult:
            result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            exports["ok" if result is MetricExportResult.SUCCESS else "failed"] += 1
            return result

    # the SDK merges OTEL_EXPORTER_OTLP_HEADERS under these and reads the temporality preference itself
    exporter = _CountingExporter(endpoint=url, headers=dict(headers) if headers else None, timeout=timeout_s)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval_s * 1000,
                                           export_timeout_millis=timeout_s * 1000)
    provider = MeterProvider(resource=Resource.create(attrs), metric_readers=[reader])
    meter = provider.get_meter("gpufleet.exporters", __version__)
    latest = _Latest(snapshot_getter, hostname, first=EXPORTED[0])

    def callback(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(v, a) for a, v in latest.get(name)]

        return observe

    for name in EXPORTED:
        m = ALL_GPU_METRICS[name]
        create = meter.create_observable_counter if m.type == "counter" else meter.create_observable_gauge
        create(name, callbacks=[callback(name)], unit=unit_of(name), description=m.help)
    return OtlpHandle(provider, url, exports)
