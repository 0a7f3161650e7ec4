"""Verdicts: node peers, fleet baseline and datasheet; wrong results and NaN; shared GPUs; lost $/day."""

import math

import pytest

from gpufleet.probes.prices import price_lookup
from gpufleet.probes.results import GpuResult, Measurement
from gpufleet.probes.verdict import judge

BF16_PEAK = 989e12


def gpu(node: str, i: int, bf16: float, *, hbm: float = 3.0e12, correct: bool = True, error: str | None = None,
        others: list[int] | None = None, model: str = "NVIDIA H100 80GB HBM3") -> GpuResult:
    return GpuResult(f"GPU-{node}-{i}", node, model, i, "c1", "H100-SXM", others or [], 10.0, [
        Measurement("hbm_bandwidth", hbm, "bytes_per_second", {"kernel": "copy"}, 3.35e12),
        Measurement("matmul", bf16, "flops", {"dtype": "bf16"}, BF16_PEAK, correct=correct, error=error),
    ])


def node(name: str, *bf16: float) -> list[GpuResult]:
    return [gpu(name, i, v) for i, v in enumerate(bf16)]


def verdict_of(gpus: list[GpuResult], uuid: str, price: float | None = 6.88):
    return {v.gpu_uuid: v for v in judge(gpus, price_lookup(price))}[uuid]


# (case, bf16 TFLOP/s of node a's GPU 0, expected verdict, reason fragment, lost ratio)
CASES = [
    ("healthy", 790e12, "healthy", None, 0.0),
    ("within peer noise", 770e12, "healthy", None, 0.0),
    ("straggler 18% low", 0.82 * 790e12, "degraded", "matmul_bf16 18% below", 0.18),
    ("half speed", 0.45 * 790e12, "failed", "matmul_bf16 55% below", 1.0),
]


@pytest.mark.parametrize(("case", "bf16", "expected", "reason", "lost"), CASES, ids=[c[0] for c in CASES])
def test_peer_verdicts(case: str, bf16: float, expected: str, reason: str | None, lost: float) -> None:
    gpus = [gpu("a", 0, bf16), *node("a", 790e12, 792e12, 788e12, 791e12)[1:], *node("b", 789e12, 790e12, 791e12)]
    v = verdict_of(gpus, "GPU-a-0")
    assert v.verdict == expected, v.reasons
    assert v.lost_ratio == pytest.approx(lost, abs=0.005)
    if reason is None:
        assert v.reasons == []
        assert v.lost_usd_per_day == 0.0
    else:
        assert any(reason in r for r in v.reasons), v.reasons
        assert v.lost_usd_per_day == pytest.approx(lost * 6.88 * 24, abs=0.1)
    assert v.usd_per_gpu_hour == 6.88 and v.price_source == "flag"


def test_fleet_baseline_catches_a_whole_slow_node() -> None:
    # node s: all four GPUs 25% slow, so peers agree with each other; the model's fleet median does not
    gpus = [*node("s", *[0.75 * 790e12] * 4)] + [g for n in "abcd" for g in node(n, 790e12, 791e12, 789e12, 790e12)]
    v = verdict_of(gpus, "GPU-s-1")
    assert v.verdict == "degraded"
    assert any("below fleet" in r for r in v.reasons), v.reasons
    assert v.lost_ratio == pytest.approx(0.25, abs=0.01)


def test_datasheet_check_without_peers() -> None:
    # a lone GPU: no node peers or fleet group; 40% of peak is far under the expected 78%
    v = verdict_of([gpu("x", 0, 0.40 * BF16_PEAK)], "GPU-x-0")
    assert v.verdict == "degraded"
    assert any("datasheet" in r for r in v.reasons), v.reasons
    assert verdict_of([gpu("x", 0, 0.80 * BF16_PEAK)], "GPU-x-0").verdict == "healthy"


@pytest.mark.parametrize(("value", "correct", "error"), [
    (math.nan, True, None),  # NaN never passes
    (790e12, False, "relative error 3.1e-01 over tolerance 2e-02"),  # fast but wrong
    (math.nan, False, "RuntimeError: CUDA error: an illegal memory access"),
    (math.inf, True, None),
])
def test_broken_probe_fails_the_gpu(value: float, correct: bool, error: str | None) -> None:
    gpus = [gpu("a", 0, value, correct=correct, error=error), *node("a", 790e12, 791e12, 789e12)[1:]]
    v = verdict_of(gpus, "GPU-a-0")
    assert v.verdict == "failed"
    assert v.lost_ratio == 1.0
    assert v.lost_usd_per_day == pytest.approx(6.88 * 24)


def test_shared_gpu_is_degraded_never_failed_on_figures() -> None:
    gpus = [gpu("a", 0, 0.3 * 790e12, others=[4242]), *node("a", 790e12, 791e12, 789e12)[1:]]
    v = verdict_of(gpus, "GPU-a-0")
    assert v.verdict == "degraded"
    assert v.reasons[0].startswith("shared: 1 other compute process on the GPU during the probe (pids 4242)")


def test_price_sources() -> None:
    gpus = [gpu("a", 0, math.nan)]
    assert verdict_of(gpus, "GPU-a-0", price=None).price_source == "default"
    assert verdict_of(gpus, "GPU-a-0", price=None).usd_per_gpu_hour == 6.88
    stored = {v.gpu_uuid: v for v in judge(gpus, price_lookup(None, {"H100": 2.5}))}["GPU-a-0"]
    assert (stored.usd_per_gpu_hour, stored.price_source, stored.lost_usd_per_day) == (2.5, "store", 60.0)
    unknown = {v.gpu_uuid: v for v in judge([gpu("a", 0, math.nan, model="Mystery GPU")], price_lookup())}
    assert unknown["GPU-a-0"].lost_usd_per_day is None and unknown["GPU-a-0"].verdict == "failed"
    with pytest.raises(ValueError, match="must not be negative"):
        price_lookup(-1.0)
