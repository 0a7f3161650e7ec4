"""GPU -> pod attribution from the kubelet pod-resources v1 API (needs ``gpufleet[k8s]``: grpcio, protobuf).

Importing this package raises ImportError without grpcio, but grpc itself is loaded only once the
kubelet socket exists, so an exporter off Kubernetes does not carry it.
"""

from importlib.util import find_spec

if find_spec("grpc") is None or find_spec("google.protobuf") is None:
    raise ImportError("pod attribution needs grpcio and protobuf (pip install 'gpufleet[k8s]')")

from gpufleet.exporters.podresources.devices import (  # noqa: E402
    build_attribution,
    device_uuid,
    gpu_holders,
    is_gpu_resource,
)
from gpufleet.exporters.podresources.kubelet_socket import PodResourcesError  # noqa: E402
from gpufleet.exporters.podresources.watcher import DEFAULT_MAX_ENTRIES, PodResourcesWatcher  # noqa: E402

__all__ = [
    "PodResourcesWatcher", "PodResourcesError", "DEFAULT_MAX_ENTRIES", "build_attribution", "device_uuid",
    "gpu_holders", "is_gpu_resource",
]
