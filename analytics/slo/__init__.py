"""Serving SLOs: spec loading, SLIs from histograms and counters, error budgets, burn rates and goodput."""

from __future__ import annotations

from gpufleet.analytics.slo.spec import SloSpec, SpecError, SpecProblem, load_specs, parse_specs

__all__ = ["SloSpec", "SpecError", "SpecProblem", "load_specs", "parse_specs"]
