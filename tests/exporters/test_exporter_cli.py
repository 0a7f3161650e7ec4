"""``gpufleet exporter`` / ``python -m gpufleet.exporters``: the process, its flags, and the optional parts it mounts."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gpufleet.collectors.exposition import parse
from gpufleet.core.simfleet import FleetConfig
from gpufleet.exporters.app import ExporterConfigError, ExporterOptions, build
from gpufleet.main import main as gpufleet_main
from gpufleet.probes.prices import price_lookup
from gpufleet.probes.results import dump_results
from gpufleet.probes.simulated import simulated_run
from gpufleet.probes.verdict import judge


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def opts(**kw: object) -> ExporterOptions:
    base: dict[str, object] = {"backend": "sim", "listen": "127.0.0.1:0", "hostname": "node-a", "sim_gpus": 2,
                               "pod_resources_socket": "", "fast_interval": 0.2, "slow_interval": 0.5,
                               "gpm_interval": 0.1}
    base.update(kw)
    return ExporterOptions(**base)  # type: ignore[arg-type]


def probe_results(path: Path) -> Path:
    run = simulated_run(FleetConfig(nodes=1, seed=7))
    run.verdicts = judge(run.gpus, price_lookup())
    dump_results(run, path)
    return path


def test_the_exporter_process_serves_sim_metrics_and_probe_results(tmp_path: Path) -> None:
    port = free_port()
    results = probe_results(tmp_path / "probes.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpufleet.exporters", "--backend", "sim", "--sim-gpus", "2", "--web.listen-address",
         f"127.0.0.1:{port}", "--probe-results", str(results), "--pod-resources-socket", "", "--duration", "60",
         "--hostname", "node-x"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
            try:
                status, body = fetch(port, "/healthz")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        status, text = fetch(port, "/metrics")
        assert status == 200
        samples = parse(text).samples
        names = {s.name for s in samples}
        assert {"gpufleet_gpu_up", "DCGM_FI_DEV_GPU_UTIL", "gpufleet_probe_matmul_flops",
                "gpufleet_probe_verdict", "gpufleet_probe_results_errors_total"} <= names
        assert [s.value for s in samples if s.name == "gpufleet_probe_results_errors_total"] == [0.0]
        build_info = next(s for s in samples if s.name == "gpufleet_exporter_build_info")
        assert dict(build_info.labels)["node"] == "node-x" and dict(build_info.labels)["backend"] == "sim"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0  # SIGTERM stops it cleanly
    assert f"serving http://127.0.0.1:{port}/metrics: 2 GPU(s), 2 up" in out


def test_probe_results_mount_in_process(tmp_path: Path) -> None:
    exp = build(opts(probe_results=tmp_path / "missing.json"))
    exp.start()
    try:
        status, text = fetch(exp.server.port, "/metrics")
        errors = [s.value for s in parse(text).samples if s.name == "gpufleet_probe_results_errors_total"]
        assert status == 200 and errors == [1.0]  # absent file: counted, scrape fine
        probe_results(tmp_path / "missing.json")
        status, text = fetch(exp.server.port, "/metrics")
        flops = [s for s in parse(text).samples if s.name == "gpufleet_probe_matmul_flops"]
        assert len(flops) == 16  # 8 GPUs x (bf16, fp8)
    finally:
        exp.stop()


@pytest.mark.parametrize(("args", "message"), [
    (["--listen", "nope"], "--listen 'nope': expected ADDR:PORT"),
    (["--backend", "rocm"], "--backend 'rocm': use nvml or sim"),
    (["--otlp-endpoint", "collector:4318"], "--otlp-endpoint collector:4318: OTLP endpoint"),
])
def test_bad_flags_exit_2_with_the_flag_named(args: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = gpufleet_main(["exporter", "--listen", "127.0.0.1:0", "--pod-resources-socket", "", *args])
    assert code == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_registered_in_the_main_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpufleet_main(["exporter", "--help"]) == 0
    helptext = capsys.readouterr().out
    for flag in ("--backend", "--listen", "--web.config.file", "--pod-resources-socket", "--pod-label-allowlist",
                 "--otlp-endpoint", "--probe-results", "--process-memory", "--max-processes", "--xid-log"):
        assert flag in helptext


def test_pod_resources_socket_absent_is_counted_not_fatal(tmp_path: Path) -> None:
    exp = build(opts(pod_resources_socket=str(tmp_path / "kubelet.sock"), pod_label_allowlist=("app",)))
    exp.start()
    try:
        status, text = fetch(exp.server.port, "/metrics")
        samples = parse(text).samples
        assert status == 200 and [s.value for s in samples if s.name == "gpufleet_gpu_up"] == [1.0, 1.0]
        errors = {dict(s.labels)["error"] for s in samples if s.name == "gpufleet_exporter_pod_resources_errors_total"}
        assert errors  # the absent socket is reported by kind
    finally:
        exp.stop()


def test_optional_parts_missing_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpufleet.exporters.podresources", None)
    monkeypatch.setitem(sys.modules, "gpufleet.exporters.otlp", None)
    with pytest.raises(ExporterConfigError, match="--pod-resources-socket /run/k.sock: pod attribution is not"):
        build(opts(pod_resources_socket="/run/k.sock"))
    with pytest.raises(ExporterConfigError, match="--otlp-endpoint http://127.0.0.1:1: OTLP export is not"):
        build(opts(otlp_endpoint="http://127.0.0.1:1"))
    # Not asked for: attribution is simply off.
    exp = build(opts(pod_resources_socket=None))
    assert exp.collector.attribution is None
    exp.server.stop()


def test_otlp_endpoint_receives_a_push_on_stop() -> None:
    received: list[tuple[str, int]] = []

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((self.path, len(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return None

    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        exp = build(opts(otlp_endpoint=f"http://127.0.0.1:{sink.server_address[1]}", otlp_interval=600.0))
        exp.start()
        exp.sampler.sample_slow()
        exp.stop()  # shuts the OTLP reader down, which exports once more
    finally:
        sink.shutdown()
        sink.server_close()
    assert received and received[0][0] == "/v1/metrics" and received[0][1] > 100


def test_the_exporter_entry_point_stays_light_and_needs_no_pynvml() -> None:
    # The DaemonSet runs `python -m gpufleet.exporters`: it must not pull in the store or analytics stacks,
    # and the sim backend (and the module itself) must work where nvidia-ml-py is absent.
    code = (
        "import sys; sys.modules['pynvml'] = None\n"
        "import gpufleet.exporters.cli, gpufleet.exporters.app, gpufleet.exporters.nvml\n"
        "from gpufleet.exporters.app import ExporterOptions, build\n"
        "exp = build(ExporterOptions(backend='sim', listen='127.0.0.1:0', sim_gpus=1, pod_resources_socket=''))\n"
        "exp.server.stop()\n"
        "heavy = sorted(({m.split('.')[0] for m in sys.modules} | set(sys.modules)) & {'duckdb', 'polars', 'pyarrow',"
        " 'torch', 'pandas', 'streamlit', 'gpufleet.core.store', 'gpufleet.analytics'})\n"
        "print('heavy', heavy)\n"
        "from gpufleet.exporters.nvml import NvmlBackend\n"
        "try:\n"
        "    NvmlBackend().init()\n"
        "except Exception as exc:\n"
        "    print('nvml', type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "heavy []" in out
    assert "nvml DriverNotLoaded the NVML backend needs nvidia-ml-py: pip install nvidia-ml-py" in out


def test_every_flag_is_documented() -> None:
    import typer

    from gpufleet.exporters.cli import register

    app = typer.Typer()
    register(app, typer.Typer())

    @app.callback()
    def _root() -> None:
        """Root."""

    command = typer.main.get_command(app)
    exporter = command.commands["exporter"]  # type: ignore[attr-defined]
    flags = {opt for p in exporter.params for opt in p.opts if opt.startswith("--")}
    assert len(flags) > 20
    docs = (Path(__file__).resolve().parents[2] / "docs" / "exporter.md").read_text()
    assert sorted(f for f in flags if f"`{f}" not in docs and f"{f}`" not in docs and f" {f}" not in docs) == []
