import polars as pl
import pytest

from gpufleet.analytics.cost.energy import energy_report
from gpufleet.analytics.cost.tokens import compute_times, cost_per_million, token_cost
from gpufleet.analytics.cost.whatif import break_even_utilization, compare_pricing, rightsize


def test_opencost_inference_example():
    # $3.20/h GPU over an hour that served 15M tokens: $0.213 per 1M tokens.
    assert round(cost_per_million(3.20, 15e6), 3) == 0.213


def test_input_output_split_by_prefill_and_decode_time_without_cached_tokens():
    tc = token_cost(10.0, prompt_tokens=6e6, cached_tokens=2e6, output_tokens=1e6, prefill_s=100, decode_s=300,
                    requests=1000, goodput_requests=800)
    assert tc.input_usd_per_1m == pytest.approx(2.5 / 4)  # 25% of $10 over 4M uncached prompt tokens
    assert tc.output_usd_per_1m == pytest.approx(7.5)
    assert tc.usd_per_1m == pytest.approx(2.0)
    assert tc.usd_per_request == pytest.approx(0.01)
    assert tc.usd_per_goodput_request == pytest.approx(0.0125)


def test_compute_times_take_the_engine_at_its_word():
    assert compute_times(prefill_s=100, decode_s=300, ttft_s=900, queue_s=700, e2e_s=2000) == (100, 300)


def test_compute_times_leave_the_queue_out_of_prefill_when_the_engine_does_not_split():
    # SGLang in overload: 10,000 s to first token of which 9,000 s queued, then 3,000 s of decode
    assert compute_times(prefill_s=0, decode_s=0, ttft_s=10_000, queue_s=9_000, e2e_s=13_000) == (1_000, 3_000)
    assert compute_times(prefill_s=0, decode_s=0, ttft_s=5, queue_s=0, e2e_s=4) == (5, 0)


def test_no_tokens_is_an_error():
    with pytest.raises(ValueError, match="tokens must be > 0"):
        cost_per_million(1.0, 0)


def test_reserved_break_even_and_spot():
    assert break_even_utilization(6.88, 6.88 * 0.43) == pytest.approx(0.43)
    s = {x.category: x for x in compare_pricing(500, 100, 8, 6.88, reserved_discount=0.57, spot_discount=0.45,
                                                spot_interruption_overhead=0.1)}
    assert s["on_demand"].cost_usd == pytest.approx(3440.0)
    assert s["reserved"].cost_usd == pytest.approx(800 * 6.88 * 0.43)
    assert "reserve" in s["reserved"].note  # 62% busy > 43% break-even
    assert s["spot"].cost_usd == pytest.approx(550 * 6.88 * 0.55)


def test_rightsize_by_probe_throughput():
    out = rightsize(100, "H100", {"H100": 900.0, "A100": 300.0, "L40S": 350.0},
                    {"H100": 6.88, "A100": 2.7, "L40S": 1.86})
    # Cheapest first: L40S needs 900/350 x the hours at $1.86; A100 needs 3x at $2.70.
    assert [s.category for s in out] == ["L40S", "H100", "A100"]
    assert out[0].cost_usd == pytest.approx(100 * 900 / 350 * 1.86)
    assert out[2].cost_usd == pytest.approx(300 * 2.7)
    with pytest.raises(ValueError, match="no probe throughput"):
        rightsize(1, "B200", {"H100": 1.0}, {})


def test_energy_cost_and_carbon():
    e = pl.DataFrame({"gpu_uuid": ["a", "a", "b"], "joules": [3.6e6, 3.6e6, 1.8e6]})
    r = energy_report(e, pue=1.2, usd_per_kwh=0.10, gco2_per_kwh=475)
    a = r.row(0, named=True)
    assert a["gpu_kwh"] == pytest.approx(2.0) and a["facility_kwh"] == pytest.approx(2.4)
    assert a["energy_usd"] == pytest.approx(0.24) and a["kg_co2e"] == pytest.approx(1.14)
