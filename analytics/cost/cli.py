"""CLI: ``gpufleet report cost|utilization|energy|whatif`` and ``gpufleet export focus``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from gpufleet.analytics.cost import report as rep
from gpufleet.analytics.cost.pricing import CatalogError, load_catalog
from gpufleet.analytics.cost.query import CostSource, DuckDBSource, parse_window
from gpufleet.analytics.sources.cli import add_export_parquet
from gpufleet.analytics.sources.spec import open_source
from gpufleet.core.store.reader import open_readonly

__all__ = ["register"]

BY_CHOICES = ("team", "namespace", "node", "cluster", "model")
ENERGY_BY = {"gpu": "gpu_uuid", "team": "team", "namespace": "namespace", "node": "node", "cluster": "cluster",
             "model": "gpu_model"}
DbOpt = Annotated[Path, typer.Option("--db", help="DuckDB store file")]
WindowOpt = Annotated[str, typer.Option("--window", help="window ending at the newest data: 30d, 12h, 2w")]
CatalogOpt = Annotated[Path | None, typer.Option("--catalog", help="price catalog YAML (default: shipped)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
OptDbOpt = Annotated[Path | None, typer.Option("--db", help="DuckDB store file (or use --source)")]
SourceOpt = Annotated[str | None, typer.Option("--source", help="duckdb:PATH, prometheus:URL or parquet:URI")]


def _fail(msg: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {msg}")
    return typer.Exit(2)


def _source(db: Path | None, source: str | None = None) -> CostSource:
    if source is not None:
        if db is not None:
            raise _fail("--db and --source: give one of them")
        try:
            return open_source(source)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    if db is None:
        raise _fail("--db PATH or --source duckdb:PATH|prometheus:URL|parquet:URI is required")
    if not db.exists():
        raise _fail(f"--db {db}: no such store file")
    return DuckDBSource(open_readonly(db))


def _print(df: pl.DataFrame, title: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(df.to_dicts(), default=str))
        return
    table = Table(title=title)
    for c in df.columns:
        table.add_column(c, justify="right" if df[c].dtype.is_numeric() else "left")
    for row in df.iter_rows():
        table.add_row(*("" if v is None else f"{v:,.4g}" if isinstance(v, float) else str(v) for v in row))
    Console().print(table)


def register(app: typer.Typer, report_app: typer.Typer) -> None:
    """Add the cost commands to the main CLI."""
    export_app = typer.Typer(help="Export cost data.", no_args_is_help=True)
    app.add_typer(export_app, name="export")
    add_export_parquet(export_app)

    @report_app.command("cost")
    def cost(db: OptDbOpt = None, by: Annotated[str, typer.Option("--by")] = "namespace", window: WindowOpt = "30d",
             catalog: CatalogOpt = None, as_json: JsonOpt = False, source: SourceOpt = None) -> None:
        """Chargeback per team, namespace, node or cluster (idle/shared spread), or cost per model."""
        if by not in BY_CHOICES:
            raise _fail(f"--by {by!r}: use one of {', '.join(BY_CHOICES)}")
        try:
            length, cat = parse_window(window), load_catalog(catalog)
            df = rep.cost_report(_source(db, source), cat, length, by)
        except (ValueError, CatalogError) as exc:
            raise _fail(str(exc)) from None
        if "total_cents" in df.columns:
            df = df.with_columns((pl.col(c) / 100).alias(c.replace("_cents", "_usd"))
                                 for c in ("cost_cents", "idle_cents", "shared_cents", "total_cents"))
            df = df.drop("cost_cents", "idle_cents", "shared_cents", "total_cents")
        _print(df, f"GPU cost by {by}, last {window}", as_json)

    @report_app.command("utilization")
    def utilization(db: OptDbOpt = None, by: Annotated[str, typer.Option("--by")] = "namespace",
                    window: WindowOpt = "30d", catalog: CatalogOpt = None, as_json: JsonOpt = False,
                    source: SourceOpt = None) -> None:
        """Allocated vs used GPU-hours and efficiency, and Optimize/Remove/Share recommendations.

        --by team, namespace, node, cluster, model (GPU model) or workload (namespace/pod).
        """
        if by not in rep.UTILIZATION_BY:
            raise _fail(f"--by {by!r}: use one of {', '.join(rep.UTILIZATION_BY)}")
        try:
            length, cat = parse_window(window), load_catalog(catalog)
            src = _source(db, source)
            df = rep.utilization_report(src, length, by)
            recs = rep.recommendations(src, cat, length)
        except (ValueError, CatalogError) as exc:
            raise _fail(str(exc)) from None
        if as_json:
            typer.echo(json.dumps({"utilization": df.to_dicts(),
                                   "recommendations": [r.__dict__ for r in recs]}))
            return
        _print(df, f"GPU utilization by {by}, last {window}", False)
        _print(pl.DataFrame([r.__dict__ for r in recs]) if recs else pl.DataFrame({"recommendation": ["none"]}),
               "Recommendations", False)

    @report_app.command("energy")
    def energy(db: DbOpt, by: Annotated[str, typer.Option("--by")] = "namespace", window: WindowOpt = "30d",
               catalog: CatalogOpt = None, as_json: JsonOpt = False) -> None:
        """GPU and facility kWh (PUE), electricity cost and kg CO2e per GPU, team, namespace, node, cluster or model."""
        if by not in ENERGY_BY:
            raise _fail(f"--by {by!r}: use one of {', '.join(ENERGY_BY)}")
        try:
            length, cat = parse_window(window), load_catalog(catalog)
            df = rep.energy(_source(db), cat, length, ENERGY_BY[by])
        except (ValueError, CatalogError) as exc:
            raise _fail(str(exc)) from None
        e = cat.energy
        _print(df, f"GPU energy by {by}, last {window} (PUE {e.pue:g}, ${e.usd_per_kwh:g}/kWh, "
               f"{e.grid_gco2_per_kwh:g} gCO2e/kWh)", as_json)

    @report_app.command("whatif")
    def whatif(db: DbOpt, by: Annotated[str, typer.Option("--by", help="rightsizing groups")] = "namespace",
               probe: Annotated[str, typer.Option("--probe", help="probe whose throughput scales hours")]
               = "matmul_bf16",
               spot_overhead: Annotated[float, typer.Option(
                   "--spot-overhead", min=0, max=1, help="share of work redone after spot interruptions")] = 0.10,
               window: WindowOpt = "30d", catalog: CatalogOpt = None, as_json: JsonOpt = False) -> None:
        """On-demand vs reserved vs spot per GPU model, and rightsizing each group to other GPU models."""
        if by not in BY_CHOICES[:4]:
            raise _fail(f"--by {by!r}: use one of {', '.join(BY_CHOICES[:4])}")
        try:
            length, cat = parse_window(window), load_catalog(catalog)
            src = _source(db)
            pricing = rep.pricing_whatif(src, cat, length, spot_overhead)
            sizing = rep.rightsizing(src, cat, length, probe, by)
        except (ValueError, CatalogError) as exc:
            raise _fail(str(exc)) from None
        note = None if sizing.height else (f"no {probe!r} probe results in the store: run `gpufleet probe run` "
                                           "and `gpufleet probe ingest` for rightsizing")
        if as_json:
            typer.echo(json.dumps({"pricing": pricing.to_dicts(), "rightsizing": sizing.to_dicts(), "note": note}))
            return
        _print(pricing, f"On demand vs reserved vs spot, last {window}", False)
        if note:
            Console().print(note)
        else:
            _print(sizing, f"Rightsizing by {by} ({probe} throughput, on-demand prices)", False)

    @export_app.command("focus")
    def focus(db: DbOpt, out: Annotated[Path, typer.Option("--out", help="FILE.csv or FILE.parquet")],
              window: WindowOpt = "30d", catalog: CatalogOpt = None) -> None:
        """Write FOCUS 1.2 rows (21 mandatory columns, PricingCategory, x_ columns)."""
        if out.suffix not in (".csv", ".parquet"):
            raise _fail(f"--out {out}: the file name must end in .csv or .parquet")
        try:
            df = rep.focus_export(_source(db), load_catalog(catalog), parse_window(window))
        except (ValueError, CatalogError) as exc:
            raise _fail(str(exc)) from None
        if out.suffix == ".csv":
            df.write_csv(out)
        else:
            df.write_parquet(out)
        typer.echo(f"wrote {df.height} FOCUS rows to {out}")
