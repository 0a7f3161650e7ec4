"""Start the app: ``streamlit run`` on :mod:`gpufleet.dashboards.app` with the store path (read-only)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

__all__ = ["launch", "command", "APP"]

APP = Path(__file__).with_name("app.py")


def command(db: Path, port: int, *, address: str = "127.0.0.1", headless: bool = True) -> list[str]:
    """The ``streamlit run`` command line for ``db`` on ``address:port``."""
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.port", str(port), "--server.address", address,
            "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
            "--", "--db", str(Path(db).resolve())]


def launch(db: Path, port: int = 8501, *, address: str = "127.0.0.1") -> None:
    """Serve the app on ``address:port`` until interrupted (blocking).

    Raises ImportError when Streamlit (the ``app`` extra) is missing and FileNotFoundError for a missing store.
    """
    if importlib.util.find_spec("streamlit") is None:
        raise ImportError("the dashboard needs the 'app' extra: pip install 'gpufleet[app]'")
    if not Path(db).exists():
        raise FileNotFoundError(f"store {db} does not exist (create it with `gpufleet demo` or `gpufleet ingest`)")
    print(f"gpufleet dashboard on http://{address}:{port} (store {db}, read-only); Ctrl-C stops it", flush=True)
    proc = subprocess.Popen(command(Path(db), port, address=address))
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
