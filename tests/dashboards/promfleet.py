"""A loopback HTTP server serving a simulated fleet: each node through the real exporter (native names, pods
attributed from the fleet's allocations) and each inference engine's own exposition, time accelerated."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from gpufleet.core.simfleet import FleetConfig, SimulatedFleet
from gpufleet.core.simfleet.topology import Workload
from gpufleet.exporters.collector import GpuCollector, PodRef
from gpufleet.exporters.sampler import Sampler
from gpufleet.exporters.sim import SimBackend

SPEED = 60.0  # simulated seconds per wall second


class FleetServer:
    """``/metrics?target=NAME`` answers with what target NAME of the simulated fleet serves now."""

    def __init__(self, cfg: FleetConfig) -> None:
        self.fleet = SimulatedFleet(cfg)
        self.lock = threading.Lock()
        t0 = self.fleet.cfg.start + 14 * 3600
        wall0 = time.monotonic()
        self.clock = lambda: t0 + SPEED * (time.monotonic() - wall0)
        self.samplers: dict[str, tuple[Sampler, GpuCollector]] = {}
        for i, node in enumerate(self.fleet.topo.nodes):
            backend = SimBackend(self.fleet, i, clock=self.clock, start=t0, step_s=1.0)
            # no wall-clock GPM window: a scrape samples under the server's lock, and a one-second wait per node
            # there queued the other scrapes past Prometheus' timeout on a loaded machine
            sampler = Sampler(backend, xid_timeout=0.0, gpm_interval=0.0)
            sampler.start_backend()
            collector = GpuCollector(sampler.snapshot, hostname=node.name, dialects=("native",),
                                     attribution=self._attribution)
            self.samplers[node.name] = (sampler, collector)
        first = self.samplers[self.fleet.topo.nodes[0].name][0]
        first.sample_fast()
        backend = first.backend
        assert isinstance(backend, SimBackend)
        backend.emit_xid(0, 79)
        self.targets = {t.name: t for t in self.fleet.targets()}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _attribution(self) -> dict[str, list[PodRef]]:
        out: dict[str, list[PodRef]] = {}
        for (uuid, _inst), (w, pod) in self.fleet.holders.items():
            container = w.kind if w.kind != "inference" else (w.engine or "server")
            out.setdefault(uuid, []).append(PodRef(w.namespace, pod, container))
        return out

    def holders(self) -> list[tuple[Workload, str]]:
        """The (workload, pod) holding each allocated GPU now."""
        with self.lock:
            return list(self.fleet.holders.values())

    def render(self, name: str) -> str:
        with self.lock:
            target = self.targets[name]
            node = name.rsplit(":", 1)[0] if target.kind == "node" else self.fleet.topo.nodes[0].name
            sampler, collector = self.samplers[node]
            if target.kind != "node":
                sampler.sample_fast()  # moves the fleet on
                return self.fleet.render(target)
            sampler.sample_fast()
            sampler.sample_slow()
            sampler.poll_xids()
            return collector.render_text(("native",)).decode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                name = parse_qs(urlparse(self.path).query).get("target", [""])[0]
                if name not in outer.targets:
                    self.send_error(404, f"no target {name}")
                    return
                body = outer.render(name).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except BrokenPipeError:  # Prometheus gave up on a slow scrape
                    return

            def log_message(self, *args: object) -> None:
                return

        return Handler

    def scrape_configs(self) -> str:
        """Prometheus scrape_configs: one job per target kind, target labels as the collector would set."""
        lines = ["scrape_configs:"]
        for kind in ("node", "engine"):
            lines += [f"  - job_name: sim-{kind}", "    metrics_path: /metrics", "    static_configs:"]
            for t in self.targets.values():
                if t.kind != kind:
                    continue
                labels = {**t.labels, "__param_target": t.name, "instance": t.name}
                body = ", ".join(f'{k}: "{v}"' for k, v in labels.items())
                lines += [f"      - targets: ['127.0.0.1:{self.port}']", f"        labels: {{{body}}}"]
        return "\n".join(lines) + "\n"

    def __enter__(self) -> FleetServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
