"""Backfill from any Prometheus-compatible HTTP API (Prometheus, VictoriaMetrics, Thanos, Mimir).

``query_range`` answers a matrix; each (instance, timestamp) of it becomes one exposition
text, typed from ``/api/v1/metadata`` (or, where a server has none, from the names), and goes
through the same parser and adapters as a live scrape. Windows are written in order, each in
one transaction together with the progress record in the store's ``meta`` table, so an
interrupted import resumes after the last window that landed and never writes one twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from gpufleet.collectors.ingest import Scrape, to_batch
from gpufleet.collectors.target import Target
from gpufleet.core.simfleet.render import label_str
from gpufleet.core.store import StoreWriter, WriteReport

__all__ = ["ImportError_", "ImportReport", "ProgressWriter", "import_range", "matrix_to_scrapes", "progress_key",
           "fetch_types"]

TARGET_LABELS = ("instance", "job")


class ImportError_(RuntimeError):  # noqa: N801 - ImportError is a builtin
    """The remote API cannot be read, or answered an error."""


class ProgressWriter(StoreWriter):
    """A :class:`StoreWriter` that records one ``meta`` key in the same transaction as the batches."""

    pending: tuple[str, str] | None = None

    def _insert(self, rows: Any, new_series: dict[Any, Any], new_state: dict[Any, Any]) -> None:
        super()._insert(rows, new_series, new_state)
        if self.pending is not None:
            self.con.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             list(self.pending))

    def write_with_progress(self, batches: list[Any], key: str, value: str) -> WriteReport:
        """Write ``batches`` and ``meta[key] = value`` atomically."""
        self.pending = (key, value)
        try:
            report = self.write(batches)
        finally:
            self.pending = None
        if report.landed == 0:  # nothing to protect: every batch had landed already (or there were none)
            self.con.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             [key, value])
        return report

    def progress(self, key: str) -> float | None:
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return float(row[0]) if row else None


def progress_key(url: str, match: str, step: float) -> str:
    """The ``meta`` key remembering how far an import of ``match`` from ``url`` got."""
    return f"import:{url.rstrip('/')}|{match}|{step:g}"


def fetch_types(client: httpx.Client, base: str) -> dict[str, str]:
    """Family -> type from ``/api/v1/metadata``; empty when the server has none."""
    try:
        resp = client.get(f"{base}/api/v1/metadata")
        if resp.status_code != 200:
            return {}
        data = resp.json().get("data") or {}
    except (httpx.HTTPError, ValueError):
        return {}
    return {name: entries[0].get("type", "untyped") for name, entries in data.items() if entries}


def _family_types(names: set[str], types: dict[str, str]) -> dict[str, str]:
    """Type of each family present, from metadata or, lacking it, from the sample names."""
    out: dict[str, str] = {}
    for n in names:
        for suffix in ("_bucket", "_sum", "_count", "_total", "_created", ""):
            if suffix and not n.endswith(suffix):
                continue
            base = n[: len(n) - len(suffix)] if suffix else n
            t = types.get(base)
            if t in ("histogram", "summary") and suffix in ("_bucket", "_sum", "_count", "_created"):
                out[base] = t
                break
            if t == "counter" and suffix in ("_total", ""):
                out[base] = t
                break
            if t is not None and not suffix:
                out[base] = t
                break
        else:
            if n.endswith("_bucket"):
                base = n[: -len("_bucket")]
                out[base] = "histogram"
            elif n.endswith("_total"):
                out.setdefault(n[: -len("_total")], "counter")
    return out


def matrix_to_scrapes(result: list[dict], types: dict[str, str], step: float) -> list[Scrape]:
    """Turn a ``query_range`` matrix into one scrape per (instance, timestamp), typed."""
    names = {r["metric"].get("__name__", "") for r in result}
    fam_types = _family_types(names, types)
    # (instance, job) -> ts -> lines, grouped by family so TYPE lines precede their samples
    grouped: dict[tuple[str, str], dict[float, dict[str, list[str]]]] = {}
    for r in result:
        metric = dict(r["metric"])
        name = metric.pop("__name__", "")
        if not name:
            continue
        instance = metric.pop("instance", "") or "unknown"
        job = metric.pop("job", "")
        family = _family_of(name, fam_types)
        labels = label_str(sorted(metric.items()))
        per_ts = grouped.setdefault((instance, job), {})
        for ts, value in r.get("values", []):
            per_ts.setdefault(float(ts), {}).setdefault(family, []).append(f"{name}{labels} {value}")
    scrapes = []
    for (instance, job), per_ts in grouped.items():
        target = Target(instance, {"job": job} if job else {})
        for ts in sorted(per_ts):
            parts = []
            for family, lines in per_ts[ts].items():
                t = fam_types.get(family)
                if t:
                    parts.append(f"# TYPE {family} {t}")
                parts.extend(lines)
            scrapes.append(Scrape(target, ts, "\n".join(parts) + "\n", step))
    return scrapes


def _family_of(name: str, fam_types: dict[str, str]) -> str:
    for suffix in ("_bucket", "_sum", "_count", "_created", "_total"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if base in fam_types:
                return base
    return name


@dataclass
class ImportReport:
    """What an import did."""

    windows: int = 0
    skipped_windows: int = 0
    scrapes: int = 0
    samples: int = 0
    series: int = 0


def import_range(writer: ProgressWriter, url: str, match: str, start: float, end: float, step: float, *,
                 window_points: int = 240, client: httpx.Client | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Backfill ``match`` over [start, end] at ``step`` seconds, resuming where a previous run stopped."""
    if end < start:
        raise ValueError(f"--end {end:g} is before --start {start:g}")
    if step <= 0:
        raise ValueError("--step must be more than 0")
    base = url.rstrip("/")
    key = progress_key(base, match, step)
    own = client is None
    http = client or httpx.Client(timeout=60.0)
    report = ImportReport()
    try:
        types = fetch_types(http, base)
        done = writer.progress(key)
        size = step * window_points
        n_windows = max(math.ceil((end - start + step) / (size + step)), 1)
        t0 = start
        i = 0
        while t0 <= end:
            t1 = min(t0 + size, end)
            i += 1
            if done is not None and t1 <= done:
                report.skipped_windows += 1
            else:
                result = _query(http, base, match, t0, t1, step)
                scrapes = matrix_to_scrapes(result, types, step)
                batches = [to_batch(s) for s in scrapes]
                w = writer.write_with_progress(batches, key, repr(t1))
                report.windows += 1
                report.scrapes += len(scrapes)
                report.samples += w.samples
                report.series += len(result)
            if on_progress is not None:
                on_progress(i, n_windows)
            t0 = t1 + step
    finally:
        if own:
            http.close()
    return report


def _query(http: httpx.Client, base: str, match: str, t0: float, t1: float, step: float) -> list[dict]:
    try:
        resp = http.get(f"{base}/api/v1/query_range", params={"query": match, "start": repr(t0), "end": repr(t1),
                                                              "step": f"{step:g}"})
    except httpx.HTTPError as exc:
        raise ImportError_(f"cannot reach {base}: {exc}") from exc
    try:
        body = resp.json()
    except ValueError:
        raise ImportError_(f"{base}/api/v1/query_range answered HTTP {resp.status_code} without JSON") from None
    if resp.status_code != 200 or body.get("status") != "success":
        raise ImportError_(f"{base} rejected the query {match!r}: {body.get('error', resp.status_code)}")
    data = body.get("data") or {}
    if data.get("resultType") != "matrix":
        raise ImportError_(f"{base} answered a {data.get('resultType')!r}, not a matrix; use a series selector")
    return list(data.get("result") or [])
