"""dcgm-exporter and gpufleet exporter families onto the native GPU schema."""

from __future__ import annotations

from gpufleet.core.naming import DCGM_LABELS, GPU_METRICS

__all__ = ["FAMILIES", "LABELS"]

FAMILIES: list[tuple[str, str, float, str]] = [
    (m.dcgm, m.native, m.scale, "dcgm") for m in GPU_METRICS if m.dcgm
] + [(m.native, m.native, 1.0, "gpufleet") for m in GPU_METRICS]

LABELS = DCGM_LABELS
