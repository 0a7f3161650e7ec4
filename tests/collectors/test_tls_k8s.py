"""TLS to targets (a self-signed CA made in the test) and Kubernetes pod discovery against a fake API server."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gpufleet.collectors.config import load_config
from gpufleet.collectors.scrape import ScrapeEngine, TargetState
from gpufleet.core.store import StoreWriter, open_readonly

BODY = b'# TYPE gpu_temp_celsius gauge\ngpu_temp_celsius{gpu="0"} 41\n'


def _cert(subject: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, ca: bool,
          ip: str | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer[0].subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                      content_commitment=False, key_encipherment=False,
                                                      data_encipherment=False, key_agreement=False,
                                                      encipher_only=False, decipher_only=False), critical=True)
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    crt, pem = path.with_suffix(".crt"), path.with_suffix(".key")
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


@pytest.fixture()
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = _cert("gpufleet test CA", None, ca=True)
    server = _cert("127.0.0.1", ca, ca=False, ip="127.0.0.1")
    client = _cert("collector", ca, ca=False)
    ca_crt, _ = _write(tmp_path / "ca", *ca)
    srv_crt, srv_key = _write(tmp_path / "server", *server)
    cli_crt, cli_key = _write(tmp_path / "client", *client)
    return {"ca": ca_crt, "server_crt": srv_crt, "server_key": srv_key, "client_crt": cli_crt, "client_key": cli_key}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        """Quiet."""


def _https(pki: dict[str, Path], *, client_cert: bool) -> ThreadingHTTPServer:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server_crt"], pki["server_key"])
    if client_cert:
        ctx.load_verify_locations(pki["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _scrape_once(config: Path) -> TargetState:
    cfg = load_config(config)
    writer = StoreWriter(cfg.store)
    engine = ScrapeEngine(cfg, writer)

    async def go() -> TargetState:
        (spec,) = engine.discover()
        state = TargetState(spec, *cfg.timing(cfg.jobs[0]))
        engine._queue.append(await engine.scrape(state))
        await engine.flush()
        for c in engine._clients.values():
            await c.aclose()
        return state

    try:
        return asyncio.run(go())
    finally:
        writer.close()


def _config(tmp_path: Path, port: int, tls: str) -> Path:
    cfg = tmp_path / "collect.yaml"
    cfg.write_text(f"store: fleet.duckdb\ndefaults: {{interval: 2s, timeout: 2s}}\njobs:\n  - name: gpu\n"
                   f"    scheme: https\n    static: [{{targets: ['127.0.0.1:{port}']}}]\n{tls}")
    return cfg


@pytest.mark.parametrize(("tls", "client_cert", "up", "error"), [
    ("    tls: {ca_file: ca.crt}\n", False, True, ""),  # relative to the config file
    ("", False, False, "CERTIFICATE_VERIFY_FAILED"),  # the system CAs do not know the test CA
    ("    tls: {insecure_skip_verify: true}\n", False, True, ""),
    ("    tls: {ca_file: ca.crt, cert_file: client.crt, key_file: client.key}\n", True, True, ""),
    # the server wants a client certificate: refused at the handshake or the first read, depending on timing
    ("    tls: {ca_file: ca.crt}\n", True, False, "Error: "),
])
def test_tls_to_target(tmp_path: Path, pki: dict[str, Path], tls: str, client_cert: bool, up: bool,
                       error: str) -> None:
    srv = _https(pki, client_cert=client_cert)
    try:
        state = _scrape_once(_config(tmp_path, srv.server_address[1], tls))
    finally:
        srv.shutdown()
    assert state.up is up
    assert error in state.last_error
    assert not state.last_error.endswith(": ")  # a failure always says why
    if up:
        con = open_readonly(tmp_path / "fleet.duckdb")
        rows = con.execute("SELECT g.value FROM gauges g JOIN series s USING (series_id) "
                           "WHERE s.metric = 'gpu_temp_celsius'").fetchall()
        con.close()
        assert rows == [(41.0,)]


def test_collect_refuses_a_missing_ca_file_at_start(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 1, "    tls: {ca_file: nowhere.crt}\n")
    proc = subprocess.run(["gpufleet", "collect", "--config", str(cfg), "--duration", "1"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "job gpu: tls: cannot load" in proc.stderr and "nowhere.crt" in proc.stderr


# -- Kubernetes pod discovery ----------------------------------------------------------------------------------


def _pod(name: str, ns: str, ip: str | None, annotations: dict[str, str], *, phase: str = "Running",
         ports: list[int] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "annotations": annotations, "labels": labels or {}},
        "spec": {"nodeName": "gpu-node-1",
                 "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": p} for p in ports or []]}]},
        "status": {"phase": phase, "podIP": ip},
    }


PODS = [
    _pod("vllm-0", "serving", "10.0.0.5", {"prometheus.io/scrape": "true", "prometheus.io/port": "8000"},
         labels={"app": "vllm", "team": "search"}),
    _pod("exporter-abc", "gpu", "10.0.0.6", {"prometheus.io/scrape": "true", "prometheus.io/path": "/gpu/metrics",
                                              "prometheus.io/scheme": "https"}, ports=[9400]),
    _pod("no-annotation", "serving", "10.0.0.7", {}),
    _pod("opted-out", "serving", "10.0.0.8", {"prometheus.io/scrape": "false", "prometheus.io/port": "8000"}),
    _pod("pending", "serving", None, {"prometheus.io/scrape": "true", "prometheus.io/port": "8000"},
         phase="Pending"),
    _pod("no-port", "serving", "10.0.0.9", {"prometheus.io/scrape": "true"}),
]


class _FakeApi(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        type(self).requests.append(path)
        if path == "/api/v1/pods":
            items = PODS
        elif path.startswith("/api/v1/namespaces/") and path.endswith("/pods"):
            ns = path.split("/")[4]
            items = [p for p in PODS if p["metadata"]["namespace"] == ns]
        else:
            self.send_error(404)
            return
        body = json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture()
def fake_api(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    handler = type("Api", (_FakeApi,), {"requests": []})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{srv.server_address[1]}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "test", "context": {"cluster": "fake", "user": "u"}}],
    }))
    yield kubeconfig, handler.requests
    srv.shutdown()


@pytest.mark.parametrize(("namespaces", "paths", "expected"), [
    ([], ["/api/v1/pods"], {"http://10.0.0.5:8000/metrics", "https://10.0.0.6:9400/gpu/metrics"}),
    (["serving"], ["/api/v1/namespaces/serving/pods"], {"http://10.0.0.5:8000/metrics"}),
])
def test_kubernetes_discovery_by_annotation(tmp_path: Path, fake_api: tuple[Path, list[str]],
                                            namespaces: list[str], paths: list[str], expected: set[str]) -> None:
    kubeconfig, requests = fake_api
    cfg = tmp_path / "collect.yaml"
    cfg.write_text(f"store: fleet.duckdb\njobs:\n  - name: pods\n"
                   f"    kubernetes: {{kubeconfig: {kubeconfig.name}, namespaces: {json.dumps(namespaces)}}}\n")
    engine = ScrapeEngine(load_config(cfg), writer=None)  # type: ignore[arg-type] - discovery only
    specs = engine.discover()
    assert engine.discovery_errors == []
    assert requests == paths
    assert {s.url for s in specs} == expected
    vllm = next(s for s in specs if s.name == "10.0.0.5:8000")
    assert vllm.labels == {"job": "pods", "namespace": "serving", "pod": "vllm-0", "node": "gpu-node-1",
                           "app": "vllm", "team": "search"}
    engine.discover()  # within the refresh interval: served from the cache, no second API call
    assert requests == paths


def test_kubernetes_discovery_error_names_the_job(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("not: [a kubeconfig")
    cfg = tmp_path / "collect.yaml"
    cfg.write_text(f"store: fleet.duckdb\njobs:\n  - name: pods\n    kubernetes: {{kubeconfig: {kubeconfig}}}\n")
    engine = ScrapeEngine(load_config(cfg), writer=None)  # type: ignore[arg-type] - discovery only
    assert engine.discover() == []
    assert len(engine.discovery_errors) == 1 and "job pods: cannot reach the Kubernetes API" in \
        engine.discovery_errors[0]
