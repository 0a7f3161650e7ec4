"""Background refresh of GPU -> pod attribution from the kubelet; scrapes read the last result, never wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from gpufleet.exporters.collector import Attribution
from gpufleet.exporters.podresources.devices import build_attribution, gpu_holders
from gpufleet.exporters.podresources.kubelet_socket import PodResourcesError, check_socket
from gpufleet.exporters.podresources.labels import LabelCache, LabelSource, kube_label_source

__all__ = ["PodResourcesWatcher", "DEFAULT_MAX_ENTRIES"]

DEFAULT_MAX_ENTRIES = 4096  # holders kept in all: 8 GPUs x 7 MIG instances x time-slicing fits many times


class PodResourcesWatcher:
    """Polls the kubelet pod-resources ``List`` every ``refresh_s`` in a daemon thread.

    ``attribution()`` returns the last map (device UUID -> holders) without blocking; ``errors()``
    counts failures by kind (``socket_absent``, ``unavailable``, ``deadline_exceeded``,
    ``too_many_devices``, ``labels_*``...). A failed poll keeps the previous map for ``stale_s``
    (default three refreshes) and then empties it; an absent socket empties it at once.
    ``label_allowlist`` names pod labels copied onto series; they are fetched through
    ``label_source`` (default: the kubernetes client when a kube config loads, else no labels).
    """

    def __init__(self, socket_path: str, *, refresh_s: float = 10.0, timeout_s: float = 2.0,
                 max_entries: int = DEFAULT_MAX_ENTRIES, label_allowlist: Iterable[str] = (),
                 label_source: LabelSource | None = None, label_ttl_s: float = 300.0,
                 stale_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if not socket_path:
            raise ValueError("socket_path: empty; give the kubelet pod-resources socket path")
        for name, value in (("refresh_s", refresh_s), ("timeout_s", timeout_s), ("label_ttl_s", label_ttl_s)):
            if not value > 0:
                raise ValueError(f"{name} {value}: use a number of seconds above 0")
        if max_entries < 1:
            raise ValueError(f"max_entries {max_entries}: use at least 1")
        allowlist = tuple(dict.fromkeys(k.strip() for k in label_allowlist))
        bad = [k for k in allowlist if not k or any(c.isspace() or c in "=," for c in k)]
        if bad:
            raise ValueError(f"label_allowlist {bad!r}: pod label keys cannot be empty or hold spaces, '=' or ','")
        self.socket_path = socket_path
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self.max_entries = max_entries
        self.label_allowlist = allowlist
        self.stale_s = 3 * refresh_s if stale_s is None else stale_s
        self.clock = clock
        self._label_source = label_source
        self._label_ttl_s = label_ttl_s
        self._labels: LabelCache | None = None
        self._labels_ready = not allowlist
        self._current: Attribution = {}
        self._good_at: float | None = None
        self._errors: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshes = 0

    # -- what scrapes read -----------------------------------------------------------------------

    def attribution(self) -> Attribution:
        """The last attribution map (shared, do not mutate)."""
        return self._current

    def errors(self) -> dict[str, float]:
        """Failures so far, by kind."""
        with self._lock:
            return dict(self._errors)

    # -- polling ---------------------------------------------------------------------------------

    def _count(self, kind: str, n: float = 1.0) -> None:
        with self._lock:
            self._errors[kind] = self._errors.get(kind, 0.0) + n

    def _label_cache(self) -> LabelCache | None:
        if not self._labels_ready:
            self._labels_ready = True
            source = self._label_source or kube_label_source(self.timeout_s)
            if source is None:
                self._count("labels_unconfigured")
            else:
                self._labels = LabelCache(source, self.label_allowlist, max_pods=self.max_entries,
                                          ttl_s=self._label_ttl_s, budget_s=self.refresh_s, clock=self.clock,
                                          on_error=self._count)
        return self._labels

    def refresh(self) -> bool:
        """Poll once now (the thread calls this); True when the kubelet answered."""
        self.refreshes += 1
        try:
            check_socket(self.socket_path)  # before importing grpc: off Kubernetes it is never loaded
            from gpufleet.exporters.podresources.client import list_pod_resources

            listing = list_pod_resources(self.socket_path, self.timeout_s)
        except PodResourcesError as exc:
            self._count(exc.kind)
            if exc.kind == "socket_absent" or self._good_at is None or self.clock() - self._good_at >= self.stale_s:
                self._current = {}
            return False
        holders = gpu_holders(listing)
        cache = self._label_cache()
        labels = cache.labels_for((h.namespace, h.pod) for h in holders) if cache is not None else None
        attribution, dropped = build_attribution(holders, labels, max_entries=self.max_entries)
        if dropped:
            self._count("too_many_devices")
        self._current = attribution
        self._good_at = self.clock()
        return True

    def start(self) -> None:
        """Start polling in a daemon thread (the first poll runs at once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="gpufleet-pod-resources", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - the loop never dies
                self._count("internal_" + type(exc).__name__.lower())
            self._stop.wait(self.refresh_s)

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling; waits for an in-flight call (bounded by ``timeout_s``)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.timeout_s + 1.0 if timeout is None else timeout)

    close = stop
