"""The exporter over HTTP on loopback: negotiation, dialects, health, no 500s, TLS and basic auth from a web config."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import http.client
import ipaddress
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from gpufleet.collectors.exposition import parse
from gpufleet.exporters import errors as nv_errors
from gpufleet.exporters.app import Exporter, ExporterConfigError, ExporterOptions, build, parse_listen
from gpufleet.exporters.backend import CALLS
from gpufleet.exporters.sim import SimBackend, sim_fleet


def get(exp: Exporter, path: str, headers: dict[str, str] | None = None,
        context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    port = exp.server.port
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def opts(**kw: object) -> ExporterOptions:
    base: dict[str, object] = {"backend": "sim", "listen": "127.0.0.1:0", "hostname": "node-a",
                               "pod_resources_socket": "", "fast_interval": 0.2, "slow_interval": 0.5,
                               "gpm_interval": 0.1}
    base.update(kw)
    return ExporterOptions(**base)  # type: ignore[arg-type]


@pytest.fixture
def backend() -> SimBackend:
    return SimBackend(sim_fleet(gpus=2))


@pytest.fixture
def exporter(backend: SimBackend) -> Iterator[Exporter]:
    exp = build(opts(), backend=backend)
    exp.start()
    try:
        yield exp
    finally:
        exp.stop()


def test_text_and_openmetrics_by_content_negotiation(exporter: Exporter) -> None:
    status, headers, body = get(exporter, "/metrics")
    assert status == 200 and headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = parse(body.decode())
    assert not text.openmetrics and text.errors == []
    ups = [s.value for s in text.samples if s.name == "gpufleet_gpu_up"]
    assert ups == [1.0, 1.0]
    status, headers, body = get(exporter, "/metrics",
                                {"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"})
    assert status == 200 and headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    om = parse(body.decode())
    assert om.openmetrics and om.errors == [] and body.endswith(b"# EOF\n")
    assert {s.name for s in om.samples} >= {"gpufleet_gpu_power_watts", "DCGM_FI_DEV_POWER_USAGE"}


def test_dialect_query_gzip_and_other_paths(exporter: Exporter) -> None:
    status, _, body = get(exporter, "/metrics?dialect=dcgm")
    names = {s.name for s in parse(body.decode()).samples}
    assert status == 200 and "DCGM_FI_DEV_GPU_TEMP" in names and "gpufleet_gpu_temperature_celsius" not in names
    status, _, body = get(exporter, "/metrics?dialect=graphite")
    assert status == 400 and b"dialect must be" in body
    status, headers, body = get(exporter, "/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert b"gpufleet_gpu_up{" in gzip.decompress(body)
    assert get(exporter, "/nope")[0] == 404
    status, _, body = get(exporter, "/")
    assert status == 200 and b"/metrics" in body


def test_healthz_reflects_nvml_and_sampling(exporter: Exporter, backend: SimBackend) -> None:
    status, headers, body = get(exporter, "/healthz")
    health = json.loads(body)
    assert status == 200 and headers["content-type"] == "application/json"
    assert health["status"] == "ok" and health["nvml"] == "usable" and health["gpus_up"] == 2
    assert health["driver_version"] == "580.159.04-sim" and 0 <= health["last_sample_age_seconds"] < 8
    backend.unload_driver()
    exporter.sampler.sample_fast()
    exporter.sampler.sample_fast()  # the second pass tries to re-initialise and cannot
    status, _, body = get(exporter, "/healthz")
    assert status == 503 and json.loads(body)["status"] == "unhealthy"
    # /metrics still answers, with the GPUs down and the failures counted.
    status, _, body = get(exporter, "/metrics")
    samples = parse(body.decode()).samples
    assert status == 200
    assert [s.value for s in samples if s.name == "gpufleet_gpu_up"] == [0.0, 0.0]
    errors = {dict(s.labels)["field"] for s in samples if s.name == "gpufleet_exporter_nvml_errors_total"}
    assert "init" in errors


@pytest.mark.parametrize("error", [nv_errors.Unknown, nv_errors.GpuIsLost, nv_errors.Timeout])
def test_never_a_500_for_device_problems(backend: SimBackend, error: type[nv_errors.NvmlError]) -> None:
    exp = build(opts(), backend=backend)
    exp.start()
    try:
        for call in CALLS:
            backend.inject(call, error)
        exp.sampler.sample_fast()
        exp.sampler.sample_slow()
        for accept in ("", "application/openmetrics-text"):
            status, _, body = get(exp, "/metrics", {"Accept": accept})
            assert status == 200
            result = parse(body.decode())
            assert result.errors == []
            assert any(s.name == "gpufleet_exporter_nvml_errors_total" for s in result.samples)
    finally:
        exp.stop()


def test_processes_opt_in_through_options() -> None:
    exp = build(opts(process_memory=True, max_processes=1))
    assert exp.sampler.processes and exp.sampler.max_processes == 1
    exp.server.stop()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "tls.crt", tmp / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_and_basic_auth_from_web_config(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    config = tmp_path / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
                      f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    exp = build(opts(web_config_file=config))
    exp.start()
    try:
        assert exp.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(cert))
        good = "Basic " + base64.b64encode(b"prometheus:s3cret").decode()
        bad = "Basic " + base64.b64encode(b"prometheus:wrong").decode()
        status, headers, _ = get(exp, "/metrics", context=ctx)
        assert status == 401 and headers["www-authenticate"].startswith("Basic")
        assert get(exp, "/metrics", {"Authorization": bad}, context=ctx)[0] == 401
        assert get(exp, "/metrics", {"Authorization": "Basic !!notbase64"}, context=ctx)[0] == 401
        status, _, body = get(exp, "/metrics", {"Authorization": good}, context=ctx)
        assert status == 200 and b"gpufleet_gpu_up{" in body
        assert get(exp, "/healthz", context=ctx)[0] == 200  # probes need no credentials
        # Plain HTTP to the TLS port does not get metrics.
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            status, _, _ = get(exp, "/metrics")
            assert status != 200
            raise ConnectionError("plain HTTP was answered, but not with metrics")
        # A client that does not trust the certificate is refused by TLS itself.
        with pytest.raises(ssl.SSLError):
            get(exp, "/metrics", context=ssl.create_default_context())
    finally:
        exp.stop()


@pytest.mark.parametrize(("content", "message"), [
    ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "tls_server_config"),
    ("basic_auth_users:\n  admin: plaintext\n", "basic_auth_users.admin"),
    ("tls_config: {}\n", "tls_config"),
    ("- a list\n", "expected a mapping"),
])
def test_bad_web_config_names_the_key(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "web.yml"
    config.write_text(content)
    with pytest.raises(ExporterConfigError, match="--web.config.file") as err:
        build(opts(web_config_file=config))
    assert message in str(err.value) and str(config) in str(err.value)


@pytest.mark.parametrize(("kw", "message"), [
    ({"listen": "9400"}, "--listen"),
    ({"listen": "example.com:9400"}, "not an IP address"),
    ({"listen": "127.0.0.1:70000"}, "--listen"),
    ({"backend": "dcgm"}, "--backend"),
    ({"dialect": "graphite"}, "--dialect"),
    ({"fast_interval": 0.0}, "--fast-interval"),
    ({"gpm_interval": 5.0, "slow_interval": 5.0}, "--gpm-interval"),
    ({"max_processes": 0}, "--max-processes"),
    ({"sim_gpus": 0}, "--sim-gpus"),
])
def test_bad_options_fail_with_the_flag_named(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ExporterConfigError, match=message):
        build(opts(**kw))


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:9400") == ("0.0.0.0", 9400)
    assert parse_listen("[::1]:9401") == ("::1", 9401)
    assert parse_listen(":9402") == ("0.0.0.0", 9402)


def test_port_in_use_is_a_clear_error(exporter: Exporter) -> None:
    with pytest.raises(ExporterConfigError, match="cannot bind"):
        build(opts(listen=f"127.0.0.1:{exporter.server.port}"))


def test_ipv6_loopback() -> None:
    exp = build(opts(listen="[::1]:0"))
    exp.start()
    try:
        assert exp.url.startswith("http://[::1]:")
        conn = http.client.HTTPConnection("::1", exp.server.port, timeout=10)
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        assert r.status == 200 and b"gpufleet_gpu_up{" in r.read()
        conn.close()
    finally:
        exp.stop()
