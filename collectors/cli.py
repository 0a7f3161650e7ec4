"""``gpufleet collect`` (the scrape engine) and ``gpufleet import prometheus`` (backfill)."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "parse_time"]


def parse_time(text: str) -> float:
    """Epoch seconds, or an RFC 3339 / ISO 8601 time (``2026-01-01T00:00:00Z``)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither epoch seconds nor an ISO 8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def register(app: typer.Typer, report_app: typer.Typer) -> None:
    """Add ``collect`` and ``import prometheus`` to the CLI."""
    from gpufleet.main import console, fail

    @app.command()
    def collect(
        config: Annotated[Path, typer.Option("--config", help="Collector YAML config.")],
        duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: run until "
                                                              "interrupted).")] = None,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every failed scrape.")] = False,
    ) -> None:
        """Scrape every configured target into the store until interrupted."""
        from gpufleet.collectors.column_writer import ColumnWriter
        from gpufleet.collectors.config import ConfigError, load_config
        from gpufleet.collectors.scrape import ScrapeEngine, tls_context
        from gpufleet.core.store import StoreError

        logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, format="%(levelname)s %(message)s")
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            raise fail(str(exc)) from None
        for job in cfg.jobs:
            if job.tls is not None:
                try:
                    tls_context(job.tls)
                except ConfigError as exc:
                    raise fail(f"{config}: job {job.name}: {exc}; fix the path or the file") from None
        try:
            writer = ColumnWriter(cfg.store)
        except StoreError as exc:
            raise fail(str(exc)) from None
        last = [0.0]

        def tick(engine: ScrapeEngine) -> None:
            now = engine.clock()
            if now - last[0] < 15:
                return
            last[0] = now
            up = sum(1 for s in engine.targets.values() if s.up)
            console.print(f"targets {up}/{len(engine.targets)} up, scrapes {engine.stats.scrapes} "
                          f"(failed {engine.stats.failures}, missed {engine.stats.missed}), "
                          f"samples {engine.stats.written.samples} written")

        async def main() -> None:
            engine = ScrapeEngine(cfg, writer)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, engine.stop)
            await engine.run(duration, on_tick=tick)
            tick_final = engine.stats
            console.print(f"stopped: {tick_final.scrapes} scrapes, {tick_final.written.samples} samples written, "
                          f"{tick_final.written.skipped} batches already in the store")

        try:
            asyncio.run(main())
        finally:
            writer.close()

    import_app = typer.Typer(help="Backfill history from other systems.", no_args_is_help=True)
    app.add_typer(import_app, name="import")

    @import_app.command("prometheus")
    def import_prometheus(
        db: Annotated[Path, typer.Option("--db", help="DuckDB store file.", envvar="GPUFLEET_DB")],
        url: Annotated[str, typer.Option(help="Base URL of a Prometheus-compatible API.")],
        match: Annotated[list[str], typer.Option(help="Series selector; repeat for several.")],
        start: Annotated[str, typer.Option(help="Epoch seconds or ISO 8601.")],
        end: Annotated[str, typer.Option(help="Epoch seconds or ISO 8601.")],
        step: Annotated[float, typer.Option(help="Resolution in seconds.")] = 60.0,
        window: Annotated[int, typer.Option(help="Points per query and per transaction.")] = 240,
    ) -> None:
        """Import ``query_range`` results through the collectors' adapters; resumable."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

        from gpufleet.collectors.importer import ImportError_, ProgressWriter, import_range
        from gpufleet.core.store import StoreError

        try:
            t0, t1 = parse_time(start), parse_time(end)
        except ValueError as exc:
            raise fail(str(exc)) from None
        try:
            writer = ProgressWriter(db)
        except StoreError as exc:
            raise fail(str(exc)) from None
        try:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=console) as progress:
                for selector in match:
                    task = progress.add_task(selector, total=None)

                    def step_done(i: int, n: int, task: TaskID = task) -> None:
                        progress.update(task, completed=i, total=n)

                    rep = import_range(writer, url, selector, t0, t1, step, window_points=window,
                                       on_progress=step_done)
                    progress.console.print(f"{selector}: {rep.windows} windows imported "
                                           f"({rep.skipped_windows} already done), {rep.scrapes} scrapes, "
                                           f"{rep.samples} samples")
        except (ImportError_, ValueError) as exc:
            raise fail(str(exc)) from None
        finally:
            writer.close()
