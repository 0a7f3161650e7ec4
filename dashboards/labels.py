"""Column names and numbers as a table shows them to people (pure: no Streamlit).

Frames keep their machine names (``total_usd``, ``p99_s``, ``gpu_model``) for the CSV downloads and the
analytics functions; a page's table heads them ``Total ($)``, ``p99 (s)``, ``GPU model``, and writes a number
no format was given for with three significant digits (``0.0377``, ``9.58``, ``519.8``, ``7,680``).
"""

from __future__ import annotations

import math
from datetime import timedelta

__all__ = ["duration", "header", "number"]

# words written as people write them
_WORDS = {
    "gpu": "GPU", "gpus": "GPUs", "uuid": "UUID", "id": "ID", "xid": "XID", "xids": "XIDs", "ecc": "ECC",
    "slo": "SLO", "slos": "SLOs", "mfu": "MFU", "pcie": "PCIe", "hbm": "HBM", "nccl": "NCCL", "mig": "MIG",
    "mttf": "MTTF", "ettr": "ETTR", "pue": "PUE", "co2e": "CO2e", "ttft": "TTFT", "itl": "ITL", "tflops": "TFLOPS",
    "usd": "USD", "1m": "1M",
}
# a last word that is a unit goes in brackets
_UNITS = {
    "s": "s", "seconds": "s", "usd": "$", "cents": "¢", "pct": "%", "gib": "GiB", "bytes": "bytes",
    "watts": "W", "celsius": "°C", "kwh": "kWh", "joules": "J", "mhz": "MHz", "gbps": "GB/s",
}
# names the rules above would get wrong
_NAMES = {
    "ts": "Time", "last_ts": "Last event", "gpu_hours": "GPU-hours", "gpu_index": "GPU",
    "utilization_ratio": "Utilization", "within_slo": "Within SLO", "peer_ratio": "Of peers' median",
    "kg_co2e": "CO2e (kg)",
}


def header(name: str) -> str:
    """A column's heading: ``p99_s`` -> ``p99 (s)``, ``allocated_gpu_hours`` -> ``Allocated GPU-hours``."""
    if name in _NAMES:
        return _NAMES[name]
    words = name.split("_")
    unit = _UNITS.get(words[-1]) if len(words) > 1 else None
    if unit is not None:
        words = words[:-1]
    text = " ".join(_WORDS.get(w, w) for w in words).replace("GPU hours", "GPU-hours")
    if not _is_code(text):
        text = text[:1].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


def _is_code(text: str) -> bool:
    """A name such as ``p50`` that is lower-case on purpose."""
    head = text.split(" ")[0]
    return len(head) > 1 and head[0] == "p" and head[1:].isdigit()


def number(value: float) -> str:
    """A float with three significant digits, thousands grouped, never in exponent form; NaN as a dash."""
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    size = abs(value)
    if size >= 1000 or value == int(value):
        return f"{value:,.0f}"
    decimals = min(6, max(1, 2 - math.floor(math.log10(size))))
    return f"{value:.{decimals}f}"


def duration(span: timedelta) -> str:
    """A window's length as people say it, to the minute: ``1 day 23 h 50 min``, ``6 h``, ``0 min``."""
    minutes = round(span.total_seconds() / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{mins} min"] if mins else []
    return " ".join(parts) or "0 min"
