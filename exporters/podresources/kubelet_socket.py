"""The kubelet socket check that needs no gRPC: an absent socket is the common case off Kubernetes."""

from __future__ import annotations

import os
import stat

__all__ = ["PodResourcesError", "check_socket"]


class PodResourcesError(Exception):
    """A failed ``List`` call; ``kind`` is the error label (``socket_absent``, ``deadline_exceeded``...)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def check_socket(socket_path: str) -> None:
    """Raise :class:`PodResourcesError` unless ``socket_path`` is a unix socket."""
    try:
        mode = os.stat(socket_path).st_mode
    except FileNotFoundError:
        raise PodResourcesError("socket_absent", f"{socket_path} does not exist") from None
    except OSError as exc:
        raise PodResourcesError("socket_unreadable", f"{socket_path}: {exc.strerror}") from None
    if not stat.S_ISSOCK(mode):
        raise PodResourcesError("not_a_socket", f"{socket_path} is not a unix socket")
