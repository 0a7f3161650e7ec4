"""Metric definitions the exporter adds beyond ``gpufleet.core.naming`` (native names only).

The shared table holds everything that has a dcgm-exporter name; these have none (or are the
exporter's reports on itself), so they live here and render in the native dialect alone.
"""

from __future__ import annotations

from gpufleet.core.naming import BY_NATIVE, GpuMetric

__all__ = ["EXTRA_METRICS", "SELF_METRICS", "ALL_GPU_METRICS", "metric"]

EXTRA_METRICS: tuple[GpuMetric, ...] = (
    GpuMetric("gpufleet_gpu_memory_total_bytes", None, "gauge", 1.0, "Framebuffer memory in total."),
    GpuMetric("gpufleet_gpu_ecc_errors_total", None, "counter", 1.0,
              "ECC errors by type (corrected, uncorrected) and counter (volatile since boot, aggregate lifetime)."),
    GpuMetric("gpufleet_gpu_clock_violation_seconds_total", None, "counter", 1.0,
              "Time clocks were held below target, by reason."),
    GpuMetric("gpufleet_gpu_clock_event_active", None, "gauge", 1.0,
              "1 while a clock-event (throttle) reason is active, by reason."),
    GpuMetric("gpufleet_gpu_nvlink_errors_total", None, "counter", 1.0, "NVLink errors summed over links, by kind."),
    GpuMetric("gpufleet_gpu_row_remap_pending", None, "gauge", 1.0, "1 if a row remap waits for a GPU reset."),
    GpuMetric("gpufleet_gpu_process_memory_used_bytes", None, "gauge", 1.0,
              "Device memory held by a compute process, by pid."),
    GpuMetric("gpufleet_gpu_gpm_supported", None, "gauge", 1.0,
              "1 if the GPU exposes GPM profiling metrics through NVML (Hopper and newer)."),
    GpuMetric("gpufleet_gpu_xid_last_seen_timestamp_seconds", None, "gauge", 1.0,
              "Unix time an XID was last seen on the GPU, by code and severity."),
    GpuMetric("gpufleet_gpu_pod_allocation", None, "gauge", 1.0,
              "Share of the GPU (or GPU instance) allocated to a container: 1, or 1/N under time-slicing."),
)

SELF_METRICS: tuple[GpuMetric, ...] = (
    GpuMetric("gpufleet_exporter_nvml_errors_total", None, "counter", 1.0,
              "Device calls that failed, by call (field) and error kind."),
    GpuMetric("gpufleet_exporter_nvml_reinits_total", None, "counter", 1.0,
              "Times NVML was shut down and initialised again to recover lost GPUs or a reloaded driver."),
    GpuMetric("gpufleet_exporter_sample_duration_seconds", None, "gauge", 1.0,
              "Duration of the last sampling pass, by loop (fast, slow)."),
    GpuMetric("gpufleet_exporter_sample_age_seconds", None, "gauge", 1.0,
              "Seconds since the last completed sampling pass, by loop."),
    GpuMetric("gpufleet_exporter_scrape_duration_seconds", None, "gauge", 1.0,
              "Time the previous scrape took to render."),
    GpuMetric("gpufleet_exporter_pod_resources_errors_total", None, "counter", 1.0,
              "Failed kubelet pod-resources calls, by error."),
    GpuMetric("gpufleet_exporter_build_info", None, "gauge", 1.0, "Exporter version, backend and driver version."),
)

ALL_GPU_METRICS: dict[str, GpuMetric] = {**BY_NATIVE, **{m.native: m for m in EXTRA_METRICS + SELF_METRICS}}


def metric(native: str) -> GpuMetric:
    """The definition of a native metric name, from the shared table or this module."""
    return ALL_GPU_METRICS[native]
