"""Facts derived from one scrape's canonical series: GPUs, allocations, nodes, teams, probes.

These feed the dimension tables; they are read from the same series that land as samples,
so nothing reaches the store except through the exposition path.
"""

from __future__ import annotations

from dataclasses import replace

from gpufleet.core.store.batch import AllocationRow, Batch, GpuRow, NodeRow, ProbeRow

__all__ = ["derive_dimensions", "mig_share", "probe_rows"]

MIG_SLICES = 7


def mig_share(profile: str | None) -> float:
    """Share of a GPU a MIG profile holds: ``3g.40gb`` -> 3/7; no profile -> the whole GPU."""
    if not profile:
        return 1.0
    head = profile.split(".", 1)[0]
    if "g" in head:
        head = head.split("g", 1)[0].split("c")[-1]
    try:
        return min(int(head), MIG_SLICES) / MIG_SLICES
    except ValueError:
        return 1.0


_Derived = tuple[tuple[int, ...], list[GpuRow], list[AllocationRow], list[NodeRow], dict[str, str | None]]
# (target, series ids in order) -> what they gave last time: a target's scrapes repeat their series,
# and these rows depend on the series' labels only, never on values.
_DERIVED: dict[tuple[str, int], _Derived] = {}
_DERIVED_MAX = 50_000


def derive_dimensions(batch: Batch) -> None:
    """Fill ``batch.gpus``, ``allocations``, ``nodes``, ``namespaces`` and ``probes`` from its series."""
    ids = tuple(batch.series)
    key = (batch.target, hash(ids))
    hit = _DERIVED.get(key)
    if hit is not None and hit[0] == ids:
        batch.gpus.extend(hit[1])
        batch.allocations.extend(hit[2])
        batch.nodes.extend(hit[3])
        batch.namespaces.update(hit[4])
    else:
        marks = len(batch.gpus), len(batch.allocations), len(batch.nodes)
        before = dict(batch.namespaces)
        _derive_rows(batch)
        if len(_DERIVED) >= _DERIVED_MAX:
            _DERIVED.clear()
        _DERIVED[key] = (ids, batch.gpus[marks[0]:], batch.allocations[marks[1]:], batch.nodes[marks[2]:],
                         {k: v for k, v in batch.namespaces.items() if before.get(k, ...) != v})
    probe_rows(batch)


def _derive_rows(batch: Batch) -> None:
    """The label-derived rows of ``batch``: GPUs, allocations, nodes and namespaces."""
    gpus: dict[str, GpuRow] = {}
    # (gpu_uuid, mig instance) -> (profile, cluster, node, {(namespace, pod, container)})
    units: dict[tuple[str, str], tuple[str | None, str | None, str | None, set[tuple[str, str, str]]]] = {}
    for s in batch.series.values():
        lab = s.labels
        if s.metric.startswith("gpufleet_gpu_") and lab.get("gpu_uuid"):
            uuid = lab["gpu_uuid"]
            if uuid not in gpus:
                gpus[uuid] = GpuRow(uuid, lab.get("cluster"), lab.get("node"), lab.get("gpu"),
                                    lab.get("gpu_model"), None)
            mig = lab.get("mig_instance", "")
            unit = units.setdefault((uuid, mig), (lab.get("mig_profile"), lab.get("cluster"), lab.get("node"), set()))
            if lab.get("pod"):
                unit[3].add((lab.get("namespace", ""), lab["pod"], lab.get("container", "")))
        elif s.metric == "gpufleet_node_info" and lab.get("node"):
            count = lab.get("gpu_count")
            batch.nodes.append(NodeRow(lab["node"], lab.get("cluster"), lab.get("provider"), lab.get("region"),
                                       lab.get("instance_type"), lab.get("pricing_category"), lab.get("gpu_model"),
                                       int(count) if count and count.isdigit() else None))
        elif s.metric == "kube_namespace_labels" and lab.get("namespace"):
            batch.namespaces[lab["namespace"]] = lab.get("label_team") or None
    mig_gpus = {uuid for uuid, mig in units if mig}
    for (uuid, mig), (profile, cluster, node, holders) in units.items():
        if uuid in mig_gpus and not mig:
            continue  # the parent of MIG instances is accounted for by its instances
        share = mig_share(profile) if mig else 1.0
        if not holders:
            batch.allocations.append(AllocationRow(uuid, cluster, node, None, None, None, share))
            continue
        for ns, pod, container in sorted(holders):
            batch.allocations.append(AllocationRow(uuid, cluster, node, ns or None, pod, container or None,
                                                   share / len(holders)))
    profiles: dict[str, set[str]] = {}
    for (uuid, mig), (profile, *_rest) in units.items():
        if mig and profile:
            profiles.setdefault(uuid, set()).add(str(profile))
    for uuid, row in gpus.items():
        found = profiles.get(uuid)
        batch.gpus.append(replace(row, mig_profile=",".join(sorted(found))) if found else row)


def probe_rows(batch: Batch) -> None:
    """Fill ``batch.probes`` from its probe gauges (values, so never remembered across scrapes)."""
    probes = [(sid, s) for sid, s in batch.series.items()
              if s.metric.startswith("gpufleet_probe_") and s.metric != "gpufleet_probe_info"]
    if not probes:
        return
    values = {sid: v for sid, _, v in batch.gauges}
    for sid, s in probes:
        if sid not in values:
            continue
        probe = s.metric.removeprefix("gpufleet_probe_")
        unit = next((u for u in ("bytes_per_second", "flops", "ratio", "seconds") if probe.endswith(u)), "")
        name = probe.removesuffix("_" + unit) if unit else probe
        for qualifier in ("dtype", "collective", "direction", "kernel", "verdict"):
            if s.labels.get(qualifier):
                name = f"{name}_{s.labels[qualifier]}"
        lab = s.labels
        batch.probes.append(ProbeRow(lab.get("cluster"), lab.get("node"), lab.get("gpu_uuid"), lab.get("gpu_model"),
                                     name, values[sid], unit))
