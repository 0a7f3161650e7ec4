"""Goodput over time: the window cut into steps, goodput and its bounds per group and step (pure).

Input rows are bucket increases already assigned to a step: a sample counts in the step its timestamp
falls in, so each step boundary can shift one scrape interval of requests into the next step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import cast

import polars as pl

from gpufleet.analytics.serving.coverage import coverage_problem, e2e_counts_all
from gpufleet.analytics.serving.goodput import Estimate, GoodputError, check_slos, goodput
from gpufleet.analytics.serving.histograms import bucket_totals
from gpufleet.analytics.slo.catalog import LATENCY

__all__ = ["goodput_series", "SERIES_SCHEMA"]

SERIES_SCHEMA: dict[str, pl.DataType] = {
    "t": pl.Datetime("us"), "seconds": pl.Float64(), "requests": pl.Float64(), "requests_per_s": pl.Float64(),
    "goodput_rps": pl.Float64(), "goodput_rps_lower": pl.Float64(), "goodput_rps_upper": pl.Float64(),
    "exact": pl.Boolean(), "error": pl.String()}


def goodput_series(buckets: pl.DataFrame, slos: Mapping[str, float], seconds: Mapping[dt.datetime, float], *,
                   by: Sequence[str], estimate: Estimate = "lower") -> pl.DataFrame:
    """Goodput per ``by`` group and step.

    ``buckets`` has ``by``, ``t`` (the step's start), ``metric``, ``series_id``, ``le`` and ``count``;
    ``seconds`` maps each step's start to the seconds of data it covers (the first and last step of a
    window may be partial). A step with no requests has no goodput (``None``), not zero; a step whose
    buckets cannot answer an SLO carries the reason in ``error``.
    """
    check_slos(slos)
    keys = list(by)
    metrics = {key: LATENCY[key].canonical for key in {*slos, "e2e"}}
    per_metric = {m: bucket_totals(buckets.filter(pl.col("metric") == m), [*keys, "t"]) for m in set(metrics.values())}
    observed: dict[str, dict[tuple[object, ...], set[str]]] = {m: {} for m in set(metrics.values())}
    if "engine" in buckets.columns and buckets.height:
        for r in buckets.group_by([*keys, "t", "metric"]).agg(_e=pl.col("engine").drop_nulls().unique()).iter_rows():
            if r[-2] in observed:
                observed[r[-2]][tuple(r[:-2])] = set(r[-1])
    steps = sorted({k for h in per_metric.values() for k in h}, key=lambda k: tuple(str(x) for x in k))
    rows = []
    for step in steps:
        *group, t = step
        hists = {k: per_metric[metrics[k]][step] for k in metrics if step in per_metric[metrics[k]]}
        secs = seconds.get(cast(dt.datetime, t))
        row: dict[str, object] = {**dict(zip(keys, group, strict=True)), "t": t, "seconds": secs}
        seen = {k: observed[metrics[k]].get(step, set()) for k in metrics}
        present = set().union(*seen.values())
        try:
            if not secs or secs <= 0:
                raise GoodputError(f"step {t} covers no time")
            problem = coverage_problem(slos, seen, present)
            if problem:
                raise GoodputError(problem)
            e2e = hists.get("e2e") if e2e_counts_all(seen, present) else None
            g = goodput(hists, slos, window_s=secs, requests=e2e[1][-1] if e2e else None, estimate=estimate)
            row.update(requests=g.requests, requests_per_s=g.request_rps, goodput_rps=g.goodput_rps,
                       goodput_rps_lower=g.rps("lower"), goodput_rps_upper=g.rps("upper"),
                       exact=g.exact if g.fraction is not None else None, error=None)
        except GoodputError as exc:
            row.update(error=str(exc))
        rows.append(row)
    schema: dict[str, pl.DataType] = {**{k: pl.String() for k in keys}, **SERIES_SCHEMA}
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
