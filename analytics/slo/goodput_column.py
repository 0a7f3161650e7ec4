"""Goodput beside each latency SLO of the report, from ``gpufleet.analytics.serving.goodput`` when installed.

For a latency SLO over per-request histograms (TTFT, TPOT, e2e, queue; not ITL, whose observations
are token gaps) the column gives the requests per second meeting that SLO, with the interpolation
bounds, and the DistServe goodput of its service: requests per second meeting *every* latency SLO
with the same selector, which histograms only bound (Fréchet lower and upper, and the independence
estimate). Rates are over the span of data inside the window. Per-GPU and per-dollar goodput need GPU
time and prices: ``gpufleet report serving`` gives them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from gpufleet.analytics.slo import store
from gpufleet.analytics.slo.catalog import LATENCY
from gpufleet.analytics.slo.spec import SloSpec

__all__ = ["GoodputHook", "goodput_column", "window_histogram"]

GoodputHook = Callable[[SloSpec, datetime, datetime], "dict[str, Any] | None"]


def window_histogram(buckets: pl.DataFrame) -> tuple[list[float], list[float], float] | None:
    """Summed cumulative histogram ``(bounds, counts, covered seconds)`` of bucket deltas; None when empty.

    Raises ValueError when the series do not share one bucket layout (their sum would be meaningless).
    """
    if buckets.is_empty():
        return None
    layouts = buckets.group_by("series_id").agg(pl.col("le").unique().sort())["le"].to_list()
    if any(layout != layouts[0] for layout in layouts):
        raise ValueError("the matching series use different bucket layouts; narrow the selector to one engine")
    summed = buckets.group_by("le").agg(pl.col("delta").sum()).sort("le")
    stamps: list[datetime] = sorted(buckets["ts"].unique().to_list())
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    step = min(gaps) if gaps else 0.0
    covered = (stamps[-1] - stamps[0]).total_seconds() + step
    return summed["le"].to_list(), summed["delta"].to_list(), covered


def goodput_column(con: duckdb.DuckDBPyConnection, specs: list[SloSpec]) -> GoodputHook | None:
    """A per-SLO goodput function for ``slo_report``, or ``None`` when the serving analytics are not installed."""
    try:
        from gpufleet.analytics.serving.goodput import GoodputError, goodput
    except ImportError:
        return None

    def slos_of(spec: SloSpec) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in specs:
            if s.latency is None or not s.latency.per_request or s.selector != spec.selector:
                continue
            key = s.latency.metric  # two thresholds on one metric: the stricter implies the other
            out[key] = min(out.get(key, math.inf), s.latency.threshold_s)
        return out

    def hook(spec: SloSpec, start: datetime, end: datetime) -> dict[str, Any] | None:
        if spec.latency is None or not spec.latency.per_request:
            return None
        slos = slos_of(spec)
        try:
            hists: dict[str, tuple[list[float], list[float]]] = {}
            covered = 0.0
            for key in slos:
                found = window_histogram(store.histogram_deltas(con, LATENCY[key].canonical, dict(spec.selector),
                                                                start, end))
                if found is not None:
                    hists[key] = (found[0], found[1])
                    covered = max(covered, found[2])
            own = spec.latency.metric
            if own not in hists or covered <= 0:
                return {"error": "no requests in the window"}
            single = goodput({own: hists[own]}, {own: spec.latency.threshold_s}, window_s=covered)
            joint = goodput(hists, {k: v for k, v in slos.items() if k in hists}, window_s=covered)
        except (GoodputError, ValueError) as exc:
            return {"error": str(exc)}
        outer = single.outer
        return {
            "rps": single.goodput_rps,
            "rps_min": single.requests * outer.lower / covered if outer else None,
            "rps_max": single.requests * outer.upper / covered if outer else None,
            "request_rps": single.request_rps,
            "service_slos": {k: v for k, v in slos.items() if k in hists},
            "service_rps_lower": joint.rps("lower"),
            "service_rps_independent": joint.rps("independent"),
            "service_rps_upper": joint.rps("upper"),
            "covered_s": covered,
        }

    return hook
