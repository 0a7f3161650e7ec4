"""CLI: ``gpufleet report serving`` (efficiency and goodput per model and engine)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from gpufleet.analytics.cost.pricing import CatalogError, load_catalog
from gpufleet.analytics.cost.query import parse_window
from gpufleet.analytics.serving.goodput import ESTIMATES, Estimate, GoodputError, parse_slos
from gpufleet.analytics.serving.query import LABELS, ServingSource
from gpufleet.analytics.serving.report import ServingReport, goodput_over_time, serving_report
from gpufleet.core.store.reader import open_readonly
from gpufleet.core.store.writer import StoreError

__all__ = ["register", "DEFAULT_SLOS", "parse_matchers"]

# MLPerf Inference server scenario for llama2-70b: TTFT 2 s, TPOT 200 ms.
DEFAULT_SLOS = ["ttft=2", "tpot=0.2"]

TABLES = {  # title -> {column: (header, scale)}
    "Serving throughput": {
        "requests_per_s": ("req/s", 1.0), "prompt_tokens_per_s": ("prompt tok/s", 1.0),
        "generation_tokens_per_s": ("gen tok/s", 1.0), "prefix_cache_hit_rate": ("prefix hit %", 100.0),
        "preemptions_per_s": ("preempt/s", 1.0)},
    "KV cache and queueing": {
        "kv_cache_usage_mean": ("KV mean %", 100.0), "kv_cache_usage_p95": ("KV p95 %", 100.0),
        "kv_cache_above_ratio": ("KV>thr %t", 100.0), "requests_running_mean": ("running", 1.0),
        "requests_waiting_mean": ("waiting", 1.0), "queue_time_mean_s": ("queue s", 1.0),
        "queue_time_p95_s": ("queue p95 s", 1.0)},
}


def _short(model: str | None) -> str:
    """A model name without its organisation prefix, for narrow tables."""
    return "-" if model is None else model.rsplit("/", 1)[-1]


BY = {"model": ("model", "engine"), "service": ("service",), "namespace": ("namespace",),
      "cluster": ("cluster",), "pod": ("pod", "model", "engine")}


def parse_matchers(texts: list[str]) -> dict[str, str]:
    """``["service=chat"]`` -> ``{"service": "chat"}``; ValueError naming a malformed or unknown matcher."""
    out: dict[str, str] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or key.strip() not in LABELS or not value.strip():
            raise ValueError(f"--match {text!r}: write LABEL=VALUE with LABEL one of {', '.join(LABELS)}")
        out[key.strip()] = value.strip()
    return out


def _step(text: str) -> dt.timedelta:
    try:
        step = parse_window(text)
    except ValueError:
        raise ValueError(f"--every {text!r}: use a number and a unit m, h or d of at least a minute (1h)") from None
    if step.total_seconds() < 60:
        raise ValueError(f"--every {text!r}: a step must be at least a minute")
    return step


def _fail(msg: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {msg}")
    return typer.Exit(2)


def _fmt(v: Any, scale: float = 1.0) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, (int, float)):
        x = v * scale
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"
    return str(v)


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _print(rep: ServingReport, console: Console) -> None:
    w = rep.window
    console.print(f"serving window {w.start:%Y-%m-%d %H:%M} .. {w.end:%Y-%m-%d %H:%M} UTC "
                  f"({w.seconds / 3600:,.2f} h of data)")
    by = list(rep.by)

    def labels(row: dict[str, Any]) -> list[str]:
        return [_short(row[k]) if k == "model" else _fmt(row[k]) for k in by]

    for title, shown in TABLES.items():
        table = Table(title=title)
        for k in by:
            table.add_column(k)
        for header, _ in shown.values():
            table.add_column(header, justify="right")
        for r in rep.efficiency.iter_rows(named=True):
            cells = (_fmt(r[c], scale) for c, (_, scale) in shown.items())
            table.add_row(*labels(r), *cells)
        console.print(table)
    slos = " and ".join(f"{k} <= {v:g} s" for k, v in rep.slos.items())
    good = Table(title=f"Goodput: requests/s meeting {slos}")
    for c in (*by, "req/s", *(f"{k} ok %" for k in rep.slos), "goodput/s", "range", "GPUs", "/s/GPU",
              "good req/$"):
        good.add_column(c, justify="left" if c in (*by, "range") else "right")
    errors = []
    for g in rep.goodput:
        r = g.row()
        if g.result is None or r["goodput_rps"] is None:
            errors.append(f"{' '.join(labels(g.row()))}: {r['error']}")
            continue
        fr = r["slo_fractions"]
        span = ("none completed" if not r["requests"] else "exact" if r["exact"] else
                f"{_fmt(r['goodput_rps_lower'])}..{_fmt(r['goodput_rps_upper'])}")
        good.add_row(*labels(r), _fmt(r["requests_per_s"]),
                     *(_fmt(fr[k], 100.0) for k in rep.slos), _fmt(r["goodput_rps"]), span, _fmt(r["gpus"]),
                     _fmt(r["goodput_rps_per_gpu"]), _fmt(r["good_requests_per_usd"]))
    console.print(good)
    if any(g.result is not None and g.result.fraction is not None and not g.result.exact for g in rep.goodput):
        what = "independence estimate" if rep.estimate == "independent" else f"{rep.estimate} Fréchet bound"
        console.print(f"goodput/s is the {what}: engines export each latency's histogram, not joint per-request "
                      "values, so the share meeting every SLO lies in the range shown (docs/serving.md).")
    for e in errors:
        console.print(f"[yellow]no goodput:[/yellow] {e}")
    for n in rep.notes:
        console.print(f"[yellow]note:[/yellow] {n}")


def _print_series(series: Any, by: list[str], console: Console) -> None:
    table = Table(title="Goodput over time")
    for c in (*by, "from (UTC)", "h", "req/s", "goodput/s", "range"):
        table.add_column(c, justify="left" if c in (*by, "from (UTC)", "range") else "right")
    for r in series.iter_rows(named=True):
        lab = [_short(r[k]) if k == "model" else _fmt(r[k]) for k in by]
        if r["goodput_rps"] is None:
            table.add_row(*lab, f"{r['t']:%Y-%m-%d %H:%M}", _fmt(r["seconds"] / 3600 if r["seconds"] else None),
                          "-", "-", r["error"] or "no requests")
            continue
        span = ("none completed" if not r["requests"] else "exact" if r["exact"] else
                f"{_fmt(r['goodput_rps_lower'])}..{_fmt(r['goodput_rps_upper'])}")
        table.add_row(*lab, f"{r['t']:%Y-%m-%d %H:%M}", _fmt(r["seconds"] / 3600), _fmt(r["requests_per_s"]),
                      _fmt(r["goodput_rps"]), span)
    console.print(table)


def register(app: typer.Typer, report_app: typer.Typer) -> None:
    """Add ``report serving``."""

    @report_app.command("serving")
    def serving(
        db: Annotated[Path, typer.Option("--db", help="DuckDB store file", envvar="GPUFLEET_DB")],
        window: Annotated[str, typer.Option("--window", help="window ending at the newest data: 1d, 12h, 7d")] = "1d",
        slo: Annotated[list[str] | None, typer.Option(
            "--slo", help="latency SLO KEY=SECONDS (ttft, tpot, e2e, queue); repeat for several "
            "[default: ttft=2 tpot=0.2]")] = None,
        estimate: Annotated[str, typer.Option(
            help="goodput reported with several SLOs: lower, independent or upper")] = "lower",
        kv_threshold: Annotated[float, typer.Option(help="KV-cache usage counted as pressure")] = 0.9,
        by: Annotated[str, typer.Option("--by", help="group by model (and engine), service, namespace, cluster "
                                        "or pod")] = "model",
        match: Annotated[list[str] | None, typer.Option(
            "--match", help="keep series with LABEL=VALUE (model, engine, service, namespace, cluster, pod)")]
        = None,
        catalog: Annotated[Path | None, typer.Option("--catalog", help="price catalog YAML (default: shipped)")]
        = None,
        every: Annotated[str | None, typer.Option(
            "--every", help="also goodput per step of this length (1h, 30m, 1d)")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """Tokens/s, prefix cache, KV-cache pressure, preemptions, queueing and goodput per model and engine.

        Goodput is requests/s meeting every --slo; with several SLOs it is bounded (docs/serving.md).
        """
        if estimate not in ESTIMATES:
            raise _fail(f"--estimate {estimate!r}: use one of {', '.join(ESTIMATES)}")
        if not db.exists():
            raise _fail(f"--db {db}: no such store file")
        if not 0 < kv_threshold <= 1:
            raise _fail(f"--kv-threshold {kv_threshold:g}: use a KV-cache usage ratio in (0, 1], e.g. 0.9")
        if by not in BY:
            raise _fail(f"--by {by!r}: use one of {', '.join(BY)}")
        try:
            length = parse_window(window)
            slos = parse_slos(slo or DEFAULT_SLOS)
            selector = parse_matchers(match or [])
            step = dt.timedelta(hours=1) if every is None else _step(every)
            cat = load_catalog(catalog)
        except (ValueError, CatalogError) as exc:
            raise _fail(str(exc)) from None
        try:
            with open_readonly(db) as con:
                src = ServingSource(con)
                rep = serving_report(src, length, slos, cat, estimate=cast(Estimate, estimate),
                                     kv_threshold=kv_threshold, by=BY[by], selector=selector)
                series = None if every is None else goodput_over_time(
                    src, length, slos, step, estimate=cast(Estimate, estimate), by=BY[by], selector=selector)
        except (ValueError, GoodputError, StoreError) as exc:
            raise _fail(f"--db {db}: {exc}") from None
        if as_json:
            data = rep.to_dict()
            if series is not None:
                data["goodput_series"] = series.to_dicts()
            typer.echo(json.dumps(_clean(data), default=str))
            return
        console = Console()
        if not console.is_terminal:
            console.width = max(console.width, 120)
        _print(rep, console)
        if series is not None:
            _print_series(series, list(rep.by), console)
