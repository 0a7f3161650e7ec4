"""Erlang B/C against closed forms, SLO sizing, pooled vs split plans."""

import math

import pytest

from gpufleet.analytics.capacity.erlang import erlang_b, erlang_c, mean_wait, servers_for_slo, wait_quantile
from gpufleet.analytics.capacity.plan import plan_pool, pooled_vs_split
from gpufleet.analytics.capacity.specs import HOURS_PER_MONTH


def closed_form_c(c: int, a: float) -> float:
    top = a ** c / math.factorial(c) * c / (c - a)
    return top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(("c", "a", "expected"), [
    (1, 0.5, 0.5),          # M/M/1: P(wait) = rho
    (2, 1.0, 1 / 3),
    (3, 2.0, 4 / 9),
    (10, 8.0, None),        # compared with the factorial closed form
    (50, 45.0, None),
])
def test_erlang_c_closed_form(c: int, a: float, expected: float | None) -> None:
    want = closed_form_c(c, a) if expected is None else expected
    assert erlang_c(c, a) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize(("c", "a", "expected"), [(1, 1.0, 0.5), (2, 1.0, 0.2), (3, 2.0, 4 / 19)])
def test_erlang_b_closed_form(c: int, a: float, expected: float) -> None:
    assert erlang_b(c, a) == pytest.approx(expected, rel=1e-12)


def test_mm1_mean_wait_and_quantile() -> None:
    # M/M/1, lambda 0.5, mu 1: Wq = rho / (mu - lambda) = 1 s; P(W > t) = rho e^{-(mu-lambda) t}
    assert mean_wait(1, 0.5, 1.0) == pytest.approx(1.0)
    assert wait_quantile(1, 0.5, 1.0, 0.99) == pytest.approx(math.log(0.5 / 0.01) / 0.5)
    assert erlang_c(2, 3.0) == 1.0 and mean_wait(2, 3.0, 1.0) == math.inf


def test_servers_for_slo_is_smallest_meeting_target() -> None:
    s = servers_for_slo(arrival_rate=8.0, service_rate=1.0, wait_slo_s=0.1, quantile=0.99)
    assert s.wait_quantile_s <= 0.1
    assert wait_quantile(s.servers - 1, 8.0, 1.0, 0.99) > 0.1
    assert s.binding == "latency"
    capped = servers_for_slo(8.0, 1.0, 100.0, max_utilization=0.5)
    assert capped.servers == 16 and capped.binding == "utilization"


def test_plan_pool_gpus_and_money() -> None:
    p = plan_pool("svc", 8.0, 1.0, 100.0, headroom=0.5, gpus_per_replica=2, usd_per_gpu_hour=6.88)
    assert (p.replicas, p.gpus) == (16, 32)
    assert p.usd_per_month == pytest.approx(32 * 6.88 * HOURS_PER_MONTH)


def test_pooled_never_needs_more_than_split() -> None:
    r = pooled_vs_split({"a": 3.0, "b": 3.0, "c": 3.0}, service_rate=1.0, wait_slo_s=0.2, usd_per_gpu_hour=2.0)
    assert r.pooled.arrival_rate == pytest.approx(9.0)
    assert r.saved_gpus > 0
    assert r.saved_usd_per_month == pytest.approx(r.saved_gpus * 2.0 * HOURS_PER_MONTH)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"gpus_per_replica": 0}, "GPUs per replica"),
    ({"usd_per_gpu_hour": -1.0}, "price"),
    ({"headroom": 0.0}, "max utilization"),
])
def test_plan_pool_bad_input_names_it(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        plan_pool("svc", 1.0, 1.0, 1.0, **kwargs)
