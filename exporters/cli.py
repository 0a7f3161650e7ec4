"""``gpufleet exporter``: the node agent serving GPU metrics on ``/metrics`` and health on ``/healthz``."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

__all__ = ["register", "main"]

console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error (no traceback) and return the exit to raise."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _split(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return tuple(out)


def register(app: typer.Typer, report_app: typer.Typer) -> None:
    """Add ``exporter`` to the CLI."""

    @app.command()
    def exporter(
        backend: Annotated[str, typer.Option(help="GPU library: nvml (real GPUs) or sim (simulated node).",
                                             envvar="GPUFLEET_EXPORTER_BACKEND")] = "nvml",
        listen: Annotated[str, typer.Option("--listen", "--web.listen-address", help="ADDR:PORT to serve on.",
                                            envvar="GPUFLEET_EXPORTER_LISTEN")] = "0.0.0.0:9400",
        web_config_file: Annotated[Path | None, typer.Option(
            "--web.config.file", help="Prometheus exporter-toolkit web config (TLS, basic auth).",
            envvar="GPUFLEET_EXPORTER_WEB_CONFIG_FILE")] = None,
        dialect: Annotated[str, typer.Option(help="Names to serve: both, native (gpufleet_gpu_*) or dcgm "
                                                  "(DCGM_FI_*).")] = "both",
        hostname: Annotated[str, typer.Option(help="Node name on every series (default: the host name).",
                                              envvar="NODE_NAME")] = "",
        fast_interval: Annotated[float, typer.Option(help="Seconds between reads of the cheap fields.")] = 1.0,
        slow_interval: Annotated[float, typer.Option(help="Seconds between reads of the blocking fields "
                                                          "(PCIe, ECC, GPM...).")] = 5.0,
        gpm_interval: Annotated[float, typer.Option(help="Seconds between the two GPM samples of a pass.")] = 1.0,
        process_memory: Annotated[bool, typer.Option("--process-memory", help="Serve per-process GPU memory "
                                                                              "(by pid).")] = False,
        max_processes: Annotated[int, typer.Option(help="Per GPU, the largest processes served; the rest sum "
                                                        "under pid=\"other\".")] = 16,
        xid_log: Annotated[Path | None, typer.Option(help="Append XID events to this file as JSON lines.")] = None,
        pod_resources_socket: Annotated[str | None, typer.Option(
            help="kubelet pod-resources socket (default /var/lib/kubelet/pod-resources/kubelet.sock when pod "
                 "attribution is installed; \"\" turns it off).")] = None,
        pod_label_allowlist: Annotated[list[str] | None, typer.Option(
            help="Pod labels copied onto GPU series (repeat or comma-separate).")] = None,
        otlp_endpoint: Annotated[str | None, typer.Option(help="Also push the measurements to this OTLP/HTTP "
                                                               "endpoint.", envvar="OTEL_EXPORTER_OTLP_ENDPOINT")
                                 ] = None,
        otlp_interval: Annotated[float, typer.Option(help="Seconds between OTLP pushes.")] = 15.0,
        probe_results: Annotated[Path | None, typer.Option(help="Serve gpufleet_probe_* from this probe results "
                                                                "file.")] = None,
        sim_gpus: Annotated[int, typer.Option(help="Simulated GPUs (sim backend).")] = 8,
        sim_model: Annotated[str, typer.Option(help="Simulated GPU model (sim backend).")] = "H100",
        sim_mig: Annotated[bool, typer.Option("--sim-mig", help="Simulate MIG-partitioned A100s.")] = False,
        sim_seed: Annotated[int, typer.Option(help="Seed of the simulated node.")] = 7,
        duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: until "
                                                            "interrupted).")] = None,
    ) -> None:
        """Serve GPU metrics (Prometheus text or OpenMetrics) on /metrics and health on /healthz."""
        from gpufleet.exporters.app import ExporterConfigError, ExporterOptions, build

        opts = ExporterOptions(
            backend=backend, listen=listen, web_config_file=web_config_file, dialect=dialect, hostname=hostname,
            fast_interval=fast_interval, slow_interval=slow_interval, gpm_interval=gpm_interval,
            process_memory=process_memory, max_processes=max_processes, xid_log=xid_log,
            pod_resources_socket=pod_resources_socket, pod_label_allowlist=_split(pod_label_allowlist),
            otlp_endpoint=otlp_endpoint or None, otlp_interval=otlp_interval, probe_results=probe_results,
            sim_gpus=sim_gpus, sim_model=sim_model, sim_mig=sim_mig, sim_seed=sim_seed)
        try:
            exp = build(opts)
        except ExporterConfigError as exc:
            raise fail(str(exc)) from None
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        exp.start()
        n_up = sum(1 for g in exp.sampler.gpus if g.up)
        console.print(f"gpufleet exporter ({backend}) serving {exp.url}/metrics: {len(exp.sampler.gpus)} GPU(s), "
                      f"{n_up} up", highlight=False)
        started = time.monotonic()
        try:
            while not stop.wait(0.2):
                if duration is not None and time.monotonic() - started >= duration:
                    break
        finally:
            exp.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m gpufleet.exporters``: the exporter alone, without loading the other parts' commands."""
    app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
    register(app, typer.Typer())

    @app.callback()
    def _root() -> None:
        """The gpufleet node exporter."""

    try:
        result = app(args=["exporter", *(argv if argv is not None else sys.argv[1:])], standalone_mode=False)
        if isinstance(result, int):  # click returns the code of an Exit raised by the command
            return result
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except Exception as exc:  # click's usage errors carry their own exit code
        code = getattr(exc, "exit_code", None)
        if code is not None and hasattr(exc, "show"):
            exc.show()
            return int(code)
        raise
    return 0
