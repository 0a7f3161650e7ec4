"""Assembles a running exporter from options: backend, sampler, collector, HTTP server and optional parts.

``ExporterOptions`` is what the command line gives; :func:`build` checks it (a bad option raises
:class:`ExporterConfigError` naming the flag) and returns an :class:`Exporter` to ``start``/``stop``.
Optional parts (pod attribution, OTLP, probe results) are imported only when asked for.
"""

from __future__ import annotations

import contextlib
import inspect
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric

from gpufleet.exporters.backend import GpuBackend
from gpufleet.exporters.collector import DIALECTS, Attribution, GpuCollector
from gpufleet.exporters.sampler import Sampler
from gpufleet.exporters.server import ExporterServer
from gpufleet.exporters.webconfig import WebConfigError, load_web_config

__all__ = ["ExporterOptions", "Exporter", "ExporterConfigError", "build", "parse_listen",
           "DEFAULT_POD_RESOURCES_SOCKET"]

DEFAULT_POD_RESOURCES_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"


class ExporterConfigError(ValueError):
    """An option is unusable; the message names the flag and the fix."""


@dataclass
class ExporterOptions:
    """Everything ``gpufleet exporter`` takes (see the CLI help for each)."""

    backend: str = "nvml"
    listen: str = "0.0.0.0:9400"
    web_config_file: Path | None = None
    dialect: str = "both"
    hostname: str = ""
    fast_interval: float = 1.0
    slow_interval: float = 5.0
    gpm_interval: float = 1.0
    process_memory: bool = False
    max_processes: int = 16
    xid_log: Path | None = None
    pod_resources_socket: str | None = None  # None: the default socket if the pod-resources part is installed
    pod_label_allowlist: tuple[str, ...] = ()
    otlp_endpoint: str | None = None
    otlp_interval: float = 15.0
    probe_results: Path | None = None
    sim_gpus: int = 8
    sim_model: str = "H100"
    sim_mig: bool = False
    sim_seed: int = 7
    extra: list[Callable[[], Iterable[Metric]]] = field(default_factory=list)


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` (``[::1]:9400`` for IPv6) into host and port."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ExporterConfigError(f"--listen {text!r}: expected ADDR:PORT, e.g. 0.0.0.0:9400 or 127.0.0.1:9400")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - binding everywhere is the documented default
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ExporterConfigError(f"--listen {text!r}: {host!r} is not an IP address") from None
    return host, int(port_text)


def make_backend(opts: ExporterOptions) -> GpuBackend:
    """The backend named by ``--backend``."""
    if opts.backend == "nvml":
        from gpufleet.exporters.nvml import NvmlBackend

        return NvmlBackend()
    if opts.backend == "sim":
        from gpufleet.exporters.sim import SimBackend, sim_fleet

        if not 1 <= opts.sim_gpus <= 64:
            raise ExporterConfigError(f"--sim-gpus {opts.sim_gpus}: use 1 to 64")
        return SimBackend(sim_fleet(opts.sim_model, opts.sim_gpus, mig=opts.sim_mig, seed=opts.sim_seed))
    raise ExporterConfigError(f"--backend {opts.backend!r}: use nvml or sim")


def _call_with(fn: Callable[..., Any], args: tuple[Any, ...], optional: dict[str, Any]) -> Any:
    """Call ``fn(*args, **k)`` passing only the optional keywords it accepts."""
    try:
        params = dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = {}
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in optional.items() if accepts_any or k in params}
    return fn(*args, **kwargs)


class Exporter:
    """A sampler, a collector and a server, started and stopped together."""

    def __init__(self, sampler: Sampler, collector: GpuCollector, server: ExporterServer,
                 closers: list[Callable[[], object]]) -> None:
        self.sampler = sampler
        self.collector = collector
        self.server = server
        self._closers = closers

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        """Initialise the backend, take the first samples, and start serving."""
        self.sampler.start()
        self.server.start()

    def stop(self) -> None:
        """Stop serving, then the optional parts, then sampling."""
        self.server.stop()
        for close in reversed(self._closers):
            try:
                close()
            except Exception:  # noqa: BLE001, S112 - shutting down the rest matters more
                continue
        self.sampler.stop()


def build(opts: ExporterOptions, *, backend: GpuBackend | None = None) -> Exporter:
    """Check ``opts`` and wire an exporter (not yet started); ``backend`` overrides ``--backend``."""
    host, port = parse_listen(opts.listen)
    if opts.dialect not in ("both", *DIALECTS):
        raise ExporterConfigError(f"--dialect {opts.dialect!r}: use both, native or dcgm")
    for flag, value in (("--fast-interval", opts.fast_interval), ("--slow-interval", opts.slow_interval),
                        ("--gpm-interval", opts.gpm_interval), ("--otlp-interval", opts.otlp_interval)):
        if not 0 < value <= 3600:
            raise ExporterConfigError(f"{flag} {value}: use a number of seconds above 0 and at most 3600")
    if opts.gpm_interval >= opts.slow_interval:
        raise ExporterConfigError(f"--gpm-interval {opts.gpm_interval}: must be shorter than --slow-interval "
                                  f"({opts.slow_interval})")
    if opts.max_processes < 1:
        raise ExporterConfigError(f"--max-processes {opts.max_processes}: use at least 1")
    ssl_context = None
    users = None
    if opts.web_config_file is not None:
        try:
            cfg, ssl_context = load_web_config(opts.web_config_file)
        except WebConfigError as exc:
            raise ExporterConfigError(f"--web.config.file {exc}") from None
        users = cfg.basic_auth_users
    hostname = opts.hostname or socket.gethostname()
    closers: list[Callable[[], object]] = []
    backend = backend if backend is not None else make_backend(opts)
    on_xid = None
    sampler_ref: list[Sampler] = []
    if opts.xid_log is not None:
        from gpufleet.exporters.xidlog import XidLog

        def index_of(uuid: str) -> int | None:
            return next((g.identity.gpu_index for g in sampler_ref[0].gpus if g.identity.uuid == uuid), None)

        on_xid = XidLog(opts.xid_log, node=hostname, gpu_index=index_of)
    sampler = Sampler(backend, fast_interval=opts.fast_interval, slow_interval=opts.slow_interval,
                      gpm_interval=opts.gpm_interval, processes=opts.process_memory,
                      max_processes=opts.max_processes, on_xid=on_xid)
    sampler_ref.append(sampler)
    extra = list(opts.extra)
    if opts.probe_results is not None:
        from gpufleet.probes.collector import ProbeResultsSource

        extra.append(ProbeResultsSource(opts.probe_results))
    attribution: Callable[[], Attribution] | None = None
    pod_errors: Callable[[], dict[str, float]] | None = None
    watcher = _pod_watcher(opts)
    if watcher is not None:
        attribution = watcher.attribution
        pod_errors = watcher.errors
        for name in ("stop", "close"):
            if callable(getattr(watcher, name, None)):
                closers.append(getattr(watcher, name))
                break
    dialects = DIALECTS if opts.dialect == "both" else (opts.dialect,)
    collector = GpuCollector(sampler.snapshot, hostname=hostname, dialects=dialects, attribution=attribution,
                             extra=extra, backend_name=opts.backend, pod_errors=pod_errors)
    try:
        if opts.otlp_endpoint:
            closers.append(_start_otlp(opts, sampler, hostname))
        try:
            server = ExporterServer(collector, host=host, port=port, ssl_context=ssl_context, users=users,
                                    health=sampler.health)
        except OSError as exc:
            raise ExporterConfigError(f"--listen {opts.listen}: cannot bind ({exc.strerror})") from None
    except ExporterConfigError:
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                close()
        raise
    return Exporter(sampler, collector, server, closers)


def _pod_watcher(opts: ExporterOptions) -> Any:
    """The pod-resources watcher, or None when attribution is off or (by default) not installed."""
    asked = opts.pod_resources_socket is not None or bool(opts.pod_label_allowlist)
    path = DEFAULT_POD_RESOURCES_SOCKET if opts.pod_resources_socket is None else opts.pod_resources_socket
    if not path:
        return None
    try:
        from gpufleet.exporters.podresources import PodResourcesWatcher  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        if asked:
            raise ExporterConfigError(f"--pod-resources-socket {path}: pod attribution is not available in this "
                                      f"install ({exc}); install gpufleet[k8s]") from None
        return None
    try:
        watcher = _call_with(PodResourcesWatcher, (path,), {"label_allowlist": tuple(opts.pod_label_allowlist)})
    except ValueError as exc:
        raise ExporterConfigError(f"--pod-resources-socket {path}: {exc}") from None
    if callable(getattr(watcher, "start", None)):
        watcher.start()
    return watcher


def _start_otlp(opts: ExporterOptions, sampler: Sampler, hostname: str) -> Callable[[], object]:
    try:
        from gpufleet.exporters.otlp import start_otlp  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise ExporterConfigError(f"--otlp-endpoint {opts.otlp_endpoint}: OTLP export is not available in this "
                                  f"install ({exc}); install gpufleet[otel]") from None
    try:
        handle = _call_with(start_otlp, (sampler.snapshot, opts.otlp_endpoint, opts.otlp_interval),
                            {"hostname": hostname})
    except ImportError as exc:
        raise ExporterConfigError(f"--otlp-endpoint {opts.otlp_endpoint}: OTLP export needs opentelemetry ({exc}); "
                                  "install gpufleet[otel]") from None
    except ValueError as exc:
        raise ExporterConfigError(f"--otlp-endpoint {opts.otlp_endpoint}: {exc}") from None
    for name in ("shutdown", "stop", "close"):
        fn = getattr(handle, name, None)
        if callable(fn):
            return fn
    if callable(handle):
        return handle
    return lambda: None
