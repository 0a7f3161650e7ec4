"""GPU -> pod attribution from the kubelet pod-resources v1 API (needs ``gpufleet[k8s]``: grpcio, protobuf)."""

from gpufleet.exporters.podresources.client import PodResourcesError, list_pod_resources
from gpufleet.exporters.podresources.devices import build_attribution, device_uuid, gpu_holders, is_gpu_resource
from gpufleet.exporters.podresources.watcher import DEFAULT_MAX_ENTRIES, PodResourcesWatcher

__all__ = [
    "PodResourcesWatcher", "PodResourcesError", "DEFAULT_MAX_ENTRIES", "list_pod_resources", "build_attribution",
    "device_uuid", "gpu_holders", "is_gpu_resource",
]
