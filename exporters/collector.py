"""Scrape-time collector: renders the sampler's snapshot as fresh metric families, in both dialects.

Every GPU family comes out under its native ``gpufleet_gpu_*`` name (base units, ``gpu_uuid``,
``gpu_model``, ``node``...) and, where ``gpufleet.core.naming`` gives one, under its dcgm-exporter
name and labels (``UUID``, ``modelName``, ``Hostname``, ``GPU_I_ID``...), so dashboards built for
dcgm-exporter work unchanged. A lost GPU keeps ``gpufleet_gpu_up 0`` with its identity labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from gpufleet import __version__
from gpufleet.core.naming import DCGM_LABELS, GpuMetric, xid_info
from gpufleet.exporters.backend import DeviceIdentity
from gpufleet.exporters.metrics import metric
from gpufleet.exporters.snapshot import GpuState, Snapshot

__all__ = ["GpuCollector", "PodRef", "DIALECTS", "DCGM_COUNTERS_WITHOUT_TOTAL"]

DIALECTS = ("native", "dcgm")
# native label -> dcgm-exporter label (the inverse of the shared table; "Hostname" for node).
_TO_DCGM = {v: k for k, v in DCGM_LABELS.items() if k != "hostname"}
DCGM_COUNTERS_WITHOUT_TOTAL: set[str] = set()


class PodRef(NamedTuple):
    """A container holding a device, and the pod labels allowed onto its series."""

    namespace: str
    pod: str
    container: str
    labels: tuple[tuple[str, str], ...] = ()


Attribution = dict[str, list[PodRef]]  # device id (GPU or MIG UUID) -> holders


def _family(m: GpuMetric, name: str, documentation: str) -> Metric:
    """A prometheus_client family; counters keep client_python's convention (name without ``_total``)."""
    if m.type == "counter":
        if name.endswith("_total"):
            return Metric(name[: -len("_total")], documentation, "counter")
        DCGM_COUNTERS_WITHOUT_TOTAL.add(name)
        return Metric(name, documentation, "unknown")  # rendered as a counter in text format 0.0.4
    return Metric(name, documentation, m.type)


def _esc(v: str) -> str:
    if "\\" in v or '"' in v or "\n" in v:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return v


def _pairs_text(pairs: tuple[tuple[str, str], ...]) -> str:
    return ",".join([f'{k}="{_esc(v)}"' for k, v in pairs])


class _Prefix:
    """Identity (and pod) labels shared by a GPU's series, with their text rendering cached."""

    __slots__ = ("pairs", "text")

    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self.pairs = pairs
        self.text = _pairs_text(pairs)


_EXTRA_TEXT: dict[tuple[tuple[str, str], ...], str] = {}


def _extra_text(extra: tuple[tuple[str, str], ...]) -> str:
    text = _EXTRA_TEXT.get(extra)
    if text is None:
        text = "," + _pairs_text(extra) if extra else ""
        if len(_EXTRA_TEXT) < 100_000:
            _EXTRA_TEXT[extra] = text
    return text


Row = tuple[_Prefix, tuple[tuple[str, str], ...], float]


class _Families:
    """Rows per family in first-seen order, built per scrape; rendered as Metrics or text."""

    __slots__ = ("by_name",)

    def __init__(self) -> None:
        self.by_name: dict[str, tuple[GpuMetric, list[Row]]] = {}

    def add(self, name: str, prefix: _Prefix, extra: tuple[tuple[str, str], ...], value: float,
            m: GpuMetric) -> None:
        fam = self.by_name.get(name)
        if fam is None:
            fam = self.by_name[name] = (m, [])
        fam[1].append((prefix, extra, value))

    def metrics(self) -> Iterator[Metric]:
        for name, (m, rows) in self.by_name.items():
            fam = _family(m, name, m.help)
            sample_name = name
            fam.samples = [Sample(sample_name, dict(p.pairs + e), v, None, None) for p, e, v in rows]
            yield fam

    def text(self, out: list[str], openmetrics: bool = False) -> None:
        for name, (m, rows) in self.by_name.items():
            mtype = m.type if m.type in ("counter", "gauge") else "untyped"
            fname = name
            if openmetrics and mtype == "counter":
                if name.endswith("_total"):
                    fname = name[: -len("_total")]
                else:
                    mtype = "unknown"
            elif openmetrics and mtype == "untyped":
                mtype = "unknown"
            out.append(f"# HELP {fname} {m.help}\n# TYPE {fname} {mtype}\n")
            ext = _extra_text
            out.extend([f"{name}{{{p.text}{ext(e)}}} {_num(v)}\n" for p, e, v in rows])


def _num(v: float) -> str:
    if v - v == 0:
        return repr(float(v))
    return "NaN" if v != v else ("+Inf" if v > 0 else "-Inf")


class _Registry:
    """A fixed list of families with ``collect()``, for client_python's encoders."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


class GpuCollector:
    """A prometheus_client collector over ``source()``; register it in a ``CollectorRegistry``.

    ``dialects`` picks the names rendered ("native", "dcgm" or both); ``attribution`` returns the
    current device -> pod map; ``extra`` are more collectors (e.g. probe results) called per scrape.
    ``render_text`` gives the same families as text format 0.0.4 without building sample objects.
    """

    def __init__(self, source: Callable[[], Snapshot], *, hostname: str, dialects: Iterable[str] = DIALECTS,
                 attribution: Callable[[], Attribution] | None = None,
                 extra: Iterable[Callable[[], Iterable[Metric]]] = (), backend_name: str = "nvml",
                 pod_errors: Callable[[], dict[str, float]] | None = None) -> None:
        self.source = source
        self.hostname = hostname
        self.dialects = tuple(dialects)
        unknown = set(self.dialects) - set(DIALECTS)
        if unknown or not self.dialects:
            raise ValueError(f"unknown dialect(s) {sorted(unknown)}; use native, dcgm or both")
        self.attribution = attribution
        self.extra = list(extra)
        self.backend_name = backend_name
        self.pod_errors = pod_errors
        self.last_duration = 0.0
        self._prefix_cache: dict[tuple[DeviceIdentity, tuple[tuple[str, str], ...]], tuple[_Prefix, _Prefix]] = {}

    def describe(self) -> list[Metric]:
        return []  # families vary with the hardware; nothing to pre-register

    def _prefixes(self, ident: DeviceIdentity, pods: tuple[tuple[str, str], ...] = ()) -> tuple[_Prefix, _Prefix]:
        key = (ident, pods)
        cached = self._prefix_cache.get(key)
        if cached is None:
            native = (("gpu", str(ident.gpu_index)), ("gpu_uuid", ident.uuid), ("pci_bus_id", ident.pci_bus_id),
                      ("device", f"nvidia{ident.minor}"), ("gpu_model", ident.name), ("node", self.hostname))
            dcgm = tuple((_TO_DCGM.get(k, k), v) for k, v in native)
            if len(self._prefix_cache) > 4096:
                self._prefix_cache.clear()
            cached = self._prefix_cache[key] = (_Prefix(native + pods), _Prefix(dcgm + pods))
        return cached

    # -- the two outputs -------------------------------------------------------------------------

    def collect(self, dialects: Iterable[str] | None = None) -> Iterator[Metric]:
        """Fresh families for this scrape (client_python's collector interface)."""
        started = time.perf_counter()
        dc, nat, tail = self._build(self.dialects if dialects is None else tuple(dialects))
        yield from dc.metrics()
        yield from nat.metrics()
        yield from tail
        yield from self._extra()
        self.last_duration = time.perf_counter() - started

    def render_text(self, dialects: Iterable[str] | None = None, *, openmetrics: bool = False) -> bytes:
        """The same families as text format 0.0.4, or OpenMetrics 1.0 (ending in ``# EOF``)."""
        from prometheus_client.openmetrics.exposition import generate_latest

        from gpufleet.exporters.textformat import encode_text

        started = time.perf_counter()
        dc, nat, tail = self._build(self.dialects if dialects is None else tuple(dialects))
        out: list[str] = []
        dc.text(out, openmetrics)
        nat.text(out, openmetrics)
        rest = [*tail, *self._extra()]
        body = "".join(out).encode() + (generate_latest(_Registry(rest)) if openmetrics else encode_text(rest))
        self.last_duration = time.perf_counter() - started
        return body

    def _extra(self) -> Iterator[Metric]:
        for more in self.extra:
            try:
                yield from list(more())
            except Exception:  # noqa: BLE001, S112 - an optional source never breaks the scrape
                continue

    # -- building ----------------------------------------------------------------------------------

    def _build(self, dialects: tuple[str, ...]) -> tuple[_Families, _Families, list[Metric]]:
        snap = self.source()
        native_on = "native" in dialects
        dcgm_on = "dcgm" in dialects
        try:
            attribution = self.attribution() if self.attribution else {}
        except Exception:  # noqa: BLE001
            attribution = {}
        nat = _Families()
        dc = _Families()
        alloc: list[tuple[dict[str, str], float]] = []
        no: tuple[tuple[str, str], ...] = ()
        for state in snap.gpus:
            # the kubelet still holds a lost GPU for its pod, which goes on paying for it: the allocation stays
            pods, mig_pods = self._pods(state, attribution, alloc)
            if not state.up:
                continue
            ident = state.identity
            pre_n, pre_d = self._prefixes(ident, pods)
            bare_n, bare_d = self._prefixes(ident) if pods else (pre_n, pre_d)
            for s in (*state.fast, *state.slow):
                m = metric(s.name)
                extra = s.labels
                if extra and extra[0][0] == "mig_instance":
                    owner = mig_pods.get(extra[0][1], no)
                    mn, md = self._prefixes(ident, owner)
                    if native_on:
                        nat.add(s.name, mn, extra, s.value, m)
                    if dcgm_on and m.dcgm:
                        dc.add(m.dcgm, md, tuple((_TO_DCGM.get(k, k), v) for k, v in extra), s.value / m.scale, m)
                    continue
                if native_on:
                    nat.add(s.name, pre_n, extra, s.value, m)
                if dcgm_on and m.dcgm:
                    dc.add(m.dcgm, pre_d, extra, s.value / m.scale, m)
            m = metric("gpufleet_gpu_last_xid")
            last = snap.last_xid.get(ident.uuid, 0.0)
            if native_on:
                nat.add(m.native, pre_n, no, last, m)
            if dcgm_on and m.dcgm:
                dc.add(m.dcgm, pre_d, no, last, m)
            events = snap.clock_events.get(ident.uuid)
            if events:
                m = metric("gpufleet_gpu_clock_events_total")
                for reason, n in events.items():
                    if native_on:
                        nat.add(m.native, bare_n, (("clock_event", reason),), n, m)
                    if dcgm_on and m.dcgm:
                        dc.add(m.dcgm, bare_d, (("clock_event", reason),), n, m)
        # XID counters survive a lost GPU: they are the exporter's memory of what happened.
        by_uuid = {s.identity.uuid: s.identity for s in snap.gpus}
        m = metric("gpufleet_gpu_xid_errors_total")
        seen_m = metric("gpufleet_gpu_xid_last_seen_timestamp_seconds")
        for uuid, per in snap.xids.items():
            known = by_uuid.get(uuid)
            if known is None:
                continue
            pn, pd = self._prefixes(known)
            seen = snap.xid_seen.get(uuid, {})
            for xid, n in sorted(per.items()):
                labels = (("xid", str(xid)), ("severity", xid_info(xid).severity))
                if native_on:
                    nat.add(m.native, pn, labels, n, m)
                    if xid in seen:
                        nat.add(seen_m.native, pn, labels, seen[xid], seen_m)
                if dcgm_on and m.dcgm:
                    dc.add(m.dcgm, pd, (("xid", str(xid)),), n, m)
        tail: list[Metric] = []
        up = Metric("gpufleet_gpu_up", metric("gpufleet_gpu_up").help, "gauge")
        up.samples = [Sample("gpufleet_gpu_up", dict(self._prefixes(st.identity)[0].pairs), 1.0 if st.up else 0.0,
                             None, None) for st in snap.gpus]
        tail.append(up)
        if alloc:
            fam = Metric("gpufleet_gpu_pod_allocation", metric("gpufleet_gpu_pod_allocation").help, "gauge")
            fam.samples = [Sample(fam.name, labels, share, None, None) for labels, share in alloc]
            tail.append(fam)
        tail.extend(self._self_metrics(snap))
        return dc, nat, tail

    def _pods(self, state: GpuState, attribution: Attribution, alloc: list[tuple[dict[str, str], float]],
              ) -> tuple[tuple[tuple[str, str], ...], dict[str, tuple[tuple[str, str], ...]]]:
        """Pod labels for the GPU's series (a single holder only), per MIG instance; fills allocation rows."""
        if not attribution:
            return (), {}
        ident_n = dict(self._prefixes(state.identity)[0].pairs)
        whole: tuple[tuple[str, str], ...] = ()
        holders = attribution.get(state.identity.uuid, [])
        for ref in holders:
            alloc.append(({**ident_n, "namespace": ref.namespace, "pod": ref.pod, "container": ref.container},
                          1.0 / len(holders)))
        if len(holders) == 1 and not state.migs:
            ref = holders[0]
            whole = (("container", ref.container), ("namespace", ref.namespace), ("pod", ref.pod), *ref.labels)
        mig_pods: dict[str, tuple[tuple[str, str], ...]] = {}
        for mig in state.migs:
            refs = attribution.get(mig.uuid, [])
            for ref in refs:
                alloc.append(({**ident_n, "mig_instance": str(mig.gi_id), "mig_profile": mig.profile,
                               "namespace": ref.namespace, "pod": ref.pod, "container": ref.container},
                              1.0 / len(refs)))
            if len(refs) == 1:
                r = refs[0]
                mig_pods[str(mig.gi_id)] = (("container", r.container), ("namespace", r.namespace), ("pod", r.pod),
                                            *r.labels)
        return whole, mig_pods

    def _self_metrics(self, snap: Snapshot) -> Iterator[Metric]:
        fam = Metric("gpufleet_exporter_nvml_errors", metric("gpufleet_exporter_nvml_errors_total").help, "counter")
        for (field, kind), n in sorted(snap.errors.items()):
            fam.samples.append(Sample("gpufleet_exporter_nvml_errors_total", {"field": field, "error": kind}, n,
                                      None, None))
        yield fam
        fam = Metric("gpufleet_exporter_nvml_reinits", metric("gpufleet_exporter_nvml_reinits_total").help, "counter")
        fam.samples.append(Sample("gpufleet_exporter_nvml_reinits_total", {}, snap.reinits, None, None))
        yield fam
        for name, values in (("gpufleet_exporter_sample_duration_seconds", snap.durations),
                             ("gpufleet_exporter_sample_age_seconds", snap.ages)):
            fam = Metric(name, metric(name).help, "gauge")
            for loop, v in sorted(values.items()):
                fam.samples.append(Sample(name, {"loop": loop}, v, None, None))
            yield fam
        name = "gpufleet_exporter_scrape_duration_seconds"
        fam = Metric(name, metric(name).help, "gauge")
        fam.samples.append(Sample(name, {}, self.last_duration, None, None))
        yield fam
        if self.pod_errors is not None:
            fam = Metric("gpufleet_exporter_pod_resources_errors",
                         metric("gpufleet_exporter_pod_resources_errors_total").help, "counter")
            for err, n in sorted(self.pod_errors().items()):
                fam.samples.append(Sample("gpufleet_exporter_pod_resources_errors_total", {"error": err}, n,
                                          None, None))
            yield fam
        name = "gpufleet_exporter_build_info"
        fam = Metric(name, metric(name).help, "gauge")
        fam.samples.append(Sample(name, {"version": __version__, "backend": self.backend_name,
                                         "driver_version": snap.driver_version, "node": self.hostname}, 1.0,
                                  None, None))
        yield fam
