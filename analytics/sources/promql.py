"""PromQL for each frame a :class:`~gpufleet.analytics.sources.base.Source` answers (pure strings).

Hourly frames are ``query_range`` answers at whole hours ``T`` with a step of one hour; every range
selector is shifted by one millisecond so that the point at ``T`` covers the samples in
``[T - 1h, T)``, the same half-open bucket as the store's hourly rollups (``ts = T - 1h``). Both
Prometheus and VictoriaMetrics evaluate these the same way.
"""

from __future__ import annotations

__all__ = ["HOUR_MS", "selector", "hourly_sum", "hourly_count", "hourly_delta", "by", "duration"]

HOUR_MS = 3_600_000
_SHIFT = "offset 1ms"
_PREV = f"offset {HOUR_MS + 1}ms"


def duration(seconds: float) -> str:
    """A PromQL duration in whole milliseconds (``2592000000ms``), which every engine accepts."""
    return f"{max(round(seconds * 1000), 1)}ms"


def selector(metric: str, matchers: dict[str, str] | None = None) -> str:
    """``metric{k="v",...}``; a value starting with ``!=`` or ``=~`` keeps its operator."""
    parts = []
    for k, v in sorted((matchers or {}).items()):
        op, val = ("!=", v[2:]) if v.startswith("!=") else ("=~", v[2:]) if v.startswith("=~") else ("=", v)
        esc = val.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'{k}{op}"{esc}"')
    return metric + ("{" + ",".join(parts) + "}" if parts else "")


def by(labels: tuple[str, ...], expr: str, agg: str = "sum") -> str:
    """``agg by (labels) (expr)``."""
    return f"{agg} by ({', '.join(labels)}) ({expr})"


def hourly_sum(sel: str) -> str:
    """Sum of the samples of ``sel`` in the hour before each evaluation time."""
    return f"sum_over_time({sel}[1h] {_SHIFT})"


def hourly_count(sel: str) -> str:
    """Number of samples of ``sel`` in the hour before each evaluation time."""
    return f"count_over_time({sel}[1h] {_SHIFT})"


def hourly_delta(sel: str) -> str:
    """What a counter gained in the hour, without extrapolation: the sum of its sample-to-sample deltas.

    The newest value of the hour minus the newest of the hour before; where the counter has no value the
    hour before (it started in this hour) it is the rise within the hour; where it went down (a reset) it
    is ``increase``'s estimate.
    """
    last = f"last_over_time({sel}[1h] {_SHIFT})"
    prev = f"last_over_time({sel}[1h] {_PREV})"
    within = f"(max_over_time({sel}[1h] {_SHIFT}) - min_over_time({sel}[1h] {_SHIFT}))"
    reset = f"increase({sel}[1h] {_SHIFT})"
    return f"(({last} - {prev}) >= 0) or ({reset} and ({last} < {prev})) or {within}"
