"""Runner logic that needs no GPU: busy-GPU refusal and the suites' sizes."""

import pytest

from gpufleet.probes.runner import SUITES, GpuBusy, check_busy
from gpufleet.probes.stats import stream_bytes


def test_busy_gpu_is_refused_naming_gpu_and_pids() -> None:
    with pytest.raises(GpuBusy) as err:
        check_busy({0: [], 1: [311, 4242]}, {0: "GPU-a", 1: "GPU-b"}, force=False)
    msg = str(err.value)
    assert msg.startswith("GPU 1 (GPU-b) runs pids 311, 4242")
    assert "--force" in msg and "GPU 0" not in msg


@pytest.mark.parametrize(("busy", "force"), [({0: [], 1: []}, False), ({0: [99]}, True), ({}, False)])
def test_free_or_forced_gpus_pass(busy: dict[int, list[int]], force: bool) -> None:
    check_busy(busy, {0: "GPU-a", 1: "GPU-b"}, force=force)


@pytest.mark.parametrize("name", ["quick", "full"])
def test_hbm_arrays_are_well_past_l2(name: str) -> None:
    s = SUITES[name]
    # each float32 array at least 10x the 50 MB L2 of an H100 (B200: 126 MB)
    assert s.hbm_elements * 4 >= 500e6
    assert stream_bytes("copy", s.hbm_elements, 4) == 2 * s.hbm_elements * 4
    assert s.warmup >= 1 and s.hbm_repeats >= 20 and s.matmul_repeats >= 20


def test_full_suite_covers_every_dtype_and_a_sweep() -> None:
    assert SUITES["full"].matmul_dtypes == ("bf16", "fp16", "tf32", "fp8")
    assert len(SUITES["full"].matmul_sizes) >= 3 and len(SUITES["full"].nccl_sizes) >= 5
