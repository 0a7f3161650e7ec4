"""Pod labels for attribution: a bounded, expiring cache over a fetch callable, and the API-server fetch.

The pod-resources API names pods but carries no labels; labels come from the Kubernetes API server.
Without a usable kube config there is no fetch, and attributed series carry no pod labels: they are
never guessed.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from gpufleet.exporters.podresources.devices import PodLabels, allowed_labels

__all__ = ["LabelSource", "LabelCache", "kube_label_source", "error_kind"]

LabelSource = Callable[[str, str], Mapping[str, str]]  # (namespace, pod) -> all labels of the pod


def error_kind(exc: BaseException) -> str:
    """A short error label for a failed label fetch (``labels_http_403``, ``labels_timeout``...)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status > 0:
        return f"labels_http_{status}"
    if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
        return "labels_timeout"
    return "labels_" + type(exc).__name__.lower()


class LabelCache:
    """Allowlisted labels per (namespace, pod), fetched at most every ``ttl_s``, at most ``max_pods`` kept.

    ``labels_for`` runs in the watcher's thread and may block on the API server, so a pass is bounded:
    it stops fetching after ``budget_s`` or at the first failure that is not an HTTP answer (the
    server is unreachable or slow), leaving the rest for the next pass. A failed fetch keeps the
    pod's last labels (or none), is reported through ``on_error`` and is retried after ``retry_s``.
    """

    def __init__(self, fetch: LabelSource, allowlist: Iterable[str], *, max_pods: int, ttl_s: float = 300.0,
                 retry_s: float = 60.0, budget_s: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 on_error: Callable[[str], None] = lambda kind: None) -> None:
        self.fetch = fetch
        self.allowlist = tuple(allowlist)
        self.max_pods = max_pods
        self.ttl_s = ttl_s
        self.retry_s = min(retry_s, ttl_s)
        self.budget_s = budget_s
        self.clock = clock
        self.on_error = on_error
        self._entries: OrderedDict[tuple[str, str], tuple[float, PodLabels]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def labels_for(self, pods: Iterable[tuple[str, str]]) -> dict[tuple[str, str], PodLabels]:
        """Labels of each (namespace, pod); entries of pods no longer listed are dropped."""
        wanted = list(dict.fromkeys(pods))[: self.max_pods]
        started = self.clock()
        keep = set(wanted)
        for key in [k for k in self._entries if k not in keep]:
            del self._entries[key]
        out: dict[tuple[str, str], PodLabels] = {}
        fetching = True
        for key in wanted:
            entry = self._entries.get(key)
            now = self.clock()
            if fetching and now - started >= self.budget_s:
                fetching = False
            if fetching and (entry is None or now - entry[0] >= self.ttl_s):
                try:
                    labels = allowed_labels(self.fetch(*key), self.allowlist)
                except Exception as exc:  # noqa: BLE001 - the API server's trouble never stops attribution
                    kind = error_kind(exc)
                    self.on_error(kind)
                    fetching = kind.startswith("labels_http_")
                    # expire so that the next try comes after retry_s, not after a whole ttl
                    entry = (now - self.ttl_s + self.retry_s, entry[1] if entry is not None else ())
                else:
                    entry = (now, labels)
                self._entries[key] = entry
            out[key] = entry[1] if entry is not None else ()
        return out


def kube_label_source(timeout_s: float = 2.0) -> LabelSource | None:
    """Fetch pod labels through the kubernetes client (in-cluster config, else kubeconfig), or None.

    None when the ``kubernetes`` package is missing or no configuration loads.
    """
    try:
        from kubernetes import client, config  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
        else:
            config.load_kube_config()
    except Exception:  # noqa: BLE001 - ConfigException, a missing or malformed file: no labels, not a crash
        return None
    api = client.CoreV1Api()

    def fetch(namespace: str, pod: str) -> Mapping[str, str]:
        obj = api.read_namespaced_pod(pod, namespace, _request_timeout=timeout_s)
        meta = obj.metadata
        return dict(meta.labels or {}) if meta is not None else {}

    return fetch
