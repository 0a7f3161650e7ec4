"""What the probe runner asks NVML: other compute processes on a GPU, its PCIe link, the driver version.

Every call degrades to "unknown" (None) when NVML or the field is not available.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["NvmlInfo"]


class NvmlInfo:
    """Lazy NVML access; ``available`` is False when the library cannot start."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self.available = False
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self.available = True
        except Exception:  # noqa: BLE001 - no driver, no library: every answer is "unknown"
            self._nvml = None

    def _handle(self, uuid: str) -> Any:
        if not self._nvml:
            return None
        try:
            return self._nvml.nvmlDeviceGetHandleByUUID(uuid)
        except Exception:  # noqa: BLE001
            return None

    def other_processes(self, uuid: str) -> list[int] | None:
        """PIDs of compute processes on the GPU other than this one; None when NVML cannot tell."""
        h = self._handle(uuid)
        if h is None:
            return None
        try:
            procs = self._nvml.nvmlDeviceGetComputeRunningProcesses(h)
        except Exception:  # noqa: BLE001
            return None
        mine = os.getpid()
        return sorted({int(p.pid) for p in procs if int(p.pid) != mine})

    def pcie_link(self, uuid: str) -> tuple[int, int] | None:
        """(generation, lanes) of the GPU's PCIe link at its maximum (idle links train down); None if unknown."""
        h = self._handle(uuid)
        if h is None:
            return None
        try:
            gen = int(self._nvml.nvmlDeviceGetMaxPcieLinkGeneration(h))
            width = int(self._nvml.nvmlDeviceGetMaxPcieLinkWidth(h))
        except Exception:  # noqa: BLE001
            return None
        return (gen, width) if gen > 0 and width > 0 else None

    def driver_version(self) -> str | None:
        """The driver version string, or None."""
        if not self._nvml:
            return None
        try:
            v = self._nvml.nvmlSystemGetDriverVersion()
            return v.decode() if isinstance(v, bytes) else str(v)
        except Exception:  # noqa: BLE001
            return None
