"""A real Prometheus (Debian's ``prometheus``) scrapes the exporter over TLS with basic auth on loopback."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from gpufleet.exporters.app import ExporterOptions, build
from gpufleet.exporters.sim import SimBackend, sim_fleet

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(tmp: Path) -> Path:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gpufleet-exporter")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return tmp / "tls.crt"


def query(port: int, promql: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback
        body = json.load(r)
    assert body["status"] == "success"
    return list(body["data"]["result"])


def test_prometheus_scrapes_over_tls_with_basic_auth(tmp_path: Path) -> None:
    ca = self_signed(tmp_path)
    hashed = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "web.yml").write_text("tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
                                      f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    backend = SimBackend(sim_fleet(gpus=2))
    exp = build(ExporterOptions(backend="sim", listen="127.0.0.1:0", hostname="node-p", pod_resources_socket="",
                                web_config_file=tmp_path / "web.yml", fast_interval=0.5, slow_interval=1.0,
                                gpm_interval=0.2), backend=backend)
    exp.start()
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: gpu
    scheme: https
    tls_config: {{ca_file: {ca}}}
    basic_auth: {{username: prometheus, password: scrape-pass}}
    static_configs: [{{targets: ['127.0.0.1:{exp.server.port}']}}]
  - job_name: gpu-wrong-password
    scheme: https
    tls_config: {{ca_file: {ca}}}
    basic_auth: {{username: prometheus, password: nope}}
    static_configs: [{{targets: ['127.0.0.1:{exp.server.port}']}}]
""")
    prom = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        backend.emit_xid(1, 48)
        ups: list[dict[str, object]] = []
        for _ in range(300):
            try:
                ups = query(prom_port, "gpufleet_gpu_up")
                xid = query(prom_port, 'gpufleet_gpu_xid_errors_total{severity="critical"}')
                jobs = query(prom_port, "up")
                if len(ups) == 2 and xid and len(jobs) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert sorted((r["metric"]["gpu"], r["value"][1]) for r in ups) == [("0", "1"), ("1", "1")]  # type: ignore[index]
        assert all(r["metric"]["node"] == "node-p" for r in ups)  # type: ignore[index]
        assert [(r["metric"]["gpu"], r["metric"]["xid"]) for r in xid] == [("1", "48")]  # type: ignore[index]
        targets = {r["metric"]["job"]: r["value"][1] for r in query(prom_port, "up")}  # type: ignore[index]
        assert targets == {"gpu": "1", "gpu-wrong-password": "0"}
        # The dcgm-exporter names arrive too, in their units (MiB of framebuffer).
        fb = query(prom_port, 'DCGM_FI_DEV_FB_USED{gpu="0"} * 1048576 - on() gpufleet_gpu_memory_used_bytes'
                              '{gpu="0", mig_instance=""}')
        assert fb and abs(float(fb[0]["value"][1])) < 1.0  # type: ignore[index]
    finally:
        prom.terminate()
        prom.wait(20)
        exp.stop()
