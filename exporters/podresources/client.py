"""One call to the kubelet pod-resources v1 ``List`` over its unix socket, with failures typed by kind."""

from __future__ import annotations

import os

import grpc

from gpufleet.exporters.podresources import api_pb2
from gpufleet.exporters.podresources.kubelet_socket import PodResourcesError, check_socket

__all__ = ["LIST_METHOD", "PodResourcesError", "list_pod_resources", "socket_target"]

LIST_METHOD = "/v1.PodResourcesLister/List"
# A busy node lists every pod with its CPUs and memory; allow more than grpc's 4 MiB default.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def socket_target(socket_path: str) -> str:
    """The gRPC target for a unix socket path."""
    return "unix://" + os.path.abspath(socket_path)


def list_pod_resources(socket_path: str, timeout_s: float) -> api_pb2.ListPodResourcesResponse:
    """Call ``List`` once with a deadline; raise :class:`PodResourcesError` on any failure.

    A fresh channel per call: the kubelet may restart and re-create its socket between calls, and a
    long-lived channel would sit in reconnect backoff instead of answering at once.
    """
    check_socket(socket_path)
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES), ("grpc.enable_retries", 0)]
    try:
        with grpc.insecure_channel(socket_target(socket_path), options=options) as channel:
            call = channel.unary_unary(
                LIST_METHOD,
                request_serializer=api_pb2.ListPodResourcesRequest.SerializeToString,
                response_deserializer=api_pb2.ListPodResourcesResponse.FromString,
            )
            response: api_pb2.ListPodResourcesResponse = call(api_pb2.ListPodResourcesRequest(), timeout=timeout_s)
            return response
    except grpc.RpcError as exc:
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        kind = code.name.lower() if isinstance(code, grpc.StatusCode) else "rpc_error"
        details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
        raise PodResourcesError(kind, f"{LIST_METHOD} on {socket_path}: {details}") from None
