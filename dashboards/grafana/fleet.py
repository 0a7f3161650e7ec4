"""The GPU fleet dashboard over gpufleet's native ``gpufleet_gpu_*`` metrics."""

from __future__ import annotations

from typing import Any

from gpufleet.dashboards.grafana.model import Panel, Query, dashboard, datasource_var, query_var

__all__ = ["rows", "fleet_dashboard", "UID"]

UID = "gpufleet-gpu-fleet"
S = 'cluster=~"$cluster", node=~"$node"'
N = f'{S}, namespace=~"$namespace"'
R = "$__rate_interval"


def _ts(title: str, expr: str, legend: str, unit: str = "short", *, width: int = 12, main: bool = True,
        description: str = "") -> Panel:
    return Panel(title, "timeseries", (Query(expr, legend, main=main),), unit=unit, width=width,
                 description=description)


def _stat(title: str, expr: str, unit: str = "short", *, main: bool = True) -> Panel:
    return Panel(title, "stat", (Query(expr, instant=True, main=main),), unit=unit, width=4, height=4)


def rows() -> list[tuple[str, list[Panel]]]:
    overview = [
        _stat("GPUs up", f"sum(gpufleet_gpu_up{{{S}}})"),
        _stat("GPUs lost", f"count(gpufleet_gpu_up{{{S}}} == 0) or vector(0)"),
        _stat("Mean utilization", f"avg(gpufleet_gpu_utilization_ratio{{{S}}})", "percentunit"),
        _stat("Power", f"sum(gpufleet_gpu_power_watts{{{S}}})", "watt"),
        _stat("Energy in range", f"sum(increase(gpufleet_gpu_energy_joules_total{{{S}}}[$__range])) / 3.6e6",
              "kwatth"),
        _stat("Critical XIDs in range",
              f"sum(increase(gpufleet_gpu_xid_errors_total{{{S}, xid=~\"46|48|61|62|64|74|79|95|119|120\"}}"
              f"[$__range])) or vector(0)"),
        _ts("Utilization by node", f"avg by (node) (gpufleet_gpu_utilization_ratio{{{S}}})", "{{node}}",
            "percentunit"),
        _ts("GPUs up by model", f"sum by (gpu_model) (gpufleet_gpu_up{{{S}}})", "{{gpu_model}}"),
    ]
    workloads = [
        _ts("Allocated GPUs by namespace", f"sum by (namespace) (gpufleet_gpu_pod_allocation{{{N}}})",
            "{{namespace}}", description="Share of GPUs held by containers (1/N per GPU under time-slicing)."),
        _ts("Used GPUs by namespace (utilization x allocation)",
            f"sum by (namespace) (gpufleet_gpu_utilization_ratio{{{N}, namespace!=\"\"}})", "{{namespace}}"),
        _ts("Memory used by pod", f"sum by (namespace, pod) (gpufleet_gpu_memory_used_bytes{{{N}, pod!=\"\"}})",
            "{{namespace}}/{{pod}}", "bytes"),
        _ts("Idle allocated GPUs (utilization < 5%)",
            f"count by (namespace) (gpufleet_gpu_utilization_ratio{{{N}, namespace!=\"\"}} < 0.05)",
            "{{namespace}}", main=False),
    ]
    health = [
        _ts("Temperature (max per node)", f"max by (node) (gpufleet_gpu_temperature_celsius{{{S}}})", "{{node}}",
            "celsius"),
        _ts("HBM temperature (max per node)", f"max by (node) (gpufleet_gpu_memory_temperature_celsius{{{S}}})",
            "{{node}}", "celsius"),
        Panel("XID errors", "table", (Query(
            f"sum by (node, gpu, gpu_uuid, xid) (gpufleet_gpu_xid_errors_total{{{S}}}) > 0", instant=True),),
            width=12, description="XIDs counted since the exporter started, per GPU and code."),
        _ts("XID rate by code", f"sum by (xid) (rate(gpufleet_gpu_xid_errors_total{{{S}}}[{R}]))", "XID {{xid}}",
            "cps", main=False),
        _ts("ECC errors (volatile) by type",
            f"sum by (node, gpu, type) (rate(gpufleet_gpu_ecc_errors_total{{{S}, counter=\"volatile\"}}[{R}]))",
            "{{node}}/{{gpu}} {{type}}", "cps"),
        _ts("Remapped rows and remap state",
            f"sum by (node, gpu) (gpufleet_gpu_remapped_rows_uncorrectable_total{{{S}}})", "{{node}}/{{gpu}}"),
        _ts("Throttle time by reason", f"sum by (reason) (rate(gpufleet_gpu_clock_violation_seconds_total{{{S}}}"
            f"[{R}]))", "{{reason}}", "percentunit"),
        _ts("PCIe replays", f"sum by (node) (rate(gpufleet_gpu_pcie_replays_total{{{S}}}[{R}]))", "{{node}}", "cps"),
    ]
    energy = [
        _ts("Power by node", f"sum by (node) (gpufleet_gpu_power_watts{{{S}}})", "{{node}}", "watt"),
        _ts("Energy rate by namespace", f"sum by (namespace) (rate(gpufleet_gpu_energy_joules_total{{{N}}}[{R}]))",
            "{{namespace}}", "watt"),
    ]
    profiling = [
        _ts("SM active", f"avg by (node) (gpufleet_gpu_sm_active_ratio{{{S}}})", "{{node}}", "percentunit",
            width=8),
        _ts("Tensor pipe active", f"avg by (node) (gpufleet_gpu_tensor_active_ratio{{{S}}})", "{{node}}",
            "percentunit", width=8),
        _ts("DRAM active", f"avg by (node) (gpufleet_gpu_dram_active_ratio{{{S}}})", "{{node}}", "percentunit",
            width=8),
        _ts("SM occupancy", f"avg by (node) (gpufleet_gpu_sm_occupancy_ratio{{{S}}})", "{{node}}", "percentunit",
            width=8),
        _ts("PCIe throughput", f"sum by (node) (gpufleet_gpu_pcie_transmit_bytes_per_second{{{S}}} + "
            f"gpufleet_gpu_pcie_receive_bytes_per_second{{{S}}})", "{{node}}", "Bps", width=8),
        _ts("NVLink throughput", f"sum by (node) (rate(gpufleet_gpu_nvlink_bytes_total{{{S}}}[{R}]))", "{{node}}",
            "Bps", width=8, main=False),
        _ts("GPM profiling supported", f"sum by (node) (gpufleet_gpu_gpm_supported{{{S}}})", "{{node}}", width=8),
        _ts("Exporter device-call errors", f"sum by (node, field) (rate(gpufleet_exporter_nvml_errors_total{{{S}}}"
            f"[{R}]))", "{{node}} {{field}}", "cps", width=8, main=False),
        _ts("Exporter scrape duration", f"max by (node) (gpufleet_exporter_scrape_duration_seconds{{{S}}})",
            "{{node}}", "s", width=8),
    ]
    return [("Overview", overview), ("Workloads (pods and namespaces)", workloads), ("Health: XID, ECC, thermals",
            health), ("Energy", energy), ("Profiling", profiling)]


def fleet_dashboard() -> dict[str, Any]:
    """The GPU fleet dashboard document."""
    variables = [
        datasource_var(),
        query_var("cluster", "Cluster", "label_values(gpufleet_gpu_up, cluster)"),
        query_var("node", "Node", 'label_values(gpufleet_gpu_up{cluster=~"$cluster"}, node)'),
        query_var("namespace", "Namespace", 'label_values(gpufleet_gpu_pod_allocation{cluster=~"$cluster"}, '
                                            'namespace)'),
    ]
    return dashboard(UID, "gpufleet / GPU fleet", rows(), variables, tags=["gpufleet", "gpu"],
                     description="GPUs from gpufleet's exporter (native names): health, pods, XIDs, ECC, energy, "
                                 "profiling.")
