"""Typed values that flow from exposition text to the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["Labels", "Sample", "MetricFamily", "ParseError", "Exemplar", "freeze_labels"]

Labels = tuple[tuple[str, str], ...]
"""Label pairs sorted by name: hashable and canonical."""


def freeze_labels(labels: dict[str, str]) -> Labels:
    """Return the canonical, sorted form of a label dict."""
    return tuple(sorted(labels.items()))


class Exemplar(NamedTuple):
    """An OpenMetrics exemplar attached to a sample."""

    labels: Labels
    value: float
    timestamp: float | None


class Sample(NamedTuple):
    """One exposed sample: ``name`` is the sample name (e.g. ``x_bucket``), timestamps in seconds."""

    name: str
    labels: Labels
    value: float
    timestamp: float | None = None
    exemplar: Exemplar | None = None


@dataclass
class MetricFamily:
    """A metric family: its declared type and every sample that belongs to it."""

    name: str
    type: str = "untyped"
    help: str = ""
    unit: str = ""
    samples: list[Sample] = field(default_factory=list)


@dataclass(frozen=True)
class ParseError:
    """A line that could not be used, and why. ``line`` is 1-based."""

    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}: {self.text[:120]!r}"
