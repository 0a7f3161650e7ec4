"""The one table of GPU metric names: dcgm-exporter names, native base-unit names, scales.

The exporter renders both names from it, the simulated fleet renders the dcgm-exporter
names, and ingestion maps either onto the native name. Change a metric here, nowhere else.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["GpuMetric", "GPU_METRICS", "BY_DCGM", "BY_NATIVE", "DCGM_LABELS", "XID_CATALOGUE", "XidInfo"]

MIB = 1024 * 1024


class GpuMetric(NamedTuple):
    """A GPU measurement: ``native = dcgm * scale``."""

    native: str
    dcgm: str | None
    type: str  # gauge | counter
    scale: float
    help: str


GPU_METRICS: tuple[GpuMetric, ...] = (
    GpuMetric("gpufleet_gpu_utilization_ratio", "DCGM_FI_DEV_GPU_UTIL", "gauge", 0.01,
              "Fraction of time one or more kernels ran on the GPU."),
    GpuMetric("gpufleet_gpu_memory_copy_utilization_ratio", "DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", 0.01,
              "Fraction of time device memory was read or written."),
    GpuMetric("gpufleet_gpu_encoder_utilization_ratio", "DCGM_FI_DEV_ENC_UTIL", "gauge", 0.01,
              "Encoder utilization."),
    GpuMetric("gpufleet_gpu_decoder_utilization_ratio", "DCGM_FI_DEV_DEC_UTIL", "gauge", 0.01,
              "Decoder utilization."),
    GpuMetric("gpufleet_gpu_sm_clock_hertz", "DCGM_FI_DEV_SM_CLOCK", "gauge", 1e6, "SM clock."),
    GpuMetric("gpufleet_gpu_memory_clock_hertz", "DCGM_FI_DEV_MEM_CLOCK", "gauge", 1e6, "Memory clock."),
    GpuMetric("gpufleet_gpu_temperature_celsius", "DCGM_FI_DEV_GPU_TEMP", "gauge", 1.0, "GPU temperature."),
    GpuMetric("gpufleet_gpu_memory_temperature_celsius", "DCGM_FI_DEV_MEMORY_TEMP", "gauge", 1.0,
              "HBM temperature."),
    GpuMetric("gpufleet_gpu_power_watts", "DCGM_FI_DEV_POWER_USAGE", "gauge", 1.0, "Power draw."),
    GpuMetric("gpufleet_gpu_energy_joules_total", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", 1e-3,
              "Energy consumed since the driver loaded."),
    GpuMetric("gpufleet_gpu_pcie_replays_total", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", 1.0,
              "PCIe replay events."),
    GpuMetric("gpufleet_gpu_memory_free_bytes", "DCGM_FI_DEV_FB_FREE", "gauge", MIB, "Free framebuffer memory."),
    GpuMetric("gpufleet_gpu_memory_used_bytes", "DCGM_FI_DEV_FB_USED", "gauge", MIB, "Used framebuffer memory."),
    GpuMetric("gpufleet_gpu_memory_reserved_bytes", "DCGM_FI_DEV_FB_RESERVED", "gauge", MIB,
              "Framebuffer memory reserved by the driver."),
    GpuMetric("gpufleet_gpu_last_xid", "DCGM_FI_DEV_XID_ERRORS", "gauge", 1.0,
              "Value of the last XID (compatibility; use gpufleet_gpu_xid_errors_total)."),
    GpuMetric("gpufleet_gpu_remapped_rows_uncorrectable_total", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
              "counter", 1.0, "Rows remapped for uncorrectable errors."),
    GpuMetric("gpufleet_gpu_remapped_rows_correctable_total", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
              "counter", 1.0, "Rows remapped for correctable errors."),
    GpuMetric("gpufleet_gpu_row_remap_failure", "DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", 1.0,
              "1 if a row remap failed."),
    GpuMetric("gpufleet_gpu_nvlink_bytes_total", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", 1.0,
              "NVLink bytes moved."),
    GpuMetric("gpufleet_gpu_graphics_engine_active_ratio", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", 1.0,
              "Fraction of time the graphics/compute engine was active."),
    GpuMetric("gpufleet_gpu_sm_active_ratio", "DCGM_FI_PROF_SM_ACTIVE", "gauge", 1.0,
              "Fraction of time at least one warp was resident on an SM, averaged over SMs."),
    GpuMetric("gpufleet_gpu_sm_occupancy_ratio", "DCGM_FI_PROF_SM_OCCUPANCY", "gauge", 1.0,
              "Resident warps over the maximum, averaged over SMs."),
    GpuMetric("gpufleet_gpu_tensor_active_ratio", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", 1.0,
              "Fraction of cycles the tensor pipes were active."),
    GpuMetric("gpufleet_gpu_dram_active_ratio", "DCGM_FI_PROF_DRAM_ACTIVE", "gauge", 1.0,
              "Fraction of cycles device memory was busy."),
    GpuMetric("gpufleet_gpu_fp64_active_ratio", "DCGM_FI_PROF_PIPE_FP64_ACTIVE", "gauge", 1.0, "FP64 pipe activity."),
    GpuMetric("gpufleet_gpu_fp32_active_ratio", "DCGM_FI_PROF_PIPE_FP32_ACTIVE", "gauge", 1.0, "FP32 pipe activity."),
    GpuMetric("gpufleet_gpu_fp16_active_ratio", "DCGM_FI_PROF_PIPE_FP16_ACTIVE", "gauge", 1.0, "FP16 pipe activity."),
    GpuMetric("gpufleet_gpu_pcie_transmit_bytes_per_second", "DCGM_FI_PROF_PCIE_TX_BYTES", "gauge", 1.0,
              "PCIe transmit rate."),
    GpuMetric("gpufleet_gpu_pcie_receive_bytes_per_second", "DCGM_FI_PROF_PCIE_RX_BYTES", "gauge", 1.0,
              "PCIe receive rate."),
    GpuMetric("gpufleet_gpu_xid_errors_total", "DCGM_EXP_XID_ERRORS_TOTAL", "counter", 1.0,
              "XID errors by code."),
    GpuMetric("gpufleet_gpu_clock_events_total", "DCGM_EXP_CLOCK_EVENTS_TOTAL", "counter", 1.0,
              "Clock-event (throttle) reasons seen, by reason."),
    GpuMetric("gpufleet_gpu_up", None, "gauge", 1.0,
              "1 if the GPU answers; 0 if it fell off the bus or is otherwise lost."),
)

BY_DCGM = {m.dcgm: m for m in GPU_METRICS if m.dcgm}
BY_NATIVE = {m.native: m for m in GPU_METRICS}

# dcgm-exporter label -> canonical label. Labels not listed pass through unchanged.
DCGM_LABELS = {
    "UUID": "gpu_uuid",
    "Hostname": "node",
    "hostname": "node",
    "modelName": "gpu_model",
    "GPU_I_PROFILE": "mig_profile",
    "GPU_I_ID": "mig_instance",
    "pci_bus_id": "pci_bus_id",
    "device": "device",
    "gpu": "gpu",
}


class XidInfo(NamedTuple):
    """What an XID means and whether it needs an operator."""

    meaning: str
    severity: str  # critical | warning | application
    failure_class: str  # gpu | hbm | sram | nvlink | host | software | application
    action: str


XID_CATALOGUE: dict[int, XidInfo] = {
    13: XidInfo("graphics engine exception", "application", "application", "restart the application"),
    31: XidInfo("GPU memory page fault", "application", "application", "restart the application"),
    43: XidInfo("GPU stopped processing (application)", "application", "application", "restart the application"),
    45: XidInfo("preemptive cleanup", "application", "application", "restart the application"),
    68: XidInfo("video processor exception", "application", "application", "restart the application"),
    109: XidInfo("context switch timeout", "application", "application", "restart the application"),
    46: XidInfo("GPU stopped processing", "critical", "gpu", "reset or reboot"),
    48: XidInfo("double-bit ECC error", "critical", "hbm", "reset the GPU; drain if 63/64 follow"),
    61: XidInfo("microcontroller breakpoint", "critical", "sram", "reset the GPU"),
    62: XidInfo("microcontroller halt", "critical", "sram", "reset the GPU"),
    63: XidInfo("row remap / page retirement event", "warning", "hbm", "reset when convenient"),
    64: XidInfo("row remap failure", "critical", "hbm", "reboot; repeat means RMA"),
    74: XidInfo("NVLink error", "critical", "nvlink", "reset; check the peer"),
    79: XidInfo("GPU fell off the bus", "critical", "gpu", "drain the node and power-cycle"),
    92: XidInfo("high single-bit ECC rate", "warning", "hbm", "watch"),
    94: XidInfo("contained ECC error", "warning", "hbm", "restart the application"),
    95: XidInfo("uncontained ECC error", "critical", "hbm", "reset the GPU"),
    119: XidInfo("GSP RPC timeout", "critical", "gpu", "reset; power-cycle if it persists"),
    120: XidInfo("GSP error", "critical", "gpu", "reset; power-cycle if it persists"),
}


def xid_info(xid: int) -> XidInfo:
    """Catalogue entry for an XID; unknown codes are warnings of class ``gpu``."""
    return XID_CATALOGUE.get(xid, XidInfo(f"XID {xid}", "warning", "gpu", "see NVIDIA's XID catalogue"))
