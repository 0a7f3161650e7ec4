import datetime as dt
import random

import polars as pl
import pytest

from gpufleet.analytics.cost.allocation import billable_gpus, chargeback, price_allocations
from gpufleet.analytics.cost.money import split_cents, to_cents

T = dt.datetime(2026, 1, 1)
H100 = ("aws", "us-east-1", "NVIDIA H100 80GB HBM3", "on_demand")
PRICES = {H100: 6.88}


def alloc(rows):
    return pl.DataFrame(
        [(T, g, "aws", "us-east-1", "NVIDIA H100 80GB HBM3", "on_demand", ns, team, pod, s) for g, ns, team, pod, s
         in rows],
        schema=["ts", "gpu_uuid", "provider", "region", "gpu_model", "pricing_category", "namespace", "team", "pod",
                "gpu_seconds"], orient="row")


@pytest.mark.parametrize(("req", "used", "whole", "want"), [
    (1, 0.2, True, 1.0), (0.5, 0.2, True, 1.0), (0.5, 0.2, False, 0.5), (2, 3.0, True, 3.0), (0, 0.0, True, 0.0)])
def test_billable_is_max_of_request_and_usage(req, used, whole, want):
    assert billable_gpus(req, used, whole=whole) == want


def test_split_cents_sums_exactly():
    assert split_cents(100, [1, 1, 1]) == [34, 33, 33]
    assert sum(split_cents(12345, [0.1, 0.7, 0.2, 1e-9])) == 12345
    assert split_cents(10, [0, 0]) == [5, 5]
    assert to_cents(0.125) == 12 and to_cents(0.135) == 14


def test_mig_slices_pay_their_share_of_the_gpu():
    # One H100 split into a 3g.40gb (3/7) and two 2g.20gb (2/7): each pays its share of $6.88 for the hour.
    df = price_allocations(alloc([("G0", "a", "ta", "p1", 3600 * 3 / 7), ("G0", "b", "tb", "p2", 3600 * 2 / 7),
                                  ("G0", "b", "tb", "p3", 3600 * 2 / 7)]), PRICES)
    cost = dict(df.group_by("namespace").agg(pl.col("cost_usd").sum()).iter_rows())
    assert cost["a"] == pytest.approx(6.88 * 3 / 7)
    assert cost["b"] == pytest.approx(6.88 * 4 / 7)
    cb = chargeback(df, "namespace")
    assert dict(zip(cb["namespace"], cb["total_cents"], strict=True)) == {"a": 295, "b": 393}


def test_idle_and_shared_split_modes_reconcile_to_the_cent():
    rows = [("G0", "a", "ta", "p1", 3600.0), ("G1", "b", "tb", "p2", 1200.0), ("G1", None, None, None, 2400.0),
            ("G2", "kube-system", None, "dp", 3600.0), ("G3", "a", "ta", "p4", 1000.0), ("G3", None, None, None, 2600)]
    df = price_allocations(alloc(rows), PRICES)
    asset = to_cents(4 * 6.88)
    for mode in ("even", "weight", "none"):
        cb = chargeback(df, "namespace", idle=mode, shared=mode)
        assert int(cb["total_cents"].sum()) == asset == 2752
    even = chargeback(df, "namespace", idle="even", shared="even")
    got = dict(zip(even["namespace"], even["total_cents"], strict=True))
    # a: 4600 s, b: 1200 s of $6.88/h; idle 5000 s and shared 3600 s split in halves.
    assert got["a"] + got["b"] == 2752
    assert abs(got["a"] - round(6.88 * (4600 + 2500 + 1800) / 36)) <= 1
    by_metric = chargeback(df, "namespace", idle="metric", shared="metric", metric={"a": 0, "b": 1})
    got = dict(zip(by_metric["namespace"], by_metric["total_cents"], strict=True))
    assert got["a"] == round(6.88 * 4600 / 36)
    kept = chargeback(df, "namespace", idle="none", shared="none")
    assert set(kept["namespace"]) == {"a", "b", "__idle__", "__shared__"}
    assert dict(zip(kept["namespace"], kept["total_cents"], strict=True))["__shared__"] == 688


def test_missing_price_names_the_key():
    df = alloc([("G0", "a", "ta", "p1", 3600.0)]).with_columns(region=pl.lit("mars-1"))
    with pytest.raises(ValueError, match="region=mars-1"):
        price_allocations(df, PRICES)


def test_cents_per_group_do_not_depend_on_the_order_of_the_rows():
    # Many small float costs per group: their sums differ in the last bits from one row order to another,
    # as they do between the store, Parquet and Prometheus sources.
    rng = random.Random(7)
    rows = [(f"G{i % 50}", ns, ns, f"p{i}", rng.uniform(1, 3600)) for i in range(3000)
            for ns in [("a", "b", "c", None, "kube-system")[i % 5]]]
    priced = price_allocations(alloc(rows), PRICES)
    want = chargeback(priced, "namespace").sort("namespace")
    for seed in range(20):
        shuffled = priced.sample(fraction=1.0, shuffle=True, seed=seed)
        assert chargeback(shuffled, "namespace").sort("namespace").equals(want)
