"""``gpufleet dashboard``: serve the Streamlit app over a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer, report_app: typer.Typer) -> None:
    """Add ``dashboard`` to the ``gpufleet`` command."""

    @app.command("dashboard")
    def dashboard(
        db: Annotated[Path, typer.Option("--db", help="DuckDB store file (opened read-only).", envvar="GPUFLEET_DB")],
        port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
        address: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 to serve other hosts).")] = "127.0.0.1",
        warm: Annotated[str, typer.Option(
            help="Time ranges whose default views are computed when the server starts, comma-separated "
                 "(6h, 1d, 7d, 30d, 90d, all); empty: none.")] = "7d,all",
        charts: Annotated[str, typer.Option(
            help="Chart library: vega (Vega-Lite; a new tab opens about a second sooner) or plotly "
                 "(needs the 'plotly' extra).")] = "vega",
    ) -> None:
        """Open the FinOps app (Fleet, Utilization, Cost, SLOs, Capacity, Probes, Reliability) on a store."""
        from gpufleet.main import fail

        try:
            from gpufleet.dashboards.launch import launch
        except ImportError:
            raise fail("the dashboard needs the 'app' extra: pip install 'gpufleet[app]'") from None
        try:
            launch(db, port, address=address, warm=warm, charts=charts)
        except (ImportError, ValueError, FileNotFoundError) as exc:
            raise fail(str(exc)) from None
