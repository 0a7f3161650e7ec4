"""Whether a group's histograms describe the same requests: every engine must observe every SLO (pure).

Grouping by service, namespace or cluster can put engines with different histograms together (SGLang
exports no per-request TPOT histogram). A marginal fraction from only some of the group's engines would
count other requests than the rest, so such a group gets a reason instead of goodput.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gpufleet.analytics.slo.catalog import LATENCY

__all__ = ["coverage_problem", "e2e_counts_all"]


def coverage_problem(slos: Mapping[str, float], observed: Mapping[str, set[str]], present: Iterable[str]
                     ) -> str | None:
    """Why goodput cannot be computed for a group, or ``None``.

    ``observed`` maps an SLO key to the engines that have its histogram in the window; ``present`` lists
    every engine of the group.
    """
    engines = sorted(present)
    for key, threshold in slos.items():
        for engine in engines:
            if engine not in observed.get(key, set()):
                hint = "choose SLOs it has" if len(engines) == 1 else "group by model or --match engine=..."
                return (f"SLO {key}<={threshold:g}s: {engine} has no {LATENCY[key].description} histogram in the "
                        f"window; {hint}")
    return None


def e2e_counts_all(observed: Mapping[str, set[str]], present: Iterable[str]) -> bool:
    """True when every engine of the group observes end-to-end latency, so its count is the completed requests."""
    return set(present) <= observed.get("e2e", set())
