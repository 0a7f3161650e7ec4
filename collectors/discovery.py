"""Where the targets are: static lists, file-based discovery and Kubernetes pod annotations.

File discovery reads Prometheus' ``file_sd`` format (JSON or YAML): a list of
``{"targets": ["host:port", ...], "labels": {...}}``. Kubernetes discovery keeps pods annotated
``prometheus.io/scrape: "true"``; ``prometheus.io/port``, ``/path`` and ``/scheme`` override the
defaults. The annotation mapping is a pure function of pod objects.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpufleet.collectors.config import JobConfig

__all__ = ["TargetSpec", "static_targets", "file_targets", "pod_targets", "kubernetes_targets", "DiscoveryError"]


class DiscoveryError(ValueError):
    """A discovery source that cannot be read; the previous targets of that source are kept."""


@dataclass(frozen=True)
class TargetSpec:
    """One endpoint to scrape: ``name`` is host:port, ``url`` what is fetched."""

    job: str
    name: str
    url: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.job, self.url


def _url(job: JobConfig, hostport: str, scheme: str | None = None, path: str | None = None) -> str:
    return f"{scheme or job.scheme}://{hostport}{path or job.metrics_path}"


def static_targets(job: JobConfig) -> list[TargetSpec]:
    """The job's static targets."""
    out = []
    for group in job.static:
        for t in group.targets:
            out.append(TargetSpec(job.name, t, _url(job, t), {"job": job.name, **group.labels}))
    return out


def _groups(path: Path) -> list[Mapping[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DiscoveryError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise DiscoveryError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(g, dict) for g in data):
        raise DiscoveryError(f"{path}: must be a list of {{targets: [...], labels: {{...}}}} groups")
    return data


def file_targets(job: JobConfig) -> tuple[list[TargetSpec], list[str]]:
    """Targets from the job's file_sd globs, and one error line per file that could not be used."""
    out: list[TargetSpec] = []
    errors: list[str] = []
    for pattern in job.file_sd:
        for name in sorted(glob.glob(pattern)):
            try:
                groups = _groups(Path(name))
            except DiscoveryError as exc:
                errors.append(str(exc))
                continue
            for i, g in enumerate(groups):
                targets, labels = g.get("targets", []), g.get("labels", {}) or {}
                if not isinstance(targets, list) or not isinstance(labels, dict):
                    errors.append(f"{name}: group {i}: 'targets' must be a list and 'labels' a mapping")
                    continue
                for t in targets:
                    if not isinstance(t, str) or ":" not in t:
                        errors.append(f"{name}: group {i}: target {t!r} must be host:port")
                        continue
                    extra = {str(k): str(v) for k, v in labels.items() if not str(k).startswith("__")}
                    out.append(TargetSpec(job.name, t, _url(job, t, labels.get("__scheme__"),
                                                            labels.get("__metrics_path__")),
                                          {"job": job.name, **extra}))
    return out, errors


def pod_targets(job: JobConfig, pods: Iterable[Any]) -> list[TargetSpec]:
    """Map pod objects (kubernetes client ``V1Pod`` or the same shape) to targets by their annotations."""
    out = []
    for pod in pods:
        meta, spec, status = pod.metadata, pod.spec, pod.status
        ann = dict(meta.annotations or {})
        if ann.get("prometheus.io/scrape", "").lower() != "true":
            continue
        ip = getattr(status, "pod_ip", None)
        if not ip or getattr(status, "phase", "Running") != "Running":
            continue
        port = ann.get("prometheus.io/port")
        if port is None:
            ports = [p.container_port for c in (spec.containers or []) for p in (c.ports or [])]
            if not ports:
                continue
            port = str(ports[0])
        if not port.isdigit():
            continue
        path = ann.get("prometheus.io/path") or job.metrics_path
        scheme = ann.get("prometheus.io/scheme") or job.scheme
        labels = {"job": job.name, "namespace": meta.namespace or "", "pod": meta.name or ""}
        node = getattr(spec, "node_name", None)
        if node:
            labels["node"] = node
        for k, v in (meta.labels or {}).items():
            if k in ("app", "app.kubernetes.io/name", "team"):
                labels[k.rsplit("/", 1)[-1].replace(".", "_")] = v
        out.append(TargetSpec(job.name, f"{ip}:{port}", f"{scheme}://{ip}:{port}{path}", labels))
    return out


def kubernetes_targets(job: JobConfig) -> list[TargetSpec]:
    """List pods through the ``kubernetes`` client (the ``k8s`` extra) and map them."""
    assert job.kubernetes is not None
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise DiscoveryError("kubernetes discovery needs the k8s extra: pip install 'gpufleet[k8s]'") from exc
    try:
        if job.kubernetes.kubeconfig:
            config.load_kube_config(str(job.kubernetes.kubeconfig))
        else:
            config.load_incluster_config()
    except Exception as exc:  # the client raises several unrelated types here
        raise DiscoveryError(f"job {job.name}: cannot reach the Kubernetes API: {exc}") from exc
    api = client.CoreV1Api()
    pods: list[Any] = []
    namespaces: list[str | None] = [*job.kubernetes.namespaces] or [None]
    for ns in namespaces:
        items = api.list_namespaced_pod(ns).items if ns else api.list_pod_for_all_namespaces().items
        pods.extend(items)
    return pod_targets(job, pods)
