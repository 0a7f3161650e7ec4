"""End to end: the exporter on the simulated backend, real Prometheus and Alertmanager on loopback, a webhook.

A GPU is lost (then reports XID 79) and another reports XID 48; the GPU rules fire in Prometheus, reach Alertmanager, route by
the example config and arrive at a webhook receiver. XID 79 on the lost GPU is inhibited by GpuLost.
``for:`` holds are shortened to 2 s so the test stays bounded; the expressions are the shipped ones.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpufleet.exporters.collector import GpuCollector
from gpufleet.exporters.sampler import Sampler
from gpufleet.exporters.server import ExporterServer
from gpufleet.exporters.sim import SimBackend

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


class _Webhook:
    """A loopback HTTP server that keeps every Alertmanager webhook payload it receives."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.payloads.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def alerts(self) -> list[tuple[str, str, dict[str, str]]]:
        return [(p["path"], a["status"], a["labels"]) for p in self.payloads for a in p["alerts"]]


@pytest.fixture()
def exporter() -> Iterator[tuple[SimBackend, str]]:
    backend = SimBackend()
    sampler = Sampler(backend, fast_interval=0.2, slow_interval=0.5)
    sampler.start()
    server = ExporterServer(GpuCollector(sampler.snapshot, hostname="n1", dialects=("native",), backend_name="sim"),
                            host="127.0.0.1", port=0)
    server.start()
    yield backend, server.url
    server.stop()
    sampler.stop()


def _wait(cond: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what}")


def test_lost_gpu_and_critical_xid_reach_the_webhook(tmp_path: Path, exporter: tuple[SimBackend, str],
                                                       start_alertmanager: Any, http_json: Any,
                                                       free_tcp_port: int) -> None:
    backend, exporter_url = exporter
    hook = _Webhook()
    am_cfg = yaml.safe_load((ROOT / "alerts/alertmanager/alertmanager.yml").read_text())
    am_cfg["route"].update(group_wait="1s", group_interval="1s")
    for route in am_cfg["route"]["routes"]:
        route.pop("group_wait", None)
    text = yaml.safe_dump(am_cfg).replace("http://127.0.0.1:9099", hook.url)

    rules = yaml.safe_load((ROOT / "alerts/rules/gpu-health.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "2s"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))

    with start_alertmanager(tmp_path, text) as am_url:
        port = free_tcp_port
        prom_cfg = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yaml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_url.removeprefix("http://")]}]}]},
            "scrape_configs": [{"job_name": "gpufleet-exporter",
                                "static_configs": [{"targets": [exporter_url.removeprefix("http://")]}]}],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_cfg))
        prom = subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            prom_url = f"http://127.0.0.1:{port}"

            def healthy_scrape() -> bool:
                try:
                    res = http_json(prom_url + "/api/v1/query?query=sum(gpufleet_gpu_up)")["data"]["result"]
                except OSError:
                    return False
                return bool(res) and res[0]["value"][1] == "8"

            _wait(healthy_scrape, 20, "Prometheus to scrape 8 healthy GPUs")
            def arrived(*want: tuple[str, str]) -> Any:
                def check() -> list[tuple[str, str, dict[str, str]]]:
                    got = hook.alerts()
                    names = {(lab["alertname"], lab["gpu"]) for _, _, lab in got}
                    return got if set(want) <= names else []
                return check

            backend.lose(3)
            _wait(arrived(("GpuLost", "3")), 20, "GpuLost at the webhook")
            # the late XID 79 of the lost GPU, and a double-bit ECC XID on a healthy one
            backend.emit_xid(3, 79)
            backend.emit_xid(1, 48)
            got = _wait(arrived(("GpuLost", "3"), ("GpuCriticalXid", "1")), 20, "GpuCriticalXid at the webhook")
        finally:
            prom.terminate()
            prom.wait(timeout=10)

        by_name = {(lab["alertname"], lab["gpu"]): (path, status, lab) for path, status, lab in got}
        path, status, lab = by_name[("GpuLost", "3")]
        assert (path, status, lab["severity"], lab["node"]) == ("/page", "firing", "critical", "n1")
        path, status, lab = by_name[("GpuCriticalXid", "1")]
        assert (path, status, lab["xid"], lab["xid_class"]) == ("/page", "firing", "48", "hbm")
        # Alertmanager holds both, and XID 79 on the lost GPU is inhibited, not sent
        held = {(a["labels"]["alertname"], a["labels"]["gpu"]): a["status"] for a in http_json(am_url + "/api/v2/alerts")}
        assert held[("GpuLost", "3")]["state"] == "active"
        assert held[("GpuCriticalXid", "1")]["state"] == "active"
        assert held[("GpuCriticalXid", "3")]["state"] == "suppressed"
        assert held[("GpuCriticalXid", "3")]["inhibitedBy"]
        assert ("GpuCriticalXid", "3") not in by_name
