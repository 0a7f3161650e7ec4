"""Failure taxonomy: events (XIDs and others) mapped to the classes of the Llama 3 interruption table."""

from __future__ import annotations

from gpufleet.core.naming import xid_info

__all__ = ["CATEGORIES", "category_of"]

# Report order; "software/application" covers application XIDs and software events.
CATEGORIES = ("GPU", "HBM", "SRAM", "NVLink/network", "host", "software/application")

_BY_CLASS = {"gpu": "GPU", "hbm": "HBM", "sram": "SRAM", "nvlink": "NVLink/network", "network": "NVLink/network",
             "host": "host", "software": "software/application", "application": "software/application"}
_BY_KIND = {"node_down": "host", "host": "host", "thermal": "GPU", "nccl": "NVLink/network",
            "network": "NVLink/network", "oom": "software/application", "job_failed": "software/application"}


def category_of(kind: str, code: int | None, failure_class: str | None) -> str:
    """Taxonomy category of one event: its stored failure class, else the XID catalogue, else its kind."""
    if failure_class and failure_class.lower() in _BY_CLASS:
        return _BY_CLASS[failure_class.lower()]
    if kind == "xid" and code is not None:
        return _BY_CLASS[xid_info(int(code)).failure_class]
    return _BY_KIND.get(kind, "host")
