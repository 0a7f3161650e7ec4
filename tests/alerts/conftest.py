"""Shared test helpers for alerts: a real Alertmanager (Debian's ``prometheus-alertmanager``) on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    """GET ``url`` and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@contextmanager
def alertmanager(tmp: Path, config: str) -> Iterator[str]:
    """Run Alertmanager with ``config`` (YAML text); yield its base URL."""
    port = free_port()
    cfg = tmp / "alertmanager.yml"
    cfg.write_text(config)
    proc = subprocess.Popen(
        ["prometheus-alertmanager", f"--config.file={cfg}", f"--storage.path={tmp / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "alertmanager exited") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture()
def start_alertmanager() -> Any:
    """The ``alertmanager(tmp, config)`` context manager, for tests that need a real Alertmanager."""
    return alertmanager


@pytest.fixture()
def http_json() -> Any:
    """``get_json(url)``."""
    return get_json


@pytest.fixture()
def free_tcp_port() -> int:
    """A loopback TCP port free right now."""
    return free_port()
