"""The SLO spec model (``SloSpec``) and its loaders for gpufleet YAML, Sloth ``prometheus/v1`` and OpenSLO v1.

Every loader ends in the same frozen ``SloSpec``: what to measure (an availability or latency SLI over
the normalised serving schema, with the engines' own names kept for PromQL), the objective as a ratio,
the rolling window, selector labels, an optional tier and an optional minimum-traffic guard. The
burn-rate rule generator and the analytics both read only this model. File formats are documented in
``docs/slo.md``; examples live in ``analytics/slo/examples/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gpufleet.analytics.slo import promql
from gpufleet.analytics.slo.catalog import LATENCY, OUTCOMES, metric_for_name

__all__ = [
    "SpecError",
    "SpecProblem",
    "LatencySli",
    "AvailabilitySli",
    "RawSli",
    "SloSpec",
    "load_specs",
    "parse_specs",
    "parse_duration",
    "parse_objective",
]

SliKind = Literal["availability", "latency", "raw"]
SELECTOR_LABELS = ("service", "model", "engine", "namespace", "cluster", "pod")


class SpecError(ValueError):
    """A spec file that cannot be used: the message names the file, the key and the fix."""


@dataclass(frozen=True)
class SpecProblem:
    """One objective that could not be read, when loading goes on with the others (``problems=``)."""

    slo: str
    message: str


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")  # no unit: seconds
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: Any) -> float:
    """Seconds for ``"250ms"``, ``"2s"``, ``"6h"``, ``"28d"``, ``"1w"`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration; write e.g. 250ms, 2s, 1h, 28d")
    return float(m.group(1)) * _UNIT_S.get(m.group(2), 1.0)


def parse_objective(value: Any) -> float:
    """An objective as a ratio: values above 1 are percent (``99.9`` -> 0.999), others are ratios."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a number")
    v = float(str(value).strip().rstrip("%")) if isinstance(value, str) else float(value)
    if (isinstance(value, str) and value.strip().endswith("%")) or v > 1:
        v = round(v / 100, 12)
    if not 0 < v < 1:
        raise ValueError(f"{value!r} leaves no error budget or no target; use a ratio in (0, 1) or a percent "
                         "in (0, 100), e.g. 99.9")
    return v


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LatencySli(_Frozen):
    """Good = observations at or under ``threshold_s`` of histogram ``metric`` (an SLI key of the catalog)."""

    metric: str = Field(description="SLI key: ttft, itl, tpot, e2e or queue")
    threshold_s: float = Field(gt=0, description="latency threshold in seconds")

    @field_validator("metric", mode="before")
    @classmethod
    def _known(cls, v: Any) -> str:
        m = metric_for_name(str(v))
        if m is None:
            raise ValueError(f"unknown latency metric {v!r}; use one of {sorted(LATENCY)}")
        return m.key

    @property
    def canonical(self) -> str:
        """The normalised histogram name (``gpufleet_serving_*_seconds``)."""
        return LATENCY[self.metric].canonical

    @property
    def engine_metrics(self) -> dict[str, str]:
        """Engine -> the histogram name that engine exposes."""
        return dict(LATENCY[self.metric].engines)

    @property
    def buckets(self) -> tuple[float, ...]:
        """The engines' default finite bucket bounds (what a threshold is interpolated between)."""
        return LATENCY[self.metric].buckets

    @property
    def per_request(self) -> bool:
        """False for inter-token latency, whose observations are token gaps."""
        return LATENCY[self.metric].per_request


class AvailabilitySli(_Frozen):
    """Good = finished requests whose outcome is not in ``bad_outcomes`` (default: ``error``)."""

    bad_outcomes: tuple[str, ...] = ("error",)

    @field_validator("bad_outcomes", mode="before")
    @classmethod
    def _outcomes(cls, v: Any) -> tuple[str, ...]:
        items = (v,) if isinstance(v, str) else tuple(v)
        unknown = sorted(set(items) - set(OUTCOMES))
        if not items or unknown:
            raise ValueError(f"bad_outcomes {list(items)} must be a non-empty subset of {list(OUTCOMES)}")
        return tuple(str(i) for i in items)


class RawSli(_Frozen):
    """An SLI given as PromQL (Sloth ``events``/``raw``, OpenSLO ``ratioMetric``); ``{{.window}}`` marks the range."""

    error_query: str | None = None
    total_query: str | None = None
    good_query: str | None = None
    error_ratio_query: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> RawSli:
        if not (self.error_ratio_query or (self.total_query and (self.error_query or self.good_query))):
            raise ValueError("a PromQL SLI needs error_ratio_query, or total_query with error_query or good_query")
        return self


class SloSpec(_Frozen):
    """One SLO, whatever file format it came from.

    ``objective`` is a ratio (0.999), ``window_s`` the rolling window in seconds. ``selector`` holds
    label equalities over the normalised labels (service, model, engine, namespace, cluster, pod).
    ``latency`` or ``availability`` is set for SLIs gpufleet computes from its store; ``raw`` keeps
    the PromQL a Sloth or OpenSLO file gave (also set when gpufleet recognised it). ``min_request_rate``
    (requests/s) below which a window is reported as low-traffic rather than burning budget.
    """

    name: str
    service: str
    sli: SliKind
    objective: float = Field(gt=0, lt=1)
    window_s: float = Field(default=28 * 86400.0, ge=3600, le=400 * 86400)
    selector: dict[str, str] = Field(default_factory=dict)
    latency: LatencySli | None = None
    availability: AvailabilitySli | None = None
    raw: RawSli | None = None
    tier: str | None = None
    min_request_rate: float = Field(default=0.0, ge=0)
    labels: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    source: str = ""
    source_format: Literal["gpufleet", "sloth", "openslo"] = "gpufleet"

    @model_validator(mode="after")
    def _consistent(self) -> SloSpec:
        if self.sli == "latency" and self.latency is None:
            raise ValueError("a latency SLI needs metric and threshold")
        if self.sli == "availability" and self.availability is None:
            raise ValueError("an availability SLI needs its availability settings")
        if self.sli == "raw" and self.raw is None:
            raise ValueError("a raw SLI needs its PromQL queries")
        return self

    @property
    def id(self) -> str:
        """``service/name``: unique within a set of specs."""
        return f"{self.service}/{self.name}"

    @property
    def error_budget(self) -> float:
        """The allowed bad fraction, ``1 - objective``."""
        return 1.0 - self.objective

    @property
    def window(self) -> str:
        """The window as a Prometheus duration (``28d``)."""
        return promql.duration(self.window_s)

    @property
    def computable(self) -> bool:
        """True when gpufleet can compute the SLI from its own store (not a foreign PromQL SLI)."""
        return self.sli in ("availability", "latency")

    def error_query(self, window: str, naming: str = "auto") -> str:
        """PromQL for the rate of bad events over ``window``.

        ``naming``: ``auto`` (the file's own PromQL when it gave some, else canonical), ``canonical``
        (``gpufleet_serving_*``), ``vllm`` or ``sglang`` (the engine's exposed names and labels).
        """
        return promql.error_query(self, window, naming)

    def total_query(self, window: str, naming: str = "auto") -> str:
        """PromQL for the rate of all events over ``window``."""
        return promql.total_query(self, window, naming)

    def error_ratio_query(self, window: str, naming: str = "auto") -> str:
        """PromQL for the bad-event ratio over ``window`` (what ``slo:sli_error:ratio_rate<window>`` records)."""
        return promql.error_ratio_query(self, window, naming)


# --------------------------------------------------------------------------- gpufleet's own YAML

class _Objective(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    sli: Literal["availability", "latency"]
    target: float
    metric: str | None = None
    threshold: float | None = None
    bad_outcomes: tuple[str, ...] | None = None
    window: float | None = None
    min_request_rate: float | None = Field(default=None, ge=0)
    description: str = ""

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, v: Any) -> float:
        return parse_objective(v)

    @field_validator("threshold", "window", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)


class _Service(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str | None = None
    model: str | None = None
    selector: dict[str, str] = Field(default_factory=dict)
    tier: str | None = None
    window: float = 28 * 86400.0
    min_request_rate: float = Field(default=0.0, ge=0)
    labels: dict[str, str] = Field(default_factory=dict)
    objectives: list[_Objective] = Field(min_length=1)

    @field_validator("window", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return parse_duration(v)

    @field_validator("selector")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(SELECTOR_LABELS))
        if unknown:
            raise ValueError(f"selector labels {unknown} are not serving labels; use {list(SELECTOR_LABELS)}")
        return {str(k): str(x) for k, x in v.items()}


class _GpufleetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal["gpufleet/v1"] = "gpufleet/v1"
    window: float | None = None
    services: list[_Service] = Field(default_factory=list)
    models: list[_Service] = Field(default_factory=list)

    @field_validator("window", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)


def _gpufleet_specs(doc: dict[str, Any], source: str, problems: list[SpecProblem] | None = None) -> list[SloSpec]:
    f = _GpufleetFile.model_validate(doc)
    if not f.services and not f.models:
        raise SpecError(f"{source}: services: no services or models; add `services:` with at least one entry "
                        "(see analytics/slo/examples/serving.yaml)")
    out: list[SloSpec] = []
    for group, entries in (("services", f.services), ("models", f.models)):
        for i, s in enumerate(entries):
            where = f"{group}[{i}]"
            selector = dict(s.selector)
            if s.service:
                selector["service"] = s.service
            if s.model:
                selector["model"] = s.model
            name = s.service or s.model
            if not name:
                raise SpecError(f"{source}: {where}: needs `service` or `model`; add `service: <name>` "
                                "(the service label of its pods) or `model: <model name>`")
            window = s.window if "window" in s.model_fields_set else (f.window or s.window)
            for j, o in enumerate(s.objectives):
                key = f"{where}.objectives[{j}]"
                try:
                    _check_objective(o, source, key)
                    out.append(SloSpec(
                        name=o.name, service=name, sli=o.sli, objective=o.target,
                        window_s=o.window or window, selector=selector,
                        latency=LatencySli(metric=o.metric, threshold_s=o.threshold)
                        if o.sli == "latency" else None,
                        availability=AvailabilitySli(bad_outcomes=o.bad_outcomes or ("error",))
                        if o.sli == "availability" else None,
                        tier=s.tier, labels=s.labels, description=o.description,
                        min_request_rate=o.min_request_rate if o.min_request_rate is not None else s.min_request_rate,
                        source=source, source_format="gpufleet"))
                except (SpecError, ValidationError) as exc:
                    error = exc if isinstance(exc, SpecError) else SpecError(_explain(exc, source, key))
                    if problems is None:
                        raise error from None
                    problems.append(SpecProblem(f"{name}/{o.name}", str(error)))
    return out


def _check_objective(o: _Objective, source: str, key: str) -> None:
    if o.sli == "latency" and (o.metric is None or o.threshold is None):
        raise SpecError(f"{source}: {key}: a latency objective needs `metric` (one of "
                        f"{sorted(LATENCY)}) and `threshold` (e.g. 2s or 500ms)")
    if o.sli == "availability" and (o.metric or o.threshold):
        raise SpecError(f"{source}: {key}: an availability objective takes no metric or threshold; "
                        "remove them or set `sli: latency`")


# --------------------------------------------------------------------------- Sloth prometheus/v1

class _SlothEvents(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error_query: str
    total_query: str


class _SlothRaw(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error_ratio_query: str


class _SlothSli(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: _SlothEvents | None = None
    raw: _SlothRaw | None = None
    plugin: dict[str, Any] | None = None


class _SlothSlo(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    objective: float
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    sli: _SlothSli
    alerting: dict[str, Any] = Field(default_factory=dict)

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, v: Any) -> float:
        # Sloth objectives are always percent (99.9); 0.5 means half a percent, which is never meant.
        if isinstance(v, int | float) and not isinstance(v, bool) and v <= 1:
            raise ValueError(f"Sloth objectives are percent; {v!r} would be {v}% - write e.g. 99.9")
        return parse_objective(v)


class _SlothFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal["prometheus/v1"]
    service: str
    labels: dict[str, str] = Field(default_factory=dict)
    slos: list[_SlothSlo] = Field(min_length=1)


def _sloth_specs(doc: dict[str, Any], source: str, window_s: float) -> list[SloSpec]:
    f = _SlothFile.model_validate(doc)
    out: list[SloSpec] = []
    for i, s in enumerate(f.slos):
        key = f"slos[{i}].sli"
        if s.sli.events:
            raw = RawSli(error_query=s.sli.events.error_query, total_query=s.sli.events.total_query)
        elif s.sli.raw:
            raw = RawSli(error_ratio_query=s.sli.raw.error_ratio_query)
        else:
            raise SpecError(f"{source}: {key}: Sloth SLI plugins are not supported; write the SLI as "
                            "`events` (error_query, total_query) or `raw` (error_ratio_query)")
        labels = {**f.labels, **s.labels}
        out.append(_from_raw(name=s.name, service=f.service, objective=s.objective, window_s=window_s, raw=raw,
                             labels=labels, description=s.description, source=source, fmt="sloth"))
    return out


# --------------------------------------------------------------------------- OpenSLO v1

def _openslo_specs(docs: list[dict[str, Any]], source: str) -> list[SloSpec]:
    slis = {d.get("metadata", {}).get("name"): d.get("spec", {}) for d in docs if d.get("kind") == "SLI"}
    out: list[SloSpec] = []
    for n, d in enumerate(docs):
        if d.get("kind") != "SLO":
            continue
        meta = d.get("metadata") or {}
        name = meta.get("name")
        where = f"document {n + 1} (SLO {name or '?'})"
        spec = d.get("spec")
        if not name or not isinstance(spec, dict):
            raise SpecError(f"{source}: {where}: an OpenSLO SLO needs metadata.name and spec")
        service = spec.get("service")
        if not service:
            raise SpecError(f"{source}: {where}: spec.service is missing; name the service the SLO belongs to")
        indicator = spec.get("indicator")
        if indicator is None and spec.get("indicatorRef"):
            ref = spec["indicatorRef"]
            if ref not in slis:
                raise SpecError(f"{source}: {where}: spec.indicatorRef {ref!r} names no SLI document in this file; "
                                f"add a `kind: SLI` document named {ref!r} or inline spec.indicator")
            indicator = {"spec": slis[ref]}
        if not isinstance(indicator, dict):
            raise SpecError(f"{source}: {where}: spec.indicator or spec.indicatorRef is required")
        ispec = indicator.get("spec") or {}
        windows = spec.get("timeWindow") or [{"duration": "28d", "isRolling": True}]
        try:
            window_s = parse_duration(windows[0].get("duration", "28d"))
        except (ValueError, AttributeError) as exc:
            raise SpecError(f"{source}: {where}: spec.timeWindow[0].duration: {exc}") from None
        objectives = spec.get("objectives") or []
        if not objectives:
            raise SpecError(f"{source}: {where}: spec.objectives is empty; add `- target: 0.99`")
        for j, obj in enumerate(objectives):
            okey = f"{where}: spec.objectives[{j}]"
            target = obj.get("target", obj.get("targetPercent"))
            try:
                objective = parse_objective(target)
            except ValueError as exc:
                raise SpecError(f"{source}: {okey}.target: {exc}") from None
            oname = obj.get("name") or (name if len(objectives) == 1 else f"{name}-{j}")
            labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items() if not isinstance(v, list)}
            if "ratioMetric" in ispec:
                rm = ispec["ratioMetric"]
                q = {k: _openslo_query(rm.get(k)) for k in ("good", "bad", "total")}
                if not q["total"] or not (q["good"] or q["bad"]):
                    raise SpecError(f"{source}: {where}: spec.indicator.spec.ratioMetric needs total and good or bad, "
                                    "each with metricSource.spec.query")
                raw = RawSli(total_query=q["total"], good_query=q["good"], error_query=q["bad"])
            elif "thresholdMetric" in ispec:
                query = _openslo_query(ispec["thresholdMetric"])
                value = obj.get("value")
                if not query or value is None:
                    raise SpecError(f"{source}: {okey}: a thresholdMetric SLO needs the metric's query and "
                                    "objectives[].value (the latency threshold in seconds)")
                metric = _histogram_in(query)
                if metric is None:
                    raise SpecError(f"{source}: {where}: thresholdMetric query {query!r} names no serving latency "
                                    f"histogram gpufleet knows; use one of {sorted(LATENCY)}'s metric names")
                out.append(SloSpec(name=oname, service=str(service), sli="latency", objective=objective,
                                   window_s=window_s, selector=promql.selector_of(query),
                                   latency=LatencySli(metric=metric, threshold_s=float(value)), labels=labels,
                                   description=str(spec.get("description", "")), source=source,
                                   source_format="openslo"))
                continue
            else:
                raise SpecError(f"{source}: {where}: spec.indicator.spec needs ratioMetric or thresholdMetric")
            out.append(_from_raw(name=oname, service=str(service), objective=objective, window_s=window_s, raw=raw,
                                 labels=labels, description=str(spec.get("description", "")), source=source,
                                 fmt="openslo"))
    return out


def _openslo_query(part: Any) -> str | None:
    if not isinstance(part, dict):
        return None
    src = part.get("metricSource") or {}
    q = (src.get("spec") or {}).get("query")
    return str(q) if q else None


def _histogram_in(query: str) -> str | None:
    for name in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", query):
        m = metric_for_name(name)
        if m is not None:
            return m.key
    return None


def _from_raw(*, name: str, service: str, objective: float, window_s: float, raw: RawSli, labels: dict[str, str],
              description: str, source: str, fmt: Literal["sloth", "openslo"]) -> SloSpec:
    """A PromQL SLI; recognised as availability or latency over serving metrics when it is one."""
    found = promql.recognise(raw)
    kind: SliKind = "raw"
    lat: LatencySli | None = None
    avail: AvailabilitySli | None = None
    selector: dict[str, str] = {}
    if found is not None:
        kind, selector, detail = found
        if kind == "latency":
            lat = LatencySli(metric=detail["metric"], threshold_s=detail["threshold_s"])
        else:
            avail = AvailabilitySli(bad_outcomes=detail.get("bad_outcomes", ("error",)))
    return SloSpec(name=name, service=service, sli=kind, objective=objective, window_s=window_s, selector=selector,
                   latency=lat, availability=avail, raw=raw, tier=labels.get("tier"), labels=labels,
                   description=description, source=source, source_format=fmt)


# --------------------------------------------------------------------------- entry points

def _explain(exc: ValidationError, source: str, prefix: str = "") -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in e["loc"]).replace(".[", "[")
        key = ".".join(x for x in (prefix, loc) if x) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling (see docs/slo.md)"
        elif e["type"] == "missing":
            msg = "required key is missing; add it"
        parts.append(f"{key}: {msg}")
    return f"{source}: " + "; ".join(parts)


def parse_specs(text: str, source: str = "<string>", *, default_window: str = "30d",
                problems: list[SpecProblem] | None = None) -> list[SloSpec]:
    """SLO specs from YAML text in any supported format; ``default_window`` is for Sloth (it has none).

    With a ``problems`` list, an objective of a gpufleet file that cannot be used (an unknown metric,
    a missing threshold) is appended there and the others load; without one it raises ``SpecError``.
    """
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from None
    if not docs:
        raise SpecError(f"{source}: no SLO documents; see analytics/slo/examples/ for the formats")
    if any(not isinstance(d, dict) for d in docs):
        raise SpecError(f"{source}: every YAML document must be a mapping")
    specs: list[SloSpec] = []
    openslo = [d for d in docs if str(d.get("apiVersion", "")).startswith("openslo/")]
    try:
        if openslo:
            bad = [d.get("apiVersion") for d in openslo if d.get("apiVersion") != "openslo/v1"]
            if bad:
                raise SpecError(f"{source}: apiVersion {bad[0]!r} is not supported; use openslo/v1")
            specs.extend(_openslo_specs(openslo, source))
        for d in docs:
            if d in openslo:
                continue
            version = d.get("version")
            if version == "prometheus/v1":
                specs.extend(_sloth_specs(d, source, parse_duration(default_window)))
            elif version in (None, "gpufleet/v1"):
                specs.extend(_gpufleet_specs(d, source, problems))
            else:
                raise SpecError(f"{source}: version {version!r} is not a known SLO format; use gpufleet/v1, "
                                "prometheus/v1 (Sloth) or apiVersion openslo/v1")
    except ValidationError as exc:
        raise SpecError(_explain(exc, source)) from None
    seen: set[str] = set()
    for s in specs:
        if s.id in seen:
            raise SpecError(f"{source}: SLO {s.id!r} is defined twice; give each objective of a service its own name")
        seen.add(s.id)
    return specs


def load_specs(path: str | Path, *, default_window: str = "30d",
               problems: list[SpecProblem] | None = None) -> list[SloSpec]:
    """Load every SLO from a YAML file, or from every ``*.yaml``/``*.yml`` file of a directory.

    ``problems``: as for ``parse_specs`` (collect unusable objectives instead of raising).
    """
    p = Path(path)
    if p.is_dir():
        files = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
        if not files:
            raise SpecError(f"{p}: no *.yaml or *.yml files in this directory")
    elif p.exists():
        files = [p]
    else:
        raise SpecError(f"{p}: no such file; pass a spec file or a directory of them")
    specs: list[SloSpec] = []
    seen: dict[str, str] = {}
    for f in files:
        for s in parse_specs(f.read_text(encoding="utf-8"), str(f), default_window=default_window,
                             problems=problems):
            if s.id in seen:
                raise SpecError(f"{f}: SLO {s.id!r} is already defined in {seen[s.id]}; rename one of them")
            seen[s.id] = str(f)
            specs.append(s)
    return specs
