import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from gpufleet.core.simfleet import FleetConfig
from gpufleet.history import HistoryPlan, build_history

END = 1_767_830_400.0  # 2026-01-08 00:00 UTC
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboards"


def gpu_states() -> pl.DataFrame:
    """A long frame for the chart tests: GPUs per model and state."""
    return pl.DataFrame({"model": ["H100", "H100", "A100", "A100"], "state": ["healthy", "lost"] * 2,
                         "gpus": [7.0, 1.0, 4.0, 0.0]})


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> Path:
    """A 4-node (32-GPU), 2-day simulated store, every 600 s, through the real pipeline."""
    path = tmp_path_factory.getbasetemp() / "fleet-demo.duckdb"
    if not path.exists():
        build_history(path, FleetConfig(nodes=4), HistoryPlan(days=2, step_s=600, end=END))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def streamlit_url(demo_store):
    """The app served by ``streamlit run`` on a free loopback port over the demo store; always stopped."""
    from gpufleet.dashboards.launch import command

    port = free_port()
    proc = subprocess.Popen(command(demo_store, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "GPUFLEET_DB": ""})
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


