"""Pure mapping from a kubelet pod-resources ``List`` answer to GPU holders and an attribution map.

The NVIDIA device plugin hands out ``nvidia.com/gpu`` (whole GPUs), ``nvidia.com/mig-<profile>``
(MIG instances, under the mixed strategy) and, with time-slicing renamed, ``nvidia.com/gpu.shared``
or ``nvidia.com/mig-<profile>.shared``. Under time-slicing each replica is a device id of the form
``<UUID>::<N>``; every replica maps back to the GPU's UUID and every container holding one is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

from gpufleet.exporters.collector import Attribution, PodRef

__all__ = [
    "Holder", "PodLabels", "is_gpu_resource", "device_uuid", "gpu_holders", "build_attribution",
    "allowed_labels", "label_name",
]

PodLabels = tuple[tuple[str, str], ...]
_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_]")


class Holder(NamedTuple):
    """A container holding one device (a GPU or MIG UUID, replica suffix stripped)."""

    device: str
    namespace: str
    pod: str
    container: str


class _Devices(Protocol):
    resource_name: str
    device_ids: Sequence[str]


class _Container(Protocol):
    name: str
    devices: Sequence[_Devices]


class _Pod(Protocol):
    name: str
    namespace: str
    containers: Sequence[_Container]


class _Listing(Protocol):
    pod_resources: Sequence[_Pod]


def is_gpu_resource(resource_name: str) -> bool:
    """True for the NVIDIA GPU resources: whole GPUs, MIG instances, and their ``.shared`` variants."""
    name = resource_name.removesuffix(".shared")
    return name == "nvidia.com/gpu" or (name.startswith("nvidia.com/mig-") and len(name) > len("nvidia.com/mig-"))


def device_uuid(device_id: str) -> str:
    """The UUID behind a device id: ``GPU-abc::3`` (time-sliced replica 3) -> ``GPU-abc``."""
    base, sep, replica = device_id.rpartition("::")
    if sep and base and replica.isdigit():
        return base
    return device_id


def gpu_holders(listing: _Listing) -> list[Holder]:
    """Every (device, container) pair for GPU resources, in the kubelet's order, without repeats.

    A container holding two replicas of one time-sliced GPU is one holder of that GPU.
    """
    out: list[Holder] = []
    seen: set[Holder] = set()
    for pod in listing.pod_resources:
        for container in pod.containers:
            for devices in container.devices:
                if not is_gpu_resource(devices.resource_name):
                    continue
                for device_id in devices.device_ids:
                    if not device_id:
                        continue
                    h = Holder(device_uuid(device_id), pod.namespace, pod.name, container.name)
                    if h not in seen:
                        seen.add(h)
                        out.append(h)
    return out


def label_name(key: str) -> str:
    """A pod label key as a Prometheus label name: ``app.kubernetes.io/name`` -> ``label_app_kubernetes_io_name``."""
    return "label_" + _LABEL_CHARS.sub("_", key)


def allowed_labels(labels: Mapping[str, str], allowlist: Iterable[str]) -> PodLabels:
    """The allowlisted pod labels (only those the pod has), renamed for Prometheus and sorted."""
    return tuple(sorted((label_name(k), labels[k]) for k in set(allowlist) if k in labels))


def build_attribution(holders: Iterable[Holder], labels: Mapping[tuple[str, str], PodLabels] | None = None,
                      *, max_entries: int) -> tuple[Attribution, int]:
    """Device -> holders, keeping at most ``max_entries`` holders in all; also returns how many were dropped.

    ``labels`` maps (namespace, pod) to the pod's allowlisted labels; pods missing from it get none.
    Holders of a device are sorted by namespace, pod and container so the map does not depend on
    the kubelet's order.
    """
    labels = labels or {}
    out: Attribution = {}
    kept = dropped = 0
    for h in holders:
        if kept >= max_entries:
            dropped += 1
            continue
        out.setdefault(h.device, []).append(PodRef(h.namespace, h.pod, h.container, labels.get((h.namespace, h.pod),
                                                                                              ())))
        kept += 1
    for refs in out.values():
        refs.sort()
    return out, dropped
