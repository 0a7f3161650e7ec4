"""The app's filters and their URL form (pure: no Streamlit), so a view can be shared as a link."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

__all__ = ["RANGES", "Filters", "from_query", "to_query", "window"]

# Time ranges offered, counted back from the end (the newest scrape in the store unless ``end`` is set).
RANGES: dict[str, timedelta | None] = {
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "all": None,
}
_TEXT = ("cluster", "team", "gpu", "model")


@dataclass(frozen=True)
class Filters:
    """What every page is filtered by. Empty strings mean "all"."""

    range: str = "7d"
    end: str = ""  # ISO date-time in UTC; empty: the newest data
    cluster: str = ""
    team: str = ""
    gpu: str = ""  # GPU model, e.g. "NVIDIA H100 80GB HBM3"
    model: str = ""  # served model, e.g. "meta-llama/Llama-3.1-8B-Instruct"

    def key(self) -> tuple[str, ...]:
        """A hashable cache key."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def opt(self, name: str) -> str | None:
        """The filter value, or None for "all"."""
        value = getattr(self, name)
        return value or None


def _parse_end(text: str) -> str:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return ""
    return text


def from_query(params: dict[str, Any]) -> tuple[Filters, list[str]]:
    """Filters from URL query parameters, and a message for each parameter that was ignored and why."""
    problems: list[str] = []
    values: dict[str, str] = {}

    def one(name: str) -> str | None:
        raw = params.get(name)
        if isinstance(raw, list):
            raw = raw[-1] if raw else None
        return None if raw is None else str(raw).strip()

    rng = one("range")
    if rng is not None:
        if rng in RANGES:
            values["range"] = rng
        else:
            problems.append(f"range={rng!r} is not one of {', '.join(RANGES)}; showing 7d")
    end = one("end")
    if end:
        parsed = _parse_end(end)
        if parsed:
            values["end"] = parsed
        else:
            problems.append(f"end={end!r} is not an ISO date-time (e.g. 2026-01-07T12:00); showing the newest data")
    for name in _TEXT:
        v = one(name)
        if v:
            values[name] = v
    return replace(Filters(), **values), problems


def to_query(filters: Filters) -> dict[str, str]:
    """URL query parameters for ``filters``; defaults are left out so links stay short."""
    default = Filters()
    return {f.name: getattr(filters, f.name) for f in fields(filters)
            if getattr(filters, f.name) != getattr(default, f.name)}


def window(filters: Filters, first: datetime, last: datetime) -> tuple[datetime, datetime]:
    """The ``[start, end]`` the filters select inside a store holding ``[first, last]``."""
    end = last
    if filters.end:
        end = min(max(datetime.fromisoformat(filters.end).replace(tzinfo=None), first), last)
    span = RANGES.get(filters.range, RANGES["7d"])
    start = first if span is None else max(first, end - span)
    return start, end
