"""The lookup from a source family name to its canonical name, scale and label renames."""

from __future__ import annotations

from typing import NamedTuple

from gpufleet.collectors.adapters import engines, gpu

__all__ = ["FamilyMap", "lookup", "ALL_MAPS", "split_for"]


class FamilyMap(NamedTuple):
    """How one source family becomes canonical: ``value * scale``, labels renamed, labels added."""

    canonical: str
    scale: float
    labels: dict[str, str]
    extra_labels: dict[str, str]
    source: str  # dcgm | gpufleet | vllm | sglang | tgi | triton | trtllm | llamacpp


def _build() -> dict[str, FamilyMap]:
    maps: dict[str, FamilyMap] = {}
    for name, canonical, scale, source in gpu.FAMILIES:
        maps[name] = FamilyMap(canonical, scale, gpu.LABELS if source == "dcgm" else {}, {}, source)
    for name, canonical, scale, engine, extra in engines.FAMILIES:
        maps[name] = FamilyMap(canonical, scale, engines.LABELS[engine], {"engine": engine, **extra}, engine)
    return maps


ALL_MAPS = _build()


def lookup(family: str) -> FamilyMap | None:
    """The map for a family, trying its name with and without ``_total``."""
    found = ALL_MAPS.get(family)
    if found is None and family.endswith("_total"):
        found = ALL_MAPS.get(family[: -len("_total")])
    if found is None:
        found = ALL_MAPS.get(family + "_total")
    return found


def split_for(family: str, labels: tuple[tuple[str, str], ...]) -> tuple[FamilyMap, tuple[tuple[str, str], ...]] | None:
    """For a family keyed by a label (TensorRT-LLM's backend), the map of one sample and its other labels."""
    split = engines.LABEL_SPLITS.get(family)
    if split is None:
        return None
    engine, key, by_value = split
    value = dict(labels).get(key)
    canonical = by_value.get(value or "")
    if canonical is None:
        return None
    rest = tuple((k, v) for k, v in labels if k != key)
    return FamilyMap(canonical, 1.0, engines.LABELS[engine], {"engine": engine}, engine), rest
