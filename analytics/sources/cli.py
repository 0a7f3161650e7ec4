"""CLI: ``gpufleet export parquet`` (the store's hourly rollups as hive-partitioned Parquet)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gpufleet.analytics.sources.export import export_parquet
from gpufleet.core.store.reader import open_readonly

__all__ = ["add_export_parquet"]


def add_export_parquet(export_app: typer.Typer) -> None:
    """Add ``parquet`` to the ``export`` command group."""

    @export_app.command("parquet")
    def parquet(db: Annotated[Path, typer.Option("--db", help="DuckDB store file")],
                to: Annotated[str, typer.Option("--to", help="directory or s3://BUCKET/PREFIX")],
                since: Annotated[str | None, typer.Option("--since", help="first day to export, YYYY-MM-DD")] = None,
                as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
        """Write hourly rollups as TO/table=NAME/date=YYYY-MM-DD/part-0.parquet (S3: AWS_* variables)."""
        err = Console(stderr=True)
        if not db.exists():
            err.print(f"[red]error:[/red] --db {db}: no such store file")
            raise typer.Exit(2)
        try:
            first = dt.date.fromisoformat(since) if since else None
        except ValueError:
            err.print(f"[red]error:[/red] --since {since!r}: use a date like 2026-01-31")
            raise typer.Exit(2) from None
        try:
            report = export_parquet(open_readonly(db), to, since=first)
        except (ValueError, OSError) as exc:
            err.print(f"[red]error:[/red] --to {to}: {exc}")
            raise typer.Exit(2) from None
        if as_json:
            typer.echo(json.dumps(report.__dict__))
        else:
            typer.echo(f"exported {report.days} day(s), {report.files} file(s) to {to}: "
                       + ", ".join(f"{t} {n} rows" for t, n in sorted(report.rows.items())))
