"""Property: for any per-request latencies, the true joint fraction lies inside the reported bounds.

Requests are drawn with arbitrary dependence between TTFT and TPOT, bucketed the way an engine would,
and the joint fraction computed from the requests themselves is compared with what the histograms allow.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufleet.analytics.serving import goodput

TTFT_BOUNDS = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, math.inf]
TPOT_BOUNDS = [0.01, 0.025, 0.05, 0.1, 0.2, math.inf]


def _histogram(values: np.ndarray, bounds: list[float]) -> tuple[list[float], list[float]]:
    counts = [0.0] * len(bounds)
    for v in values:
        counts[bisect.bisect_left(bounds, v)] += 1  # le semantics: v <= bound
    cumulative = list(np.cumsum(counts))
    return bounds, [float(c) for c in cumulative]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400), rho=st.floats(-1.0, 1.0),
       ttft_t=st.floats(0.05, 4.0), tpot_t=st.floats(0.005, 0.15), on_bound=st.booleans())
def test_true_joint_fraction_is_inside_the_bounds(seed, n, rho, ttft_t, tpot_t, on_bound):
    rng = np.random.default_rng(seed)
    z1 = rng.standard_normal(n)
    z2 = rho * z1 + math.sqrt(max(0.0, 1 - rho * rho)) * rng.standard_normal(n)
    ttft = np.exp(math.log(0.6) + 0.9 * z1)
    tpot = np.exp(math.log(0.04) + 0.7 * z2)
    if on_bound:  # thresholds on bucket bounds: the marginals are exact, so the Fréchet range itself holds
        ttft_t = TTFT_BOUNDS[bisect.bisect_left(TTFT_BOUNDS, ttft_t)]
        tpot_t = TPOT_BOUNDS[bisect.bisect_left(TPOT_BOUNDS, tpot_t)]
    truth = float(np.mean((ttft <= ttft_t) & (tpot <= tpot_t)))
    g = goodput({"ttft": _histogram(ttft, TTFT_BOUNDS), "tpot": _histogram(tpot, TPOT_BOUNDS)},
                {"ttft": ttft_t, "tpot": tpot_t}, window_s=1.0)
    assert g.fraction is not None and g.outer is not None
    eps = 1e-9
    assert g.outer.lower - eps <= truth <= g.outer.upper + eps
    if on_bound:
        assert g.fraction.lower - eps <= truth <= g.fraction.upper + eps
        assert g.outer.lower == g.fraction.lower and g.outer.upper == g.fraction.upper
