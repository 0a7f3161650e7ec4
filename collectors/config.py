"""The collector's YAML configuration, validated by pydantic; every error names the file, the key and the fix.

Shape (Prometheus' ``scrape_configs`` spirit, one file)::

    store: /var/lib/gpufleet/fleet.duckdb
    defaults: {interval: 15s, timeout: 10s}
    limits: {body_bytes: 67108864, samples: 200000, labels: 30, label_value_length: 2048}
    jobs:
      - name: dcgm
        static: [{targets: ["node-1:9400"], labels: {cluster: prod}}]
        file_sd: [/etc/gpufleet/targets/*.json]
        kubernetes: {namespaces: [serving]}
        interval: 15s
        timeout: 10s
        scheme: https
        metrics_path: /metrics
        tls: {ca_file: ca.pem, cert_file: c.pem, key_file: k.pem, insecure_skip_verify: false}
        basic_auth: {username: u, password_file: pw}
        bearer_token_file: token
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["CollectorConfig", "JobConfig", "ConfigError", "load_config", "parse_duration"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(ValueError):
    """A configuration file that cannot be used, with the key and the fix named."""


def parse_duration(value: Any) -> float:
    """``15s``, ``500ms``, ``1m``, ``2h`` or a plain number of seconds -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value).strip())
        if not m:
            raise ValueError(f"{value!r} is not a duration; write e.g. 15s, 500ms, 1m")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"{value!r} must be more than 0")
    return seconds


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(_Model):
    """Per-scrape limits; over ``body_bytes`` or ``samples`` the whole scrape fails, as in Prometheus."""

    body_bytes: int = Field(64 * 1024 * 1024, gt=0)
    samples: int = Field(200_000, gt=0)
    labels: int = Field(30, gt=0)
    label_value_length: int = Field(2048, gt=0)


class Timing(_Model):
    interval: float = 15.0
    timeout: float = 10.0

    @field_validator("interval", "timeout", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)


class StaticConfig(_Model):
    targets: list[str] = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("targets")
    @classmethod
    def _hostport(cls, v: list[str]) -> list[str]:
        for t in v:
            if not re.match(r"^[A-Za-z0-9_.\-\[\]:]+:\d+$", t):
                raise ValueError(f"target {t!r} must be host:port (scheme and path go in the job)")
        return v


class TlsConfig(_Model):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together; set both or neither")
        return self


class BasicAuth(_Model):
    username: str
    password: str | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> BasicAuth:
        if (self.password is None) == (self.password_file is None):
            raise ValueError("set exactly one of password and password_file")
        return self


class KubernetesSd(_Model):
    """Pods annotated ``prometheus.io/scrape: "true"`` (``/port``, ``/path``, ``/scheme`` optional)."""

    namespaces: list[str] = Field(default_factory=list)
    kubeconfig: Path | None = None
    refresh_interval: float = 30.0

    @field_validator("refresh_interval", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)


class JobConfig(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    static: list[StaticConfig] = Field(default_factory=list)
    file_sd: list[str] = Field(default_factory=list)
    kubernetes: KubernetesSd | None = None
    interval: float | None = None
    timeout: float | None = None
    scheme: str = Field("http", pattern=r"^https?$")
    metrics_path: str = Field("/metrics", pattern=r"^/")
    tls: TlsConfig | None = None
    basic_auth: BasicAuth | None = None
    bearer_token: str | None = None
    bearer_token_file: Path | None = None

    @field_validator("interval", "timeout", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)

    @model_validator(mode="after")
    def _check(self) -> JobConfig:
        if not (self.static or self.file_sd or self.kubernetes):
            raise ValueError("a job needs at least one of static, file_sd, kubernetes")
        if self.bearer_token is not None and self.bearer_token_file is not None:
            raise ValueError("set at most one of bearer_token and bearer_token_file")
        if (self.bearer_token or self.bearer_token_file) and self.basic_auth:
            raise ValueError("basic_auth and a bearer token exclude each other")
        return self


class CollectorConfig(_Model):
    store: Path
    defaults: Timing = Field(default_factory=Timing)
    limits: Limits = Field(default_factory=Limits)
    flush_interval: float = 1.0
    jobs: list[JobConfig] = Field(min_length=1)

    @field_validator("flush_interval", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)

    @model_validator(mode="after")
    def _unique_and_timeouts(self) -> CollectorConfig:
        names = [j.name for j in self.jobs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"job names must be unique; {', '.join(dupes)} repeats")
        for j in self.jobs:
            interval = j.interval or self.defaults.interval
            timeout = j.timeout or self.defaults.timeout
            if timeout > interval:
                raise ValueError(f"job {j.name}: timeout {timeout:g}s exceeds interval {interval:g}s; "
                                 "lower the timeout or raise the interval")
        return self

    def timing(self, job: JobConfig) -> tuple[float, float]:
        """(interval, timeout) of a job, defaults filled in."""
        return job.interval or self.defaults.interval, job.timeout or self.defaults.timeout


_FIXES = {
    "extra_forbidden": "remove it (or check its spelling)",
    "missing": "add it",
    "too_short": "give at least one entry",
    "string_pattern_mismatch": "use the documented form",
}


def load_config(path: str | Path) -> CollectorConfig:
    """Read and validate a collector config; relative paths inside are relative to the file."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}:{where}: not valid YAML; fix the syntax there") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the top level must be a mapping with 'store' and 'jobs'")
    try:
        cfg = CollectorConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        fix = _FIXES.get(str(err["type"]), "")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{p}: {key}: {msg}" + (f"; {fix}" if fix else "") + more) from None
    base = p.parent
    if not cfg.store.is_absolute():
        cfg.store = base / cfg.store
    for job in cfg.jobs:
        job.file_sd = [f if Path(f).is_absolute() else str(base / f) for f in job.file_sd]
        for owner, attr in [(job, "bearer_token_file"), (job.tls, "ca_file"), (job.tls, "cert_file"),
                            (job.tls, "key_file"), (job.basic_auth, "password_file"),
                            (job.kubernetes, "kubeconfig")]:
            v = getattr(owner, attr, None) if owner is not None else None
            if v is not None and not v.is_absolute():
                setattr(owner, attr, base / v)
    return cfg
