"""Start the app: ``streamlit run`` on :mod:`gpufleet.dashboards.app` over a read-only store, warmed at start."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

__all__ = ["launch", "command", "check_charts", "options", "stop", "APP"]

APP = Path(__file__).with_name("app.py")


def options(port: int, *, address: str = "127.0.0.1", headless: bool = True) -> list[str]:
    """The ``streamlit run`` options the app is served with: ``address:port``, no usage stats or file watcher."""
    return ["--server.port", str(port), "--server.address", address,
            "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]


def command(db: Path, port: int, *, address: str = "127.0.0.1", headless: bool = True,
            warm: str | None = None, charts: str | None = None) -> list[str]:
    """The command line serving the app over ``db`` on ``address:port`` (``streamlit run`` behind a warm-up).

    ``warm`` lists the time ranges whose default views are computed at start (see :mod:`serve`); ``charts``
    picks the chart library (see :data:`context.CHARTS`).
    """
    return [sys.executable, "-m", "gpufleet.dashboards.serve", *options(port, address=address, headless=headless),
            "--", "--db", str(Path(db).resolve()), *(["--warm", warm] if warm is not None else []),
            *(["--charts", charts] if charts is not None else [])]


def check_charts(charts: str) -> None:
    """Raise ValueError for a chart library the app does not offer, ImportError when its package is missing."""
    from gpufleet.dashboards.context import valid_charts

    valid_charts(charts)
    if charts == "plotly" and importlib.util.find_spec("plotly") is None:
        raise ImportError("--charts plotly needs the 'plotly' extra: pip install 'gpufleet[app,plotly]'")


def launch(db: Path, port: int = 8501, *, address: str = "127.0.0.1", warm: str | None = None,
           charts: str | None = None) -> None:
    """Serve the app on ``address:port`` until interrupted (blocking).

    Raises ImportError when Streamlit (the ``app`` extra) or the package of ``charts`` is missing, ValueError for
    a range ``warm`` names that the app does not offer or an unknown ``charts``, and FileNotFoundError for a
    missing store.
    """
    if importlib.util.find_spec("streamlit") is None:
        raise ImportError("the dashboard needs the 'app' extra: pip install 'gpufleet[app]'")
    if charts is not None:
        check_charts(charts)
    if warm is not None:
        from gpufleet.dashboards.warmup import parse_ranges

        parse_ranges(warm)
    if not Path(db).exists():
        raise FileNotFoundError(f"store {db} does not exist (create it with `gpufleet demo` or `gpufleet ingest`)")
    print(f"gpufleet dashboard on http://{address}:{port} (store {db}, read-only); Ctrl-C stops it", flush=True)
    proc = subprocess.Popen(command(Path(db), port, address=address, warm=warm, charts=charts))
    try:
        proc.wait()
    except KeyboardInterrupt:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """End a server started from :func:`command`: SIGTERM, then SIGKILL if it is still up after ``timeout`` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
