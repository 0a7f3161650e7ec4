"""Typed NVML-like errors: one class per failure a device call can report, named for metric labels."""

from __future__ import annotations

__all__ = [
    "NvmlError", "NotSupported", "GpuIsLost", "Unknown", "Timeout", "NoPermission", "Uninitialized",
    "DriverNotLoaded", "NotFound", "NoData", "InsufficientSize", "InvalidArgument", "ERROR_KINDS", "from_nvml",
]


class NvmlError(Exception):
    """A device call failed. ``kind`` is the label value used in ``gpufleet_exporter_nvml_errors_total``."""

    kind = "unknown"
    code = 999

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.kind)


class NotSupported(NvmlError):
    """The device does not support this query (e.g. GPM before Hopper)."""

    kind, code = "not_supported", 3


class NoPermission(NvmlError):
    """The process lacks the privilege for this query."""

    kind, code = "no_permission", 4


class NotFound(NvmlError):
    """The object asked for does not exist (e.g. a MIG instance that was destroyed)."""

    kind, code = "not_found", 6


class InsufficientSize(NvmlError):
    """A buffer was too small (a process list grew between two calls)."""

    kind, code = "insufficient_size", 7


class DriverNotLoaded(NvmlError):
    """The NVIDIA kernel driver is not loaded."""

    kind, code = "driver_not_loaded", 9


class Timeout(NvmlError):
    """The call timed out."""

    kind, code = "timeout", 10


class GpuIsLost(NvmlError):
    """The GPU fell off the bus or is otherwise inaccessible."""

    kind, code = "gpu_is_lost", 15


class Uninitialized(NvmlError):
    """NVML was not initialised (or was shut down)."""

    kind, code = "uninitialized", 1


class InvalidArgument(NvmlError):
    """A bad handle or index."""

    kind, code = "invalid_argument", 2


class NoData(NvmlError):
    """No data is available yet (e.g. a counter not sampled)."""

    kind, code = "no_data", 21


class Unknown(NvmlError):
    """Anything else the driver reports."""

    kind, code = "unknown", 999


_BY_CODE: dict[int, type[NvmlError]] = {
    c.code: c for c in (NotSupported, NoPermission, NotFound, InsufficientSize, DriverNotLoaded, Timeout,
                        GpuIsLost, Uninitialized, InvalidArgument, NoData, Unknown)
}
_BY_CODE[12] = DriverNotLoaded  # library not found
_BY_CODE[13] = NotSupported  # function not found: an older driver
ERROR_KINDS: tuple[str, ...] = tuple(sorted({c.kind for c in _BY_CODE.values()}))


def from_nvml(exc: BaseException) -> NvmlError:
    """Translate a ``pynvml.NVMLError`` (or anything else) into the matching typed error."""
    if isinstance(exc, NvmlError):
        return exc
    code = getattr(exc, "value", None)
    cls = _BY_CODE.get(code, Unknown) if isinstance(code, int) else Unknown
    return cls(str(exc))
