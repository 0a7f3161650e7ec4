"""A scrape target: a name and the labels attached to everything it exposes."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Target"]


@dataclass(frozen=True)
class Target:
    """``name`` identifies the target in the store (e.g. ``node-03:9400``)."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
