"""Text format 0.0.4 encoder for metric families: what ``/metrics`` serves to Prometheus.

client_python's encoder would append ``_total`` to the TYPE line of dcgm-exporter counters such
as ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION``; this one writes them as dcgm-exporter does, and is
faster (no per-sample label sorting).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from gpufleet.exporters.collector import DCGM_COUNTERS_WITHOUT_TOTAL

__all__ = ["encode_text", "CONTENT_TYPE_TEXT"]

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram", "summary": "summary", "info": "gauge",
          "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}


def _value(v: float) -> str:
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v)}.0" if isinstance(v, float) else str(int(v))
    return repr(float(v))


def _escape(v: str) -> str:
    if "\\" in v or '"' in v or "\n" in v:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return v


def encode_text(families: Iterable[Metric]) -> bytes:
    """Render families as text format 0.0.4."""
    out: list[str] = []
    append = out.append
    for fam in families:
        name = fam.name
        mtype = _TYPES.get(fam.type, "untyped")
        if fam.type == "counter":
            name += "_total"
        elif fam.type == "info":
            name += "_info"
        elif fam.type == "unknown" and name in DCGM_COUNTERS_WITHOUT_TOTAL:
            mtype = "counter"
        doc = fam.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        append(f"# HELP {name} {doc}\n# TYPE {name} {mtype}\n")
        for s in fam.samples:
            if s.name.endswith("_created") and fam.type in ("counter", "histogram", "summary"):
                continue
            lab = "{" + ",".join([f'{k}="{_escape(v)}"' for k, v in s.labels.items()]) + "}" if s.labels else ""
            if s.timestamp is not None:
                append(f"{s.name}{lab} {_value(s.value)} {int(float(s.timestamp) * 1000)}\n")
            else:
                append(f"{s.name}{lab} {_value(s.value)}\n")
    return "".join(out).encode()
