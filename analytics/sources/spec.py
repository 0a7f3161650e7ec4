"""``--source`` strings: ``duckdb:PATH``, ``prometheus:URL`` or ``parquet:URI`` -> a Source."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from gpufleet.analytics.cost.query import DuckDBSource
from gpufleet.analytics.slo.spec import parse_duration
from gpufleet.analytics.sources.base import Source

__all__ = ["open_source", "KINDS"]

KINDS = ("duckdb", "prometheus", "parquet")


def open_source(spec: str) -> Source:
    """Open the source ``spec`` names; a bad spec is a ValueError naming it and the accepted forms.

    ``prometheus:URL`` takes options after ``#``: ``#scrape_interval=30s`` (default 60s), the interval the
    GPU series are scraped at.
    """
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in KINDS or not rest:
        raise ValueError(f"--source {spec!r}: use duckdb:PATH, prometheus:URL or parquet:URI")
    if kind == "duckdb":
        from gpufleet.core.store.reader import open_readonly

        if not Path(rest).exists():
            raise ValueError(f"--source {spec!r}: no such store file {rest}")
        return DuckDBSource(open_readonly(rest))
    if kind == "prometheus":
        from gpufleet.analytics.sources.prometheus import PrometheusSource

        url, _, frag = rest.partition("#")
        opts = dict(urllib.parse.parse_qsl(frag))
        unknown = set(opts) - {"scrape_interval"}
        if unknown:
            raise ValueError(f"--source {spec!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                             "the only one is #scrape_interval=60s")
        return PrometheusSource(url, scrape_interval_s=_seconds(opts.get("scrape_interval", "60s"), spec))
    from gpufleet.analytics.sources.parquet import ParquetSource

    return ParquetSource(rest)


def _seconds(text: str, spec: str) -> float:
    """``30s``, ``500ms``, ``1m`` or ``15`` (seconds) -> seconds."""
    try:
        value = parse_duration(text.strip().lower())
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"--source {spec!r}: scrape_interval {text!r} must be a positive duration like 30s or 1m")
    return value
