"""Probe results: what one run measured per GPU and per node, and its JSON form (schema ``gpufleet.probe/v1``)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA", "Measurement", "GpuResult", "CollectiveResult", "Verdict", "ProbeRun", "load_results",
           "dump_results", "MAX_RESULTS_BYTES"]

SCHEMA = "gpufleet.probe/v1"
MAX_RESULTS_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Measurement:
    """One figure of one probe on one GPU.

    ``probe`` and ``unit`` form the metric name (``gpufleet_probe_<probe>_<unit>``); ``labels`` qualify it
    (``dtype`` for matmul, ``kernel`` for HBM, ``direction`` for PCIe). ``value`` is the median over
    ``repeats`` timed repeats and ``spread_ratio`` their (max - min) / median. A measurement whose
    result did not match the reference has ``correct`` False and never passes a verdict.
    """

    probe: str
    value: float
    unit: str
    labels: dict[str, str] = field(default_factory=dict)
    peak: float | None = None
    repeats: int = 0
    spread_ratio: float = 0.0
    correct: bool = True
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``probe`` plus its qualifying label values: ``matmul_bf16``, ``pcie_bandwidth_h2d``."""
        return "_".join([self.probe, *(self.labels[k] for k in sorted(self.labels))])

    @property
    def peak_ratio(self) -> float | None:
        """Share of the datasheet peak reached, when the peak is known."""
        return self.value / self.peak if self.peak else None

    @property
    def ok(self) -> bool:
        """Correct, no error and a finite value."""
        return self.correct and self.error is None and math.isfinite(self.value)


@dataclass(frozen=True)
class GpuResult:
    """Everything one run measured on one GPU."""

    gpu_uuid: str
    node: str
    gpu_model: str
    index: int = 0
    cluster: str | None = None
    spec_key: str | None = None  # datasheet entry the peaks came from; None for an unknown model
    other_processes: list[int] = field(default_factory=list)  # compute processes seen on the GPU (pids)
    duration_s: float = 0.0
    measurements: list[Measurement] = field(default_factory=list)

    def get(self, key: str) -> Measurement | None:
        """The measurement with ``key`` (see :attr:`Measurement.key`), or None."""
        return next((m for m in self.measurements if m.key == key), None)


@dataclass(frozen=True)
class CollectiveResult:
    """One NCCL collective at one size over ``ranks`` GPUs of a node."""

    node: str
    collective: str
    ranks: int
    size_bytes: int
    time_s: float
    algbw: float  # bytes/s
    busbw: float  # bytes/s
    correct: bool = True
    error: str | None = None
    gpu_model: str | None = None
    cluster: str | None = None


@dataclass(frozen=True)
class Verdict:
    """A GPU's health: ``healthy``, ``degraded`` or ``failed``, why, and what the loss costs."""

    gpu_uuid: str
    node: str
    gpu_model: str
    verdict: str
    reasons: list[str] = field(default_factory=list)
    lost_ratio: float = 0.0
    usd_per_gpu_hour: float | None = None
    price_source: str | None = None
    lost_usd_per_day: float | None = None
    cluster: str | None = None


@dataclass
class ProbeRun:
    """A run of the probe suite over some GPUs (one node, or a whole simulated fleet)."""

    suite: str
    backend: str
    started_at: float
    finished_at: float
    gpus: list[GpuResult] = field(default_factory=list)
    collectives: list[CollectiveResult] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    host: dict[str, str] = field(default_factory=dict)
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """The JSON document; every Measurement also carries its ``key`` and ``peak_ratio``."""
        doc = asdict(self)
        for g_doc, g in zip(doc["gpus"], self.gpus, strict=True):
            for m_doc, m in zip(g_doc["measurements"], g.measurements, strict=True):
                m_doc["key"] = m.key
                m_doc["peak_ratio"] = m.peak_ratio
        return _finite(doc)

    @classmethod
    def from_dict(cls, doc: Any, where: str = "results") -> ProbeRun:
        """Build a run from its JSON document; a wrong document raises ValueError naming ``where``."""
        if not isinstance(doc, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(doc).__name__}")
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"{where}: schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
        try:
            gpus = [GpuResult(**{**g, "measurements": [Measurement(**_drop(m, "key", "peak_ratio"))
                                                      for m in g.get("measurements", [])]})
                    for g in doc.get("gpus", [])]
            colls = [CollectiveResult(**c) for c in doc.get("collectives", [])]
            verdicts = [Verdict(**v) for v in doc.get("verdicts", [])]
            return cls(suite=str(doc["suite"]), backend=str(doc["backend"]), started_at=float(doc["started_at"]),
                       finished_at=float(doc["finished_at"]), gpus=gpus, collectives=colls, verdicts=verdicts,
                       host=dict(doc.get("host", {})))
        except KeyError as exc:
            raise ValueError(f"{where}: missing field {exc.args[0]!r}") from None
        except TypeError as exc:
            raise ValueError(f"{where}: {exc}") from None


def _drop(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def _finite(obj: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _nullable_values(doc: Any) -> Any:
    """Measurements written with a null value (NaN on the way out) come back as NaN."""
    for g in doc.get("gpus", []) if isinstance(doc, dict) else []:
        for m in g.get("measurements", []) if isinstance(g, dict) else []:
            if isinstance(m, dict) and m.get("value") is None:
                m["value"] = math.nan
    return doc


def dump_results(run: ProbeRun, path: str | Path) -> None:
    """Write a run as JSON (atomically: a reader never sees half a file)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(run.to_dict(), indent=1) + "\n", encoding="utf-8")
    tmp.replace(p)


def load_results(path: str | Path) -> ProbeRun:
    """Read a results file written by ``gpufleet probe run --out``; errors name the file and the problem."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ValueError(f"cannot read probe results {p}: {exc.strerror}") from None
    if size > MAX_RESULTS_BYTES:
        raise ValueError(f"probe results {p} is {size} bytes; the limit is {MAX_RESULTS_BYTES}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"probe results {p} is not JSON: {exc}") from None
    return ProbeRun.from_dict(_nullable_values(doc), where=str(p))
