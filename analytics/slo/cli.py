"""CLI: ``gpufleet report slo --db PATH [--spec FILE] [--window 30d] [--end TIME] [--json]``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gpufleet.analytics.slo import store
from gpufleet.analytics.slo.goodput_column import goodput_column
from gpufleet.analytics.slo.report import SloResult, default_specs, slo_report
from gpufleet.analytics.slo.spec import SpecError, SpecProblem, load_specs, parse_duration
from gpufleet.core.store.reader import open_readonly
from gpufleet.core.store.writer import StoreError

__all__ = ["register", "parse_end", "render_table"]

_STYLE = {"ok": "green", "ticket": "yellow", "page": "bold red", "low traffic": "cyan", "no data": "dim",
          "error": "red"}


def _fail(msg: str) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {msg}", highlight=False)
    return typer.Exit(2)


def parse_end(value: str) -> datetime:
    """``--end``: epoch seconds or ISO 8601 (UTC when no offset is given), as a naive UTC datetime."""
    try:
        return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--end {value!r} is not epoch seconds or an ISO 8601 time (e.g. 2026-01-01T12:00)") from None
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _pct(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


def _hours(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 24:.1f}d" if v >= 48 else f"{v:.1f}h"


def render_table(results: list[SloResult], title: str) -> Table:
    """The human report: one row per SLO."""
    table = Table(title=title)
    for col, right in (("SLO", False), ("SLI", False), ("objective", True), ("window", True), ("actual", True),
                       ("± bound", True), ("burn", True), ("budget left", True), ("exhausted in", True),
                       ("days met", True), ("goodput req/s", True), ("state", False)):
        table.add_column(col, justify="right" if right else "left")
    for r in results:
        b = r.budget
        bound = None
        if b is not None and b.sli is not None and b.sli_min is not None and b.sli_max is not None:
            bound = max(b.sli - b.sli_min, b.sli_max - b.sli)
        judged = [d for d in r.days if d.met is not None]
        days = f"{sum(1 for d in judged if d.met)}/{len(judged)}" if judged else "-"
        style = _STYLE.get(r.status, "")
        table.add_row(r.slo, r.sli, _pct(r.objective, 2) if r.objective else "-",
                      _window(r.window_s), _pct(b.sli if b else None), _pct(bound),
                      _num(b.burn_rate if b else None), _pct(b.budget_remaining if b else None, 1),
                      _hours(r.hours_to_exhaustion), days, _goodput(r),
                      f"[{style}]{r.status}[/{style}]" if style else r.status)
    return table


def _goodput(r: SloResult) -> str:
    g = r.goodput
    if not g or g.get("rps") is None:
        return "-"
    return f"{g['rps']:.3g}"


def _window(seconds: float) -> str:
    if not seconds:
        return "-"
    return f"{seconds / 86400:g}d" if seconds % 86400 == 0 else f"{seconds / 3600:g}h"


def register(app: typer.Typer, report_app: typer.Typer) -> None:
    """Add ``gpufleet report slo``."""

    @report_app.command("slo")
    def report_slo(
        db: Annotated[Path, typer.Option("--db", help="DuckDB store file.", envvar="GPUFLEET_DB")],
        spec: Annotated[Path | None, typer.Option(
            "--spec", help="SLO spec file or directory (gpufleet, Sloth or OpenSLO YAML). Default: availability "
                           "99.5% and TTFT <= 2s at 99% for every service in the store.")] = None,
        window: Annotated[str | None, typer.Option(
            "--window", help="Window for every SLO (30d, 7d, 12h); default: each spec's own window.")] = None,
        end: Annotated[str | None, typer.Option(
            "--end", help="End of the window: epoch seconds or ISO 8601 UTC. Default: the newest scrape.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Serving SLOs: SLI, error budget, burn rates (multi-window), attainment per day."""
        try:
            window_s = parse_duration(window) if window else None
        except ValueError as exc:
            raise _fail(f"--window: {exc}") from None
        try:
            at = parse_end(end) if end else None
        except ValueError as exc:
            raise _fail(str(exc)) from None
        if window_s is not None and window_s < 300:
            raise _fail(f"--window {window}: must be at least 5m")
        problems: list[SpecProblem] = []
        try:
            specs = load_specs(spec, problems=problems) if spec else None
        except SpecError as exc:
            raise _fail(str(exc)) from None
        try:
            con = open_readonly(db)
        except StoreError as exc:
            raise _fail(f"--db {db}: {exc}") from None
        with con:
            if specs is None:
                services = store.serving_services(con)
                if not services:
                    raise _fail(f"--db {db}: no serving series with a service label; pass --spec FILE")
                specs = default_specs(services)
            results = slo_report(con, specs, end=at, window_s=window_s, problems=problems,
                                 goodput=goodput_column(con, specs))
        if as_json:
            typer.echo(json.dumps([r.to_dict() for r in results]))
            return
        console = Console()
        when = results[0].end if results and results[0].end else None
        title = f"Serving SLOs, {db}" + (f", at {when:%Y-%m-%d %H:%M} UTC" if when else "")
        console.print(render_table(results, title))
        for r in results:
            if r.message:
                console.print(f"[{_STYLE.get(r.status, '')}]{r.slo}[/]: {r.message}", highlight=False)
