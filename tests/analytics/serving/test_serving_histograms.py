"""Window increases with counter resets, bucket totals over replicas, Prometheus-style quantiles."""

from __future__ import annotations

import math

import polars as pl
import pytest

from gpufleet.analytics.serving import bucket_totals, histogram_quantile, window_increase

INF = math.inf


@pytest.mark.parametrize(("values", "increase"), [
    ([10, 15, 30], 20),             # plain growth: last - first
    ([10, 15, 3, 8], 5 + 3 + 5),    # a reset: the sample after the drop counts whole
    ([5, 0, 0, 4], 4),              # reset to zero, then growth
    ([7], 0),                       # one sample: a baseline only
    ([100, 50, 20, 30], 50 + 20 + 10),  # two resets in a row
])
def test_window_increase_handles_resets(values, increase):
    df = pl.DataFrame({"k": ["a"] * len(values), "ts": list(range(len(values))), "value": [float(v) for v in values]})
    out = window_increase(df, ["k"])
    assert out["increase"].to_list() == [pytest.approx(increase)]


def test_window_increase_groups_and_unsorted_input():
    df = pl.DataFrame({"k": ["a", "b", "a", "b", "a"], "ts": [2, 1, 1, 2, 3], "value": [5.0, 1.0, 2.0, 4.0, 1.0]})
    out = {r["k"]: r["increase"] for r in window_increase(df, ["k"]).iter_rows(named=True)}
    assert out == {"a": pytest.approx(3 + 1), "b": pytest.approx(3)}


def test_window_increase_names_missing_columns():
    with pytest.raises(ValueError, match="lack column"):
        window_increase(pl.DataFrame({"k": ["a"], "value": [1.0]}), ["k"])


def test_bucket_totals_sums_replicas_on_shared_bounds():
    df = pl.DataFrame({
        "model": ["m"] * 7,
        "series_id": [1, 1, 1, 2, 2, 2, 2],
        "le": [0.5, 1.0, INF, 0.5, 0.75, 1.0, INF],
        "count": [3.0, 5.0, 6.0, 1.0, 2.0, 4.0, 4.0],
    })
    assert bucket_totals(df, ["model"]) == {("m",): ([0.5, 1.0, INF], [4.0, 9.0, 10.0])}


@pytest.mark.parametrize(("q", "expected"), [
    (0.5, 0.5 + 0.5 * (50 - 40) / 40),   # rank 50 in (0.5, 1]: 40 -> 80
    (0.2, 0.5 * 20 / 40),                # first bucket starts at 0
    (0.8, 1.0),                          # rank on a bucket's cumulative count
    (0.95, 1.0),                         # rank in +Inf: the highest finite bound
])
def test_histogram_quantile(q, expected):
    assert histogram_quantile(q, [0.5, 1.0, INF], [40.0, 80.0, 100.0]) == pytest.approx(expected)


def test_histogram_quantile_no_data_and_bad_q():
    assert histogram_quantile(0.5, [1.0, INF], [0.0, 0.0]) is None
    with pytest.raises(ValueError, match="quantile"):
        histogram_quantile(1.5, [1.0, INF], [1.0, 1.0])
