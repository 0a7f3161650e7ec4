"""Exposition text for each simulated target, in the dialect a real one speaks."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gpufleet.core.naming import BY_DCGM
from gpufleet.core.simfleet.serving import Replica
from gpufleet.core.simfleet.telemetry import GpuCounters, GpuReading
from gpufleet.core.simfleet.topology import Gpu, Node, Workload

__all__ = ["Exposition", "render_node", "render_vllm", "render_sglang", "render_kube", "render_training",
           "label_str"]


def label_str(labels: Iterable[tuple[str, str]]) -> str:
    parts = []
    for k, v in labels:
        v = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{k}="{v}"')
    return "{" + ",".join(parts) + "}"


def _num(v: float) -> str:
    return repr(float(v)) if v != int(v) else str(int(v))


class Exposition:
    """Builds text format 0.0.4, one family at a time."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, mtype: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {mtype}")

    def sample(self, name: str, labels: str, value: float) -> None:
        self.lines.append(f"{name}{labels} {_num(value)}")

    def histogram(self, name: str, labels: list[tuple[str, str]], bounds: tuple[float, ...], cumulative: list[int],
                  total: float) -> None:
        for b, c in zip((*bounds, float("inf")), cumulative, strict=True):
            le = "+Inf" if b == float("inf") else repr(float(b))
            self.sample(name + "_bucket", label_str([*labels, ("le", le)]), c)
        self.sample(name + "_sum", label_str(labels), round(total, 6))
        self.sample(name + "_count", label_str(labels), cumulative[-1])

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


_DCGM_FIELDS: list[tuple[str, Callable[[GpuReading], float]]] = [
    ("DCGM_FI_DEV_SM_CLOCK", lambda r: r.sm_clock_mhz),
    ("DCGM_FI_DEV_MEM_CLOCK", lambda r: r.mem_clock_mhz),
    ("DCGM_FI_DEV_GPU_TEMP", lambda r: r.temp_c),
    ("DCGM_FI_DEV_MEMORY_TEMP", lambda r: r.mem_temp_c),
    ("DCGM_FI_DEV_POWER_USAGE", lambda r: r.power_w),
    ("DCGM_FI_DEV_GPU_UTIL", lambda r: round(r.util * 100)),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", lambda r: round(r.mem_copy_util * 100)),
    ("DCGM_FI_DEV_ENC_UTIL", lambda r: 0),
    ("DCGM_FI_DEV_DEC_UTIL", lambda r: 0),
    ("DCGM_FI_DEV_FB_FREE", lambda r: r.fb_free_mib),
    ("DCGM_FI_DEV_FB_USED", lambda r: r.fb_used_mib),
    ("DCGM_FI_DEV_FB_RESERVED", lambda r: r.fb_reserved_mib),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", lambda r: round(r.gr_active, 6)),
    ("DCGM_FI_PROF_SM_ACTIVE", lambda r: round(r.sm_active, 6)),
    ("DCGM_FI_PROF_SM_OCCUPANCY", lambda r: round(r.sm_occupancy, 6)),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", lambda r: round(r.tensor_active, 6)),
    ("DCGM_FI_PROF_DRAM_ACTIVE", lambda r: round(r.dram_active, 6)),
    ("DCGM_FI_PROF_PCIE_TX_BYTES", lambda r: round(r.pcie_tx)),
    ("DCGM_FI_PROF_PCIE_RX_BYTES", lambda r: round(r.pcie_rx)),
]
_DCGM_COUNTERS: list[tuple[str, Callable[[GpuCounters], float]]] = [
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", lambda c: round(c.energy_mj)),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", lambda c: c.pcie_replays),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", lambda c: c.remap_correctable),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", lambda c: c.remap_uncorrectable),
]
_MIG_FIELDS = ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
               "DCGM_FI_PROF_DRAM_ACTIVE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE")


def _identity(gpu: Gpu) -> list[tuple[str, str]]:
    return [("gpu", str(gpu.index)), ("UUID", gpu.uuid), ("pci_bus_id", gpu.pci_bus_id),
            ("device", f"nvidia{gpu.index}"), ("modelName", gpu.spec.name), ("Hostname", gpu.node)]


def _pod(holder: tuple[Workload, str] | None) -> list[tuple[str, str]]:
    if holder is None:
        return []
    w, pod = holder
    return [("container", w.kind if w.kind != "inference" else w.engine or "server"), ("namespace", w.namespace),
            ("pod", pod)]


def render_node(node: Node, readings: dict[str, GpuReading | None], counters: dict[str, GpuCounters],
                holders: dict[tuple[str, int | None], tuple[Workload, str]]) -> str:
    """A dcgm-exporter scrape with Kubernetes pod mapping, plus gpufleet's up and node-info series."""
    out = Exposition()
    live = [(g, readings[g.uuid]) for g in node.gpus if readings.get(g.uuid) is not None]
    ident = {g.uuid: _identity(g) for g in node.gpus}
    whole = {g.uuid: label_str(ident[g.uuid] + (_pod(holders.get((g.uuid, None))) if not g.mig else []))
             for g in node.gpus}
    for name, get in _DCGM_FIELDS:
        meta = BY_DCGM[name]
        out.family(name, "gauge", meta.help)
        for g, r in live:
            assert r is not None
            out.sample(name, whole[g.uuid], get(r))
            if name in _MIG_FIELDS:
                for inst in r.instances:
                    labels = ident[g.uuid] + [("GPU_I_ID", str(inst.instance)), ("GPU_I_PROFILE", inst.profile)]
                    labels += _pod(holders.get((g.uuid, inst.instance)))
                    value = {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": inst.gr_active, "DCGM_FI_PROF_SM_ACTIVE": inst.sm_active,
                             "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": inst.tensor_active,
                             "DCGM_FI_PROF_DRAM_ACTIVE": inst.dram_active, "DCGM_FI_DEV_FB_USED": inst.fb_used_mib,
                             "DCGM_FI_DEV_FB_FREE": inst.fb_free_mib}[name]
                    out.sample(name, label_str(labels), round(value, 6))
    for name, cget in _DCGM_COUNTERS:
        out.family(name, "counter", BY_DCGM[name].help)
        for g, _ in live:
            out.sample(name, whole[g.uuid], cget(counters[g.uuid]))
    out.family("DCGM_FI_DEV_XID_ERRORS", "gauge", BY_DCGM["DCGM_FI_DEV_XID_ERRORS"].help)
    for g, _ in live:
        out.sample("DCGM_FI_DEV_XID_ERRORS", whole[g.uuid], counters[g.uuid].last_xid)
    out.family("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", BY_DCGM["DCGM_FI_DEV_ROW_REMAP_FAILURE"].help)
    for g, _ in live:
        out.sample("DCGM_FI_DEV_ROW_REMAP_FAILURE", whole[g.uuid], counters[g.uuid].remap_failure)
    out.family("DCGM_EXP_XID_ERRORS_TOTAL", "counter", BY_DCGM["DCGM_EXP_XID_ERRORS_TOTAL"].help)
    for g in node.gpus:  # counters survive a lost GPU in the exporter's memory
        for xid, n in sorted(counters[g.uuid].xids.items()):
            out.sample("DCGM_EXP_XID_ERRORS_TOTAL", label_str(ident[g.uuid] + [("xid", str(xid))]), n)
    out.family("DCGM_EXP_CLOCK_EVENTS_TOTAL", "counter", BY_DCGM["DCGM_EXP_CLOCK_EVENTS_TOTAL"].help)
    for g, _ in live:
        for reason, n in counters[g.uuid].clock_events.items():
            out.sample("DCGM_EXP_CLOCK_EVENTS_TOTAL", label_str(ident[g.uuid] + [("clock_event", reason)]), n)
    out.family("gpufleet_gpu_up", "gauge", "1 if the GPU answers; 0 if it fell off the bus or is otherwise lost.")
    for g in node.gpus:
        labels = [("gpu", str(g.index)), ("gpu_uuid", g.uuid), ("pci_bus_id", g.pci_bus_id),
                  ("gpu_model", g.spec.name), ("node", g.node)]
        out.sample("gpufleet_gpu_up", label_str(labels), 1 if readings.get(g.uuid) is not None else 0)
    out.family("gpufleet_node_info", "gauge", "Node facts used for pricing and grouping.")
    out.sample("gpufleet_node_info", label_str([
        ("cluster", node.cluster), ("gpu_count", str(len(node.gpus))), ("gpu_model", node.gpus[0].spec.name),
        ("instance_type", node.gpus[0].spec.instance_type), ("node", node.name),
        ("pricing_category", node.pricing), ("provider", node.provider), ("region", node.region)]), 1)
    return out.text()


def _replica_hists(rep: Replica) -> list[tuple[str, object]]:
    return [("ttft", rep.ttft), ("itl", rep.itl), ("tpot", rep.tpot), ("e2e", rep.e2e), ("queue", rep.queue)]


def render_vllm(rep: Replica, model: str) -> str:
    """VLLM V1 /metrics."""
    out = Exposition()
    lab = [("engine", "0"), ("model_name", model)]
    ls = label_str(lab)
    gauges = [("vllm:num_requests_running", rep.running), ("vllm:num_requests_waiting", rep.waiting),
              ("vllm:kv_cache_usage_perc", rep.kv_usage)]
    for name, v in gauges:
        out.family(name, "gauge", name.split(":")[1].replace("_", " "))
        out.sample(name, ls, round(v, 6))
    for name, v in [("vllm:prompt_tokens_total", rep.prompt_tokens),
                    ("vllm:generation_tokens_total", rep.generation_tokens),
                    ("vllm:num_preemptions_total", rep.preemptions),
                    ("vllm:prefix_cache_queries_total", rep.prompt_tokens),
                    ("vllm:prefix_cache_hits_total", rep.cached_tokens)]:
        out.family(name, "counter", name.split(":")[1].replace("_", " "))
        out.sample(name, ls, v)
    out.family("vllm:request_success_total", "counter", "Finished requests by reason.")
    for reason, v in rep.outcomes.items():
        out.sample("vllm:request_success_total", label_str([*lab, ("finished_reason", reason)]), v)
    for name, hist in [("vllm:time_to_first_token_seconds", rep.ttft), ("vllm:inter_token_latency_seconds", rep.itl),
                       ("vllm:request_time_per_output_token_seconds", rep.tpot),
                       ("vllm:e2e_request_latency_seconds", rep.e2e), ("vllm:request_queue_time_seconds", rep.queue)]:
        out.family(name, "histogram", name.split(":")[1].replace("_", " "))
        out.histogram(name, lab, hist.bounds, [int(x) for x in hist.cumulative()], hist.total)
    return out.text()


def render_sglang(rep: Replica, model: str) -> str:
    """SGLang /metrics (``--enable-metrics``); its ITL ``_count`` counts tokens, as the real one does."""
    out = Exposition()
    lab = [("engine_type", "unified"), ("model_name", model), ("tp_rank", "0")]
    ls = label_str(lab)
    for name, v in [("sglang:num_running_reqs", rep.running), ("sglang:num_queue_reqs", rep.waiting),
                    ("sglang:token_usage", rep.kv_usage)]:
        out.family(name, "gauge", name.split(":")[1].replace("_", " "))
        out.sample(name, ls, round(v, 6))
    finished = sum(rep.outcomes.values())
    for name, v in [("sglang:prompt_tokens_total", rep.prompt_tokens),
                    ("sglang:generation_tokens_total", rep.generation_tokens),
                    ("sglang:cached_tokens_total", rep.cached_tokens),
                    ("sglang:num_requests_total", finished),
                    ("sglang:num_aborted_requests_total", rep.outcomes["abort"] + rep.outcomes["error"])]:
        out.family(name, "counter", name.split(":")[1].replace("_", " "))
        out.sample(name, ls, v)
    for name, hist in [("sglang:time_to_first_token_seconds", rep.ttft),
                       ("sglang:inter_token_latency_seconds", rep.itl),
                       ("sglang:e2e_request_latency_seconds", rep.e2e), ("sglang:queue_time_seconds", rep.queue)]:
        out.family(name, "histogram", name.split(":")[1].replace("_", " "))
        out.histogram(name, lab, hist.bounds, [int(x) for x in hist.cumulative()], hist.total)
    return out.text()


def render_kube(namespaces: dict[str, str], requests: list[tuple[str, str, str, str, int]]) -> str:
    """kube-state-metrics' namespace labels and GPU requests."""
    out = Exposition()
    out.family("kube_namespace_labels", "gauge", "Kubernetes labels converted to Prometheus labels.")
    for ns, team in sorted(namespaces.items()):
        out.sample("kube_namespace_labels", label_str([("label_team", team), ("namespace", ns)]), 1)
    out.family("kube_pod_container_resource_requests", "gauge", "The number of requested resource by a container.")
    for ns, pod, container, node, n in requests:
        out.sample("kube_pod_container_resource_requests", label_str([
            ("container", container), ("namespace", ns), ("node", node), ("pod", pod),
            ("resource", "nvidia_com_gpu"), ("unit", "integer")]), n)
    return out.text()


def render_training(w: Workload, tokens: float, steps: float, running: bool, shape: dict[str, str]) -> str:
    """A training job's own metrics (the gpufleet training SDK names)."""
    out = Exposition()
    ls = label_str([("job", w.name)])
    out.family("gpufleet_training_tokens_total", "counter", "Tokens processed by the job.")
    out.sample("gpufleet_training_tokens_total", ls, round(tokens))
    out.family("gpufleet_training_steps_total", "counter", "Optimizer steps taken.")
    out.sample("gpufleet_training_steps_total", ls, round(steps))
    out.family("gpufleet_training_up", "gauge", "1 while the job makes progress.")
    out.sample("gpufleet_training_up", ls, 1 if running else 0)
    out.family("gpufleet_training_job_info", "gauge", "Model shape and placement of the job.")
    out.sample("gpufleet_training_job_info", label_str([("job", w.name), *sorted(shape.items())]), 1)
    return out.text()
