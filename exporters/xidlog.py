"""XID events as JSON lines in a file, one event a line, for log shippers and ``gpufleet`` reports.

Each line holds the time, node, GPU UUID and index, the XID, and its catalogue entry (severity,
failure class, meaning, action), so the event stays readable after the counters have moved on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gpufleet.core.naming import xid_info
from gpufleet.exporters.backend import XidEvent

__all__ = ["XidLog"]


class XidLog:
    """Callable sink for :class:`XidEvent`: appends one JSON object a line to ``path``."""

    def __init__(self, path: str | Path, *, node: str, gpu_index: Callable[[str], int | None] = lambda _u: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.node = node
        self.gpu_index = gpu_index
        self.clock = clock
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch(exist_ok=True)
        except OSError as exc:
            raise ValueError(f"--xid-log {self.path}: cannot write there ({exc.strerror})") from None

    def record(self, event: XidEvent) -> dict[str, object]:
        """The JSON object written for ``event``."""
        info = xid_info(event.xid)
        return {"time": self.clock(), "node": self.node, "gpu_uuid": event.uuid, "gpu": self.gpu_index(event.uuid),
                "xid": event.xid, "severity": info.severity, "failure_class": info.failure_class,
                "meaning": info.meaning, "action": info.action}

    def __call__(self, event: XidEvent) -> None:
        line = json.dumps(self.record(event), sort_keys=True) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line)
