"""CLI: ``gpufleet report capacity|efficiency|reliability``."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gpufleet.core.store.reader import open_readonly

__all__ = ["register"]

DbOpt = Annotated[Path, typer.Option("--db", help="DuckDB store file", envvar="GPUFLEET_DB")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
PeriodOpt = Annotated[str, typer.Option("--period", help="hour, day or week")]


def _fail(msg: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {msg}")
    return typer.Exit(2)


def _open(db: Path) -> Any:
    if not db.exists():
        raise _fail(f"--db {db}: no such store file")
    return open_readonly(db)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _table(title: str, rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title=title)
    cols = list(rows[0]) if rows else []
    for c in cols:
        table.add_column(c, justify="right" if isinstance(rows[0][c], (int, float)) else "left")
    for r in rows:
        table.add_row(*("" if r[c] is None else f"{r[c]:,.4g}" if isinstance(r[c], float) else str(r[c])
                        for c in cols))
    return table


def _emit(sections: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_deep_clean(sections), default=str))
        return
    console = Console()
    for name, value in sections.items():
        if isinstance(value, list):
            console.print(_table(name, value))
        else:
            console.print(f"[bold]{name}[/bold]: {value}")


def _deep_clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _deep_clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_deep_clean(x) for x in v]
    return _clean(v)


def register(app: typer.Typer, report_app: typer.Typer) -> None:
    """Add the capacity, efficiency and reliability reports."""

    @report_app.command("capacity")
    def capacity(db: DbOpt, slo: Annotated[float, typer.Option("--wait-slo", help="queue-wait target, s")] = 0.5,
                 quantile: Annotated[float, typer.Option(help="wait quantile the target applies to")] = 0.99,
                 headroom: Annotated[float, typer.Option(help="highest mean utilisation allowed")] = 0.8,
                 horizon: Annotated[int, typer.Option(help="forecast hours")] = 24,
                 metrics: Annotated[str, typer.Option(help="comma-separated: requests,tokens,gpu_hours")] =
                 "requests,tokens,gpu_hours", as_json: JsonOpt = False) -> None:
        """Demand forecasts (Holt-Winters vs seasonal naive, picked by backtest), replicas, GPUs and $/month."""
        from gpufleet.analytics.capacity.demand import METRICS
        from gpufleet.analytics.capacity.report import capacity_rows, forecast_rows, pooling_rows

        con = _open(db)
        wanted = [m.strip() for m in metrics.split(",") if m.strip()]
        bad = sorted(set(wanted) - set(METRICS))
        if bad or "requests" not in wanted:
            raise _fail(f"--metrics {metrics!r}: use requests plus any of {', '.join(METRICS)}")
        try:
            sections: dict[str, Any] = {f"forecast {m}": forecast_rows(con, m, horizon) for m in wanted}
            sections["capacity"] = capacity_rows(con, slo, quantile, headroom, horizon,
                                                 sections["forecast requests"])
            sections["pooled vs split by cluster"] = pooling_rows(con, sections["capacity"], slo, quantile, headroom)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        _emit(sections, as_json)

    @report_app.command("efficiency")
    def efficiency(db: DbOpt, period: PeriodOpt = "day",
                   recompute: Annotated[bool, typer.Option(help="jobs use full activation recomputation")] = False,
                   as_json: JsonOpt = False) -> None:
        """MFU/HFU of training jobs per period against datasheet and probe-measured peaks, and per team."""
        from gpufleet.analytics.efficiency.jobs import job_efficiency, team_efficiency

        try:
            rows = job_efficiency(_open(db), period, recompute)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        teams = [{"team": t, "period": p, "mfu": v} for (t, p), v in sorted(team_efficiency(rows).items())]
        _emit({"jobs": [dataclasses.asdict(r) for r in rows], "teams": teams}, as_json)

    @report_app.command("reliability")
    def reliability(db: DbOpt, period: PeriodOpt = "day",
                    job_gpus: Annotated[int, typer.Option(help="GPUs of the job to project MTTF/ETTR for")] = 1024,
                    checkpoint_interval: Annotated[float, typer.Option(help="seconds between checkpoints")] = 1800,
                    restart: Annotated[float, typer.Option(help="seconds to restart after a failure")] = 600,
                    as_json: JsonOpt = False) -> None:
        """Interruptions by failure class per period, MTTF per GPU/node and for a job, ETTR, lemon nodes."""
        from gpufleet.analytics.reliability.report import reliability_report

        try:
            r = reliability_report(_open(db), period, job_gpus, checkpoint_interval, restart)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        _emit({"interruptions by class": [dataclasses.asdict(c) for c in r.categories],
               "nodes": [dataclasses.asdict(n) for n in r.nodes],
               "summary": {"gpu_hours": r.gpu_hours, "interruptions": r.interruptions,
                           "gpu_mttf_hours": r.gpu_mttf_hours, "job_gpus": r.job_gpus,
                           "job_mttf_hours": r.job_mttf_hours, "ettr": r.ettr,
                           "young_interval_s": r.young_interval_s, "young_ettr": r.young_ettr,
                           "notes": list(r.notes)}}, as_json)
