"""Datasheet table: lookups by NVML name, key and family; unknown models; PCIe link rates."""

import pytest

from gpufleet.probes.specs import (
    EXPECTED_EFFICIENCY,
    PEAKS,
    UnknownGpuModel,
    find_spec,
    pcie_link_bytes_per_second,
    resolve_spec,
)


@pytest.mark.parametrize(("name", "key", "bf16", "fp8", "hbm"), [
    ("NVIDIA H100 80GB HBM3", "H100-SXM", 989, 1979, 3.35),
    ("NVIDIA H100 PCIe", "H100-PCIe", 756, 1513, 2.0),
    ("NVIDIA H200", "H200", 989, 1979, 4.8),
    ("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB", 312, None, 2.04),
    ("NVIDIA A100-SXM4-40GB", "A100-SXM4-40GB", 312, None, 1.555),
    ("NVIDIA A100 80GB PCIe", "A100-PCIe-80GB", 312, None, 1.935),
    ("NVIDIA L40S", "L40S", 362, 733, 0.864),
    ("NVIDIA B200", "B200", 2250, 4500, 8.0),
    ("h100-pcie", "H100-PCIe", 756, 1513, 2.0),  # a spec key, any case
    ("H100", "H100-SXM", 989, 1979, 3.35),  # a family
])
def test_resolve_spec(name: str, key: str, bf16: float, fp8: float | None, hbm: float) -> None:
    spec = resolve_spec(name)
    assert spec.key == key
    assert spec.bf16_tflops == bf16
    assert spec.fp8_tflops == fp8
    assert spec.hbm_tbps == hbm


def test_peak_units() -> None:
    spec = resolve_spec("NVIDIA H100 80GB HBM3")
    assert spec.matmul_flops("bf16") == 989e12
    assert spec.matmul_flops("tf32") == 494.5e12
    assert spec.hbm_bytes_per_second == 3.35e12
    assert resolve_spec("A100").matmul_flops("fp8") is None
    assert spec.matmul_flops("int4") is None


def test_unknown_model_message_names_it_and_the_known_ones() -> None:
    assert find_spec("NVIDIA GeForce RTX 4090") is None
    with pytest.raises(UnknownGpuModel) as err:
        resolve_spec("NVIDIA GeForce RTX 4090")
    msg = str(err.value)
    assert "'NVIDIA GeForce RTX 4090' has no datasheet peaks" in msg
    assert "H100-SXM" in msg and "without % of peak" in msg


@pytest.mark.parametrize(("gen", "lanes", "gbps"), [(5, 16, 63.008), (4, 16, 31.504), (3, 16, 15.76), (5, 8, 31.504)])
def test_pcie_link_rate(gen: int, lanes: int, gbps: float) -> None:
    assert pcie_link_bytes_per_second(gen, lanes) / 1e9 == pytest.approx(gbps)


@pytest.mark.parametrize(("gen", "lanes", "message"), [(7, 16, "generation 7"), (5, 0, "lane count 0")])
def test_pcie_link_bad_input(gen: int, lanes: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pcie_link_bytes_per_second(gen, lanes)


def test_table_is_consistent() -> None:
    keys = [p.key for _, p in PEAKS]
    assert len(keys) == len(set(keys))
    for _, p in PEAKS:
        assert p.fp16_tflops == p.bf16_tflops and p.tf32_tflops == pytest.approx(p.bf16_tflops / 2, rel=0.02)
        assert p.fp8_tflops is None or p.fp8_tflops == pytest.approx(2 * p.bf16_tflops, rel=0.02)
    assert all(0.5 < v < 1.0 for v in EXPECTED_EFFICIENCY.values())
