"""The simulated fleet of the dashboards' ``FleetServer``, each target on its own loopback port (the collector
names a target by host:port), node targets with their ``gpufleet_node_info`` facts."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gpufleet.core.simfleet import FleetConfig
from gpufleet.core.simfleet.render import label_str
from gpufleet.exporters.sim import SimBackend

from ..dashboards.promfleet import FleetServer  # noqa: TID252 - the shared test fleet


class PortFleet:
    """``targets``: sim target name -> (loopback host:port, target labels).

    Every target answers 503 until :meth:`open` and after :meth:`close`, so two scrapers started at
    different moments hold samples of the same span.
    """

    def __init__(self, cfg: FleetConfig) -> None:
        self.fleet = FleetServer(cfg)
        self.fleet.server.server_close()  # its one-port server is not used
        for sampler, _collector in self.fleet.samplers.values():
            sampler.gpm_interval = 0.01  # GPM's two samples 10 ms apart, so a node answers within a 1 s scrape
        self.serving = threading.Event()
        self.servers: dict[str, ThreadingHTTPServer] = {}
        for name in self.fleet.targets:
            self.servers[name] = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(name))
        self.targets = {name: (f"127.0.0.1:{srv.server_address[1]}", dict(self.fleet.targets[name].labels))
                        for name, srv in self.servers.items()}
        self.info = {n.name: self._node_info(n.name) for n in self.fleet.fleet.topo.nodes}

    def _node_info(self, node: str) -> str:
        n = next(x for x in self.fleet.fleet.topo.nodes if x.name == node)
        labels = [("gpu_count", str(len(n.gpus))), ("gpu_model", n.gpus[0].spec.name),
                  ("instance_type", n.gpus[0].spec.instance_type), ("node", n.name), ("pricing_category", n.pricing),
                  ("provider", n.provider), ("region", n.region)]
        return f"# TYPE gpufleet_node_info gauge\ngpufleet_node_info{label_str(labels)} 1\n"

    def backend(self, node_index: int) -> SimBackend:
        """The simulated GPU backend of a node (to inject faults)."""
        node = self.fleet.fleet.topo.nodes[node_index].name
        b = self.fleet.samplers[node][0].backend
        assert isinstance(b, SimBackend)
        return b

    def _handler(self, name: str) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if not outer.serving.is_set():
                    self.send_error(503, "fleet not serving")
                    return
                text = outer.fleet.render(name)
                if outer.fleet.targets[name].kind == "node":
                    text += outer.info[name.rsplit(":", 1)[0]]
                body = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except BrokenPipeError:
                    return

            def log_message(self, *args: object) -> None:
                return

        return Handler

    def open(self) -> None:
        """Targets answer from now on."""
        self.serving.set()

    def close(self) -> None:
        """Targets answer 503 from now on."""
        self.serving.clear()

    def __enter__(self) -> PortFleet:
        for srv in self.servers.values():
            threading.Thread(target=srv.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for srv in self.servers.values():
            srv.shutdown()
            srv.server_close()
