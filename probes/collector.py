"""Probe results as scrape-time metric families for the node exporter (``GpuCollector(extra=[...])``).

``ProbeResultsSource(path)`` is a callable: each call returns the ``gpufleet_probe_*`` families of the
results file at ``path``, re-read only when the file changes. A missing or broken file is not an error
of the scrape: it gives no probe families and counts the failure in ``gpufleet_probe_results_errors_total``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from gpufleet.probes.exposition import render_file

__all__ = ["ProbeResultsSource"]


class ProbeResultsSource:
    """Callable returning the families of a probe results file (cached on its mtime and size)."""

    def __init__(self, path: str | Path, *, render: Callable[[Path], str] = render_file) -> None:
        self.path = Path(path)
        self._render = render
        self._stamp: tuple[int, int] | None = None
        self._text = ""
        self.errors = 0
        self.last_error: str | None = None

    def text(self) -> str:
        """The exposition text of the current file ("" when it is missing or unreadable)."""
        try:
            st = self.path.stat()
        except OSError as exc:
            self._fail(f"{self.path}: {exc.strerror}")
            return ""
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                self._text = self._render(self.path)
            except ValueError as exc:
                self._fail(str(exc))
                self._text, self._stamp = "", None
                return ""
            self._stamp = stamp
        return self._text

    def _fail(self, message: str) -> None:
        self.errors += 1
        self.last_error = message

    def __call__(self) -> list[Metric]:
        """The ``gpufleet_probe_*`` families plus the read-error counter."""
        families: list[Metric] = list(text_string_to_metric_families(self.text()))
        errors = CounterMetricFamily("gpufleet_probe_results_errors", "Failed reads of the probe results file.")
        errors.add_metric([], float(self.errors))
        families.append(errors)
        return families
