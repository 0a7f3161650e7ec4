"""Probe math: STREAM bytes, matmul FLOPs, nccl-tests bus-bandwidth factors, robust statistics."""

import math

import pytest

from gpufleet.probes.stats import busbw_factor, mad, matmul_flop, median, robust_z, spread_ratio, stream_bytes


@pytest.mark.parametrize(("kernel", "elements", "itemsize", "expected"), [
    ("copy", 1 << 27, 4, 2 * (1 << 27) * 4),  # read a + write b: 1 GiB for two 512 MiB arrays
    ("scale", 1000, 4, 8000),
    ("add", 1000, 4, 12000),
    ("triad", 1 << 28, 4, 3 * (1 << 28) * 4),  # read b and c, write a
    ("triad", 10, 2, 60),
])
def test_stream_bytes_count_reads_and_writes(kernel: str, elements: int, itemsize: int, expected: int) -> None:
    assert stream_bytes(kernel, elements, itemsize) == expected


def test_stream_bytes_unknown_kernel_named() -> None:
    with pytest.raises(ValueError, match="unknown STREAM kernel 'dot'"):
        stream_bytes("dot", 1, 4)


@pytest.mark.parametrize(("m", "n", "k", "flop"), [
    (8192, 8192, 8192, 2 * 8192**3),  # 1.0995e12
    (1, 1, 1, 2),
    (4096, 2048, 1024, 2 * 4096 * 2048 * 1024),
])
def test_matmul_flop_is_2mnk(m: int, n: int, k: int, flop: float) -> None:
    assert matmul_flop(m, n, k) == flop


def test_matmul_rate_of_8192_cube_in_1_39_ms_is_791_tflops() -> None:
    assert matmul_flop(8192, 8192, 8192) / 1.39e-3 / 1e12 == pytest.approx(791.0, rel=1e-3)


@pytest.mark.parametrize(("collective", "ranks", "factor"), [
    ("all_reduce", 1, 0.0),
    ("all_reduce", 2, 1.0),
    ("all_reduce", 4, 1.5),
    ("all_reduce", 8, 1.75),
    ("all_gather", 2, 0.5),
    ("all_gather", 8, 0.875),
    ("reduce_scatter", 4, 0.75),
    ("alltoall", 8, 0.875),
    ("broadcast", 8, 1.0),
    ("reduce", 4, 1.0),
])
def test_busbw_factors_match_nccl_tests(collective: str, ranks: int, factor: float) -> None:
    assert busbw_factor(collective, ranks) == pytest.approx(factor)


@pytest.mark.parametrize(("collective", "ranks", "message"), [
    ("all_reduce", 0, "rank count 0"),
    ("sendrecv", 2, "unknown collective 'sendrecv'"),
])
def test_busbw_factor_bad_input(collective: str, ranks: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        busbw_factor(collective, ranks)


@pytest.mark.parametrize(("values", "med", "mad_value"), [
    ([1.0], 1.0, 0.0),
    ([3.0, 1.0, 2.0], 2.0, 1.0),
    ([1.0, 2.0, 3.0, 4.0], 2.5, 1.0),
    ([10.0, 10.0, 10.0, 10.0, 100.0], 10.0, 0.0),  # one outlier moves neither
])
def test_median_and_mad(values: list[float], med: float, mad_value: float) -> None:
    assert median(values) == med
    assert mad(values) == mad_value


def test_median_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        median([])


def test_robust_z_uses_scaled_mad() -> None:
    values = [100.0, 101.0, 99.0, 100.0, 102.0, 98.0]
    # median 100, MAD 1 -> sigma 1.4826
    assert robust_z(97.0, values) == pytest.approx(-3 / 1.4826)


def test_robust_z_floors_the_mad_for_identical_peers() -> None:
    # eight identical GPUs: MAD 0, floored at 1% of the median, so 1% low is z = -1, not -inf
    assert robust_z(99.0, [100.0] * 8) == pytest.approx(-1.0)


@pytest.mark.parametrize(("values", "spread"), [
    ([100.0, 101.0, 99.0], 0.02),
    ([5.0, 5.0], 0.0),
    ([0.0, 0.0, 1.0], math.inf),
])
def test_spread_ratio(values: list[float], spread: float) -> None:
    assert spread_ratio(values) == pytest.approx(spread)
