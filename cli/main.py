"""The ``gpufleet`` command: one typer app; each part adds its own sub-commands."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from gpufleet import __version__

__all__ = ["app", "run", "main"]

app = typer.Typer(name="gpufleet", help="Observability and FinOps for GPU fleets.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
report_app = typer.Typer(help="Reports over a store (add --json for scripting).", no_args_is_help=True)
app.add_typer(report_app, name="report")

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

DbOption = Annotated[Path, typer.Option("--db", help="DuckDB store file.", envvar="GPUFLEET_DB")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error (no traceback) and return the exit to raise."""
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context,
          version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        out.print(ctx.get_help())
        raise typer.Exit()


@app.command()
def demo(
    db: DbOption = Path("gpufleet-demo.duckdb"),
    days: Annotated[float, typer.Option(min=0.01, max=400, help="Days of history to simulate.")] = 7.0,
    nodes: Annotated[int, typer.Option(min=1, max=20000, help="GPU nodes (8 GPUs each).")] = 16,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same fleet and history.")] = 7,
    step: Annotated[float, typer.Option(min=10, max=3600, help="Seconds between scrapes.")] = 300.0,
    end: Annotated[float | None, typer.Option(help="End of history, epoch seconds (default: now).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes that render and parse.")] = 2,
    no_dashboard: Annotated[bool, typer.Option("--no-dashboard", help="Build the store and stop.")] = False,
    port: Annotated[int, typer.Option(help="Dashboard port.")] = 8501,
) -> None:
    """Simulate a GPU fleet, land its history in DuckDB through the real pipeline, open the dashboard."""
    from gpufleet.core.simfleet import FleetConfig
    from gpufleet.history import HistoryPlan, build_history

    plan = HistoryPlan(days=days, step_s=step, end=end if end is not None else time.time() // step * step)
    cfg = FleetConfig(nodes=nodes, seed=seed)
    console.print(f"Simulating {nodes} nodes ({nodes * cfg.gpus_per_node} GPUs), {days:g} days every {step:g} s "
                  f"into [bold]{db}[/bold]")
    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as progress:
        task = progress.add_task("scrapes", total=plan.steps)
        report = build_history(db, cfg, plan, on_step=lambda i, n: progress.update(task, completed=i),
                               workers=workers)
    took = time.perf_counter() - started
    console.print(f"Landed {report.landed:,} scrapes, {report.samples:,} samples in {took:.1f} s "
                  f"({report.samples / max(took, 1e-9):,.0f} samples/s); rejected {len(report.rejected)}.")
    if not no_dashboard:
        _open_dashboard(db, port)


def _open_dashboard(db: Path, port: int) -> None:
    try:
        from gpufleet.dashboards.launch import launch  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise fail("the dashboard needs the 'app' extra: pip install 'gpufleet[app]'") from None
    launch(db, port=port)


@app.command()
def ingest(
    db: DbOption,
    file: Annotated[list[Path], typer.Option("--file", help="Exposition file(s) to land.")],
    target: Annotated[str | None, typer.Option(help="Target name (default: the file name).")] = None,
    timestamp: Annotated[float | None, typer.Option(help="Scrape time, epoch seconds (default: file mtime).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Land captured exposition text (Prometheus text or OpenMetrics) in the store."""
    from gpufleet.collectors.ingest import ingest_file
    from gpufleet.core.store import StoreError, StoreWriter, WriteReport, maintain

    total = WriteReport()
    try:
        with StoreWriter(db) as writer:
            for f in file:
                total.merge(ingest_file(writer, f, target=target, timestamp=timestamp))
            maintain(writer.con)
    except (ValueError, StoreError) as exc:
        raise fail(str(exc)) from None
    result = {"landed": total.landed, "skipped": total.skipped, "samples": total.samples,
              "rejected": total.rejected}
    if as_json:
        out.print_json(json.dumps(result))
        return
    out.print(f"landed {total.landed} scrape(s), {total.samples} samples; skipped {total.skipped} already landed")
    for r in total.rejected[:50]:
        out.print(f"  [yellow]rejected[/yellow] {r}", markup=True, highlight=False)
    if len(total.rejected) > 50:
        out.print(f"  ... and {len(total.rejected) - 50} more")


@report_app.command("summary")
def report_summary(
    db: DbOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """GPUs, GPU-hours, series, samples and the time range of a store."""
    from gpufleet.core.store import StoreError, open_readonly, summary

    try:
        con = open_readonly(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    with con:
        facts = summary(con)
    if as_json:
        out.print_json(json.dumps(facts))
        return
    table = Table(title=f"gpufleet store {db}", show_header=False)
    for k, v in facts.items():
        table.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    out.print(table)


# Each part adds its commands through ``register(app, report_app)`` in its own cli module.
PART_COMMANDS = (
    "gpufleet.exporters.cli",
    "gpufleet.collectors.cli",
    "gpufleet.probes.cli",
    "gpufleet.analytics.slo.cli",
    "gpufleet.analytics.serving.cli",
    "gpufleet.analytics.cost.cli",
    "gpufleet.analytics.capacity.cli",
    "gpufleet.dashboards.cli",
    "gpufleet.alerts.cli",
    "gpufleet.deploy_cli",
)


def _register_parts() -> None:
    for name in PART_COMMANDS:
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # its parent package is not there
            found = None
        if found is None:
            continue
        importlib.import_module(name).register(app, report_app)


_register_parts()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    try:
        result = app(args=argv, standalone_mode=False)
        if isinstance(result, int):  # click returns the code of an Exit raised by a command
            return result
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        return 130
    except Exception as exc:  # click's usage errors carry their own exit code
        code = getattr(exc, "exit_code", None)
        if code is not None and hasattr(exc, "show"):
            exc.show()
            return int(code)
        raise
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
