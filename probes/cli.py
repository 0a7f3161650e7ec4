"""``gpufleet probe ...`` commands and ``gpufleet report probes``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gpufleet.probes.results import ProbeRun, Verdict

__all__ = ["register", "probe_app"]

probe_app = typer.Typer(help="Probe GPUs (HBM, matmul, PCIe, NCCL) and judge them healthy, degraded or failed. "
                        "`gpufleet probe [--gpus 0,1] [--suite quick|full] [--json]` is `gpufleet probe run`.",
                        invoke_without_command=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
PriceOpt = Annotated[float | None, typer.Option(
    "--price", min=0, help="$/GPU-hour for every model (default: the store's prices table with --db, else "
    "built-in defaults).")]
PriceDbOpt = Annotated[Path | None, typer.Option("--db", help="Store whose prices table prices lost throughput.",
                                                 envvar="GPUFLEET_DB")]
ResultsOpt = Annotated[list[Path], typer.Option("--results", help="Results file(s) from `gpufleet probe run --out`.")]


def _prices(price: float | None, db: Path | None) -> Any:
    from gpufleet.main import fail
    from gpufleet.probes.prices import price_lookup, store_prices

    stored: dict[str, float] = {}
    if db is not None and price is None:
        from gpufleet.core.store import StoreError, open_readonly

        try:
            con = open_readonly(db)
        except StoreError as exc:
            raise fail(str(exc)) from None
        with con:
            stored = store_prices(con)
    return price_lookup(price, stored)


def _load(paths: list[Path]) -> list[ProbeRun]:
    from gpufleet.main import fail
    from gpufleet.probes.results import load_results

    try:
        return [load_results(p) for p in paths]
    except ValueError as exc:
        raise fail(str(exc)) from None


def _fmt_rate(value: float | None, scale: float, peak_ratio: float | None) -> str:
    if value is None or value != value:
        return "-"
    pct = f" ({peak_ratio:.0%})" if peak_ratio else ""
    return f"{value / scale:,.2f}{pct}" if scale >= 1e12 and value / scale < 10 else f"{value / scale:,.0f}{pct}"


def _print_run(run: ProbeRun) -> None:
    from rich.table import Table

    from gpufleet.main import out

    verdicts = {v.gpu_uuid: v for v in run.verdicts}
    table = Table(title=f"gpufleet probe ({run.backend}, {run.suite} suite)")
    for col in ("node", "gpu", "model", "HBM copy TB/s", "bf16 TFLOP/s", "fp8 TFLOP/s", "PCIe H2D GB/s", "verdict",
                "lost $/day", "why"):
        table.add_column(col, overflow="fold")
    for g in run.gpus:
        cells = []
        for key, scale in (("hbm_bandwidth_copy", 1e12), ("matmul_bf16", 1e12), ("matmul_fp8", 1e12),
                           ("pcie_bandwidth_h2d", 1e9)):
            m = g.get(key)
            cells.append(_fmt_rate(m.value, scale, m.peak_ratio) if m and m.ok else ("error" if m else "-"))
        v = verdicts.get(g.gpu_uuid)
        colour = {"healthy": "green", "degraded": "yellow", "failed": "red"}.get(v.verdict if v else "", "white")
        usd = f"{v.lost_usd_per_day:,.2f}" if v and v.lost_usd_per_day is not None else "-"
        table.add_row(g.node, str(g.index), g.gpu_model, *cells,
                      f"[{colour}]{v.verdict}[/{colour}]" if v else "-", usd, "; ".join(v.reasons[:2]) if v else "")
    out.print(table)
    largest: dict[tuple[str, str], Any] = {}
    for c in run.collectives:
        if (c.node, c.collective) not in largest or c.size_bytes > largest[(c.node, c.collective)].size_bytes:
            largest[(c.node, c.collective)] = c
    for (node, coll), c in sorted(largest.items()):
        out.print(f"{node} {coll} x{c.ranks} @ {c.size_bytes / 2**20:,.0f} MiB: busbw {c.busbw / 1e9:,.1f} GB/s, "
                  f"algbw {c.algbw / 1e9:,.1f} GB/s{'' if c.correct else ' [red]WRONG RESULT[/red]'}")


@probe_app.command("run")
def probe_run(
    backend: Annotated[str, typer.Option(help="cuda: this node's GPUs; sim: the simulated fleet.")] = "cuda",
    suite: Annotated[str, typer.Option(help="quick (~15 s/GPU) or full (every dtype, shapes, sizes).")] = "quick",
    gpus: Annotated[str | None, typer.Option(help="Comma-separated GPU indices (default: all).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Probe GPUs other processes are using.")] = False,
    no_nccl: Annotated[bool, typer.Option("--no-nccl", help="Skip the NCCL collectives.")] = False,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write the results JSON here.")] = None,
    exposition: Annotated[Path | None, typer.Option(help="Write the gpufleet_probe_* exposition text here.")] = None,
    nodes: Annotated[int, typer.Option(min=1, max=20000, help="sim: nodes of the simulated fleet.")] = 16,
    seed: Annotated[int, typer.Option(help="sim: fleet seed.")] = 7,
    at: Annotated[float | None, typer.Option(help="sim: fleet time, epoch seconds (faults active then apply).")] = None,
    fail_on: Annotated[str, typer.Option(help="Exit 1 when a GPU is this bad: never, degraded or failed.")] = "never",
    price: PriceOpt = None,
    db: PriceDbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the probe suite, judge every GPU, print a table or --json, optionally write results and exposition."""
    from gpufleet.main import console, fail
    from gpufleet.probes.verdict import judge

    if backend not in ("cuda", "sim"):
        raise fail(f"--backend {backend!r} must be 'cuda' or 'sim'")
    if suite not in ("quick", "full"):
        raise fail(f"--suite {suite!r} must be 'quick' or 'full'")
    if fail_on not in ("never", "degraded", "failed"):
        raise fail(f"--fail-on {fail_on!r} must be 'never', 'degraded' or 'failed'")
    try:
        indices = [int(x) for x in gpus.split(",") if x.strip()] if gpus else None
    except ValueError:
        raise fail(f"--gpus {gpus!r} must be comma-separated integers such as 0,1,3") from None
    prices = _prices(price, db)
    if backend == "sim":
        from gpufleet.core.simfleet import FleetConfig
        from gpufleet.probes.simulated import simulated_run

        run = simulated_run(FleetConfig(nodes=nodes, seed=seed), t=at, suite=suite)
    else:
        try:
            from gpufleet.probes.runner import GpuBusy, run_suite
        except ImportError as exc:
            raise fail(f"the cuda backend needs the 'probes' extra (torch): pip install 'gpufleet[probes]' ({exc})"
                       ) from None
        try:
            with console.status("probing") as status:
                run = run_suite(suite, indices, force=force, nccl=not no_nccl,
                                on_progress=lambda msg: status.update(f"probing: {msg}"))
        except (GpuBusy, RuntimeError, ValueError) as exc:
            raise fail(str(exc)) from None
    run.verdicts = judge(run.gpus, prices)
    if out_path is not None:
        from gpufleet.probes.results import dump_results

        dump_results(run, out_path)
    if exposition is not None:
        from gpufleet.probes.exposition import render_results

        exposition.write_text(render_results(run), encoding="utf-8")
    if as_json:
        from gpufleet.main import out

        out.print_json(json.dumps(run.to_dict()))
    else:
        _print_run(run)
    _exit_for(run.verdicts, fail_on)


@probe_app.callback()
def probe_default(
    ctx: typer.Context,
    backend: Annotated[str, typer.Option(help="cuda: this node's GPUs; sim: the simulated fleet.")] = "cuda",
    suite: Annotated[str, typer.Option(help="quick or full.")] = "quick",
    gpus: Annotated[str | None, typer.Option(help="Comma-separated GPU indices (default: all).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Probe GPUs other processes are using.")] = False,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write the results JSON here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Without a sub-command, run the suite (the options of `gpufleet probe run` are on that command)."""
    if ctx.invoked_subcommand is not None:
        return
    probe_run(backend=backend, suite=suite, gpus=gpus, force=force, no_nccl=False, out_path=out_path,
              exposition=None, nodes=16, seed=7, at=None, fail_on="never", price=None, db=None, as_json=as_json)


def _exit_for(verdicts: list[Verdict], fail_on: str) -> None:
    bad = {"never": set(), "degraded": {"degraded", "failed"}, "failed": {"failed"}}[fail_on]
    if any(v.verdict in bad for v in verdicts):
        raise typer.Exit(1)


@probe_app.command("verdict")
def probe_verdict(
    results: ResultsOpt,
    price: PriceOpt = None,
    db: PriceDbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Judge GPUs across results files together (node peers and the fleet baseline span every file)."""
    from dataclasses import asdict

    from gpufleet.main import out
    from gpufleet.probes.verdict import judge

    runs = _load(results)
    verdicts = judge([g for r in runs for g in r.gpus], _prices(price, db))
    if as_json:
        out.print_json(json.dumps({"verdicts": [asdict(v) for v in verdicts],
                                   "lost_usd_per_day": round(sum(v.lost_usd_per_day or 0 for v in verdicts), 2)}))
        return
    for v in verdicts:
        if v.verdict != "healthy":
            usd = f" ${v.lost_usd_per_day:,.2f}/day" if v.lost_usd_per_day is not None else ""
            out.print(f"{v.verdict:9} {v.node} {v.gpu_uuid}{usd}: {'; '.join(v.reasons)}", highlight=False)
    counts = {s: sum(v.verdict == s for v in verdicts) for s in ("healthy", "degraded", "failed")}
    out.print(", ".join(f"{n} {s}" for s, n in counts.items()))


@probe_app.command("render")
def probe_render(results: ResultsOpt) -> None:
    """Print results as gpufleet_probe_* exposition text (what the exporter serves)."""
    from gpufleet.probes.exposition import render_results

    typer.echo(render_results(_load(results)), nl=False)


@probe_app.command("ingest")
def probe_ingest(
    db: Annotated[Path, typer.Option("--db", help="DuckDB store file.", envvar="GPUFLEET_DB")],
    results: ResultsOpt,
    target: Annotated[str, typer.Option(help="Target name the results land under.")] = "probes",
    as_json: JsonOpt = False,
) -> None:
    """Land results in the store through the exposition path (parser, adapters, single writer)."""
    from gpufleet.collectors.ingest import Scrape, ingest
    from gpufleet.collectors.target import Target
    from gpufleet.core.store import StoreError, StoreWriter, WriteReport
    from gpufleet.main import fail, out
    from gpufleet.probes.exposition import render_results

    runs = _load(results)
    total = WriteReport()
    try:
        with StoreWriter(db) as writer:
            for r in runs:
                total.merge(ingest(writer, [Scrape(Target(target), r.finished_at, render_results(r))]))
    except (ValueError, StoreError) as exc:
        raise fail(str(exc)) from None
    doc = {"landed": total.landed, "skipped": total.skipped, "samples": total.samples, "rejected": total.rejected}
    if as_json:
        out.print_json(json.dumps(doc))
    else:
        out.print(f"landed {total.landed} run(s), {total.samples} samples; skipped {total.skipped} already landed")


@probe_app.command("specs")
def probe_specs(as_json: JsonOpt = False) -> None:
    """The datasheet peaks the probes compare with."""
    from gpufleet.main import out
    from gpufleet.probes.specs import DEFAULT_USD_PER_GPU_HOUR, PEAKS

    rows = [{**p._asdict(), "default_usd_per_gpu_hour": DEFAULT_USD_PER_GPU_HOUR.get(p.family)} for _, p in PEAKS]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for r in rows:
        fp8 = r["fp8_tflops"] or "-"
        out.print(f"{r['key']:16} bf16 {r['bf16_tflops']:>6} fp8 {fp8:>6} tf32 {r['tf32_tflops']:>6} "
                  f"TFLOP/s, HBM {r['hbm_tbps']} TB/s, PCIe Gen{r['pcie_gen']} x{r['pcie_lanes']}", highlight=False)


def report_probes(
    db: Annotated[Path, typer.Option("--db", help="DuckDB store file.", envvar="GPUFLEET_DB")],
    as_json: JsonOpt = False,
) -> None:
    """Each GPU's latest probe verdict and lost $/day, from the store's probe_results."""
    from gpufleet.core.store import StoreError, open_readonly
    from gpufleet.main import fail, out
    from gpufleet.probes.report import latest_verdicts

    try:
        con = open_readonly(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    with con:
        rows = latest_verdicts(con)
    if as_json:
        out.print_json(json.dumps({"gpus": rows, "lost_usd_per_day": round(sum(r["lost_usd_per_day"] or 0
                                                                               for r in rows), 2)}))
        return
    from rich.table import Table

    table = Table(title=f"probe verdicts in {db}")
    for col in ("node", "gpu_uuid", "model", "verdict", "lost", "lost $/day", "probed at"):
        table.add_column(col)
    for r in rows:
        usd = f"{r['lost_usd_per_day']:,.2f}" if r["lost_usd_per_day"] is not None else "-"
        table.add_row(r["node"] or "", r["gpu_uuid"], r["gpu_model"] or "", r["verdict"],
                      f"{r['lost_ratio']:.0%}", usd, r["ts"])
    out.print(table)


def register(app: typer.Typer, report_app: typer.Typer) -> None:
    """Add ``gpufleet probe ...`` and ``gpufleet report probes``."""
    app.add_typer(probe_app, name="probe")
    report_app.command("probes")(report_probes)
