"""Serving analytics: DistServe goodput from latency histograms, and serving efficiency per model and engine.

Public API (import from here; the SLO report and the app use these):

Goodput (:mod:`.goodput`, pure):
    ``goodput(histograms, slos, window_s=..., requests=None, gpus=None, cost_usd=None, estimate="lower")``
        -> :class:`Goodput`: requests/s meeting every latency SLO, per GPU and per GPU-dollar.
        ``histograms`` maps an SLO key (``ttft``, ``tpot``, ``e2e``, ``queue``) to ``(bounds, cumulative)``;
        ``slos`` maps the key to its threshold in seconds.
    ``joint_fraction(marginals)`` -> :class:`JointFraction`: Fréchet ``lower``/``upper`` and ``independent``.
    ``parse_slos(["ttft=2", "tpot=0.2"])``, ``check_slos(slos)``; errors are :class:`GoodputError`.

Histograms (:mod:`.histograms`, pure):
    ``window_increase(samples, by)`` (cumulative counters -> increase, Prometheus reset rule),
    ``bucket_totals(buckets, by)`` (bucket increases -> cumulative histogram per group),
    ``histogram_quantile(q, bounds, cumulative)``.

Coverage (:mod:`.coverage`, pure): ``coverage_problem(slos, observed, present)`` says why a group whose
engines do not all observe every SLO gets no goodput; ``e2e_counts_all`` whether e2e counts its requests.

Efficiency (:mod:`.efficiency`, pure over polars frames):
    ``efficiency(counters, gauges, queue, window_s)`` -> one row per model and engine with the columns of
    ``COLUMNS``; also ``token_rates``, ``kv_pressure``, ``concurrency``, ``queueing``.

Store and report (:mod:`.query`, :mod:`.report`; read-only I/O):
    ``ServingSource(con)`` reads window counters, gauges, buckets and GPU time;
    ``serving_report(source, length, slos, catalog, by=("model", "engine"), selector=None)``
        -> :class:`ServingReport`; ``by`` and ``selector`` use the labels of ``LABELS``.
    ``goodput_over_time(source, length, slos, step, ...)`` -> goodput per group and step (polars frame);
    its pure core is ``goodput_series`` (:mod:`.series`).

What histograms can and cannot tell is documented in docs/serving.md.
"""

from __future__ import annotations

from gpufleet.analytics.serving.coverage import coverage_problem, e2e_counts_all
from gpufleet.analytics.serving.efficiency import COLUMNS, concurrency, efficiency, kv_pressure, queueing, token_rates
from gpufleet.analytics.serving.goodput import (
    ESTIMATES,
    Estimate,
    Goodput,
    GoodputError,
    JointFraction,
    Marginal,
    check_slos,
    goodput,
    joint_fraction,
    marginal,
    parse_slos,
)
from gpufleet.analytics.serving.histograms import bucket_totals, histogram_quantile, window_increase
from gpufleet.analytics.serving.query import LABELS, ServingSource, Window
from gpufleet.analytics.serving.report import GroupGoodput, ServingReport, goodput_over_time, gpu_cost, serving_report
from gpufleet.analytics.serving.series import goodput_series

__all__ = [
    "coverage_problem", "e2e_counts_all",
    "COLUMNS", "concurrency", "efficiency", "kv_pressure", "queueing", "token_rates",
    "ESTIMATES", "Estimate", "Goodput", "GoodputError", "JointFraction", "Marginal", "check_slos", "goodput",
    "joint_fraction", "marginal", "parse_slos",
    "bucket_totals", "histogram_quantile", "window_increase",
    "LABELS", "ServingSource", "Window",
    "GroupGoodput", "ServingReport", "goodput_over_time", "gpu_cost", "serving_report", "goodput_series",
]
