"""Goodput from marginal histograms: Fréchet bounds, single-SLO exactness, per GPU and per dollar."""

from __future__ import annotations

import math

import polars as pl
import pytest

from gpufleet.analytics.serving import (
    GoodputError,
    bucket_totals,
    goodput,
    joint_fraction,
    parse_slos,
    window_increase,
)

INF = math.inf
# 100 requests. TTFT: 60 <= 0.5 s, 90 <= 1 s, 100 <= 2 s. TPOT: 70 <= 0.05 s, 80 <= 0.1 s, all <= 0.2 s.
TTFT = ([0.5, 1.0, 2.0, INF], [60.0, 90.0, 100.0, 100.0])
TPOT = ([0.05, 0.1, 0.2, INF], [70.0, 80.0, 100.0, 100.0])
E2E = ([5.0, 10.0, INF], [50.0, 95.0, 100.0])


@pytest.mark.parametrize(("marginals", "lower", "independent", "upper"), [
    ([0.9, 0.8], 0.7, 0.72, 0.8),            # max(0, .9 + .8 - 1), .9 * .8, min
    ([0.6, 0.3], 0.0, 0.18, 0.3),            # lower bound clipped at 0
    ([1.0, 0.75], 0.75, 0.75, 0.75),         # a certain SLO makes the joint exact
    ([0.9, 0.9, 0.9], 0.7, 0.729, 0.9),      # k SLOs: sum - (k - 1)
    ([0.42], 0.42, 0.42, 0.42),              # one SLO: exact
    ([0.0, 1.0], 0.0, 0.0, 0.0),
])
def test_joint_fraction_frechet_bounds(marginals, lower, independent, upper):
    j = joint_fraction(marginals)
    assert j.lower == pytest.approx(lower)
    assert j.independent == pytest.approx(independent)
    assert j.upper == pytest.approx(upper)
    assert j.exact == math.isclose(lower, upper)


@pytest.mark.parametrize("bad", [[], [1.2], [-0.1, 0.5], [math.nan]])
def test_joint_fraction_rejects_bad_marginals(bad):
    with pytest.raises(GoodputError):
        joint_fraction(bad)


@pytest.mark.parametrize(("slos", "estimate", "rps", "lo", "hi", "exact"), [
    # Thresholds on bucket bounds: pA = 0.9, pB = 0.8 exactly; 100 requests over 50 s = 2 req/s.
    ({"ttft": 1.0, "tpot": 0.1}, "lower", 2 * 0.7, 2 * 0.7, 2 * 0.8, False),
    ({"ttft": 1.0, "tpot": 0.1}, "independent", 2 * 0.72, 2 * 0.7, 2 * 0.8, False),
    ({"ttft": 1.0, "tpot": 0.1}, "upper", 2 * 0.8, 2 * 0.7, 2 * 0.8, False),
    # One SLO: the marginal is the joint, every estimate agrees.
    ({"ttft": 1.0}, "lower", 2 * 0.9, 2 * 0.9, 2 * 0.9, True),
    ({"tpot": 0.05}, "independent", 2 * 0.7, 2 * 0.7, 2 * 0.7, True),
    # Three SLOs: 0.9 + 0.8 + 0.95 - 2 = 0.65; min 0.8.
    ({"ttft": 1.0, "tpot": 0.1, "e2e": 10.0}, "lower", 2 * 0.65, 2 * 0.65, 2 * 0.8, False),
])
def test_goodput_hand_computed(slos, estimate, rps, lo, hi, exact):
    g = goodput({"ttft": TTFT, "tpot": TPOT, "e2e": E2E}, slos, window_s=50.0, estimate=estimate)
    assert g.requests == 100
    assert g.request_rps == pytest.approx(2.0)
    assert g.goodput_rps == pytest.approx(rps)
    assert g.rps("lower") == pytest.approx(lo)
    assert g.rps("upper") == pytest.approx(hi)
    assert g.exact is exact
    assert all(m.sli.error_bound == 0 for m in g.marginals)  # thresholds on bucket bounds


def test_single_slo_exact_even_with_many_histograms_present():
    g = goodput({"ttft": TTFT, "tpot": TPOT}, {"ttft": 2.0}, window_s=100.0)
    assert g.exact and g.fraction is not None
    assert g.fraction.lower == g.fraction.upper == 1.0
    assert g.goodput_rps == pytest.approx(1.0)


def test_interpolated_threshold_widens_outer_bounds():
    # TTFT <= 0.75 s: interpolated 60 + 30 * 0.5 = 75 of 100 (true value between 60 and 90).
    g = goodput({"ttft": TTFT, "tpot": TPOT}, {"ttft": 0.75, "tpot": 0.1}, window_s=100.0)
    assert g.marginals[0].sli.good == pytest.approx(0.75)
    assert g.fraction is not None and g.outer is not None
    assert g.fraction.lower == pytest.approx(0.75 + 0.8 - 1)
    assert g.outer.lower == pytest.approx(0.60 + 0.8 - 1)   # bucket floors
    assert g.outer.upper == pytest.approx(min(0.90, 0.8))   # bucket ceilings


def test_per_gpu_and_per_dollar():
    # 2 req/s, joint lower 0.7 -> 1.4 good req/s on 4 GPUs; 70 good requests for $3.50.
    g = goodput({"ttft": TTFT, "tpot": TPOT}, {"ttft": 1.0, "tpot": 0.1}, window_s=50.0, gpus=4.0, cost_usd=3.5)
    assert g.goodput_rps_per_gpu == pytest.approx(1.4 / 4)
    assert g.good_requests_per_usd == pytest.approx(70 / 3.5)


def test_requests_from_another_count():
    """The completed-request count may come from elsewhere (the e2e histogram); fractions still apply."""
    g = goodput({"ttft": TTFT}, {"ttft": 1.0}, window_s=10.0, requests=200.0)
    assert g.goodput_rps == pytest.approx(200 * 0.9 / 10)


def test_no_requests_is_no_data_for_fractions_and_zero_goodput():
    """Nothing completed: the share meeting the SLO is unknown (no data), the rate of good requests is 0."""
    empty = ([0.5, 1.0, INF], [0.0, 0.0, 0.0])
    g = goodput({"ttft": empty}, {"ttft": 1.0}, window_s=60.0, gpus=2.0, cost_usd=1.0)
    assert g.fraction is None and g.outer is None and not g.exact
    assert g.marginals[0].sli.good is None
    assert g.goodput_rps == 0.0 and g.rps("upper") == 0.0
    assert g.goodput_rps_per_gpu == 0.0 and g.good_requests_per_usd == 0.0


def test_requests_counted_but_an_slo_histogram_saw_none():
    empty = ([0.5, 1.0, INF], [0.0, 0.0, 0.0])
    g = goodput({"ttft": empty}, {"ttft": 1.0}, window_s=60.0, requests=10.0)
    assert g.fraction is None and g.goodput_rps is None


@pytest.mark.parametrize(("hists", "slos", "message"), [
    ({"ttft": TTFT}, {"ttft": 5.0}, "beyond the highest finite bucket le=2"),
    ({"ttft": TTFT}, {"tpot": 0.1}, "no gpufleet_serving_request_time_per_output_token_seconds histogram"),
    ({"ttft": TTFT}, {"itl": 0.1}, "counts token gaps, not requests"),
    ({"ttft": TTFT}, {"latency": 0.1}, "unknown latency"),
    ({"ttft": TTFT}, {"ttft": -1.0}, "positive number of seconds"),
    ({"ttft": TTFT}, {}, "at least one latency SLO"),
])
def test_bad_input_names_the_slo(hists, slos, message):
    with pytest.raises(GoodputError, match=message):
        goodput(hists, slos, window_s=60.0)


def test_counts_from_a_reset_corrected_sum_match_direct_counts():
    """Bucket counts summed from per-interval deltas across a counter reset give the same goodput.

    Interval 1: 40 requests (TTFT 30 <= 1 s). The engine restarts; interval 2 counts from zero:
    60 requests (TTFT 60 <= 1 s). Deltas with the reset rule: 40 + 60 = 100 requests, 90 good.
    """
    rows = []
    for ts, (le1, inf) in enumerate([(0.0, 0.0), (30.0, 40.0), (0.0, 0.0), (60.0, 60.0)]):
        rows += [{"series_id": 1, "le": 1.0, "ts": ts, "value": le1}, {"series_id": 1, "le": INF, "ts": ts, "value": inf}]
    samples = pl.DataFrame(rows)
    inc = window_increase(samples, ["series_id", "le"]).rename({"increase": "count"})
    hist = bucket_totals(inc.with_columns(model=pl.lit("m")), ["model"])[("m",)]
    assert hist == ([1.0, INF], [90.0, 100.0])
    g = goodput({"ttft": hist}, {"ttft": 1.0}, window_s=100.0)
    assert g.goodput_rps == pytest.approx(0.9)


@pytest.mark.parametrize(("texts", "expected"), [
    (["ttft=2", "tpot=0.2"], {"ttft": 2.0, "tpot": 0.2}),
    (["TTFT = 0.5s"], {"ttft": 0.5}),
])
def test_parse_slos(texts, expected):
    assert parse_slos(texts) == expected


@pytest.mark.parametrize(("texts", "message"), [
    (["ttft"], "write KEY=SECONDS"),
    (["ttft=fast"], "write KEY=SECONDS"),
    (["itl=0.1"], "token gaps"),
    (["ttft=0"], "positive"),
])
def test_parse_slos_errors(texts, message):
    with pytest.raises(GoodputError, match=message):
        parse_slos(texts)
