"""Datasheet BF16 peaks and default prices per GPU model family, resolved from the name NVML reports.

The probes package carries the full datasheet table; when it is importable its resolver is used,
otherwise this small map (REFERENCE section 5) answers. An unknown model resolves to ``None`` and
callers report it per job rather than guessing.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["Peak", "resolve_peak", "DEFAULT_USD_PER_GPU_HOUR", "family_of", "HOURS_PER_MONTH"]

HOURS_PER_MONTH = 730.0

# Default on-demand $/GPU-hour (AWS list prices, 2026: p5 8xH100 $55.04/h, p5en 8xH200 $63.30/h,
# p4d 8xA100 $21.96/h, g6e L40S ~$1.86/h). Defaults only; the store's ``prices`` table wins.
DEFAULT_USD_PER_GPU_HOUR: dict[str, float] = {"H100": 6.88, "H200": 7.91, "A100": 2.745, "L40S": 1.86, "B200": 14.0}


class Peak(NamedTuple):
    """Dense BF16 peak of one GPU model."""

    family: str
    key: str
    bf16_flops: float


# (pattern on the upper-cased model name, family, key, dense BF16 TFLOP/s); first match wins.
_PEAKS: list[tuple[str, str, str, float]] = [
    (r"H100.*PCIE", "H100", "H100-PCIe", 756.0),
    (r"H100", "H100", "H100-SXM", 989.0),
    (r"H200", "H200", "H200", 989.0),
    (r"A100", "A100", "A100", 312.0),
    (r"L40S", "L40S", "L40S", 362.0),
    (r"B200", "B200", "B200", 2250.0),
]


def _from_probes(name: str) -> Peak | None:
    try:
        from gpufleet.probes.specs import find_spec  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    try:
        spec = find_spec(name)
    except Exception:  # noqa: BLE001 - a changed probes API must not break reports; fall back
        return None
    if spec is None:
        return None
    return Peak(str(spec.family), str(spec.key), float(spec.bf16_tflops) * 1e12)


def resolve_peak(name: str) -> Peak | None:
    """BF16 dense peak for a GPU model name (``NVIDIA H100 80GB HBM3`` or ``H100``); None when unknown."""
    if not name:
        return None
    found = _from_probes(name)
    if found is not None:
        return found
    upper = name.upper()
    for pattern, family, key, tflops in _PEAKS:
        if re.search(pattern, upper):
            return Peak(family, key, tflops * 1e12)
    return None


def family_of(name: str) -> str:
    """Short model family (``H100``) for a model name; the name itself when unknown."""
    peak = resolve_peak(name)
    return peak.family if peak else name
