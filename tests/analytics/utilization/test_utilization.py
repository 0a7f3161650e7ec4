import datetime as dt

import polars as pl
import pytest

from gpufleet.analytics.cost import report as rep
from gpufleet.analytics.cost.query import DuckDBSource
from gpufleet.analytics.utilization.efficiency import gpu_activity, utilization_by
from gpufleet.analytics.utilization.recommend import per_pod_gpu_use, recommend
from gpufleet.core.store.reader import open_readonly

T = dt.datetime(2026, 1, 1)


def util(rows):
    return pl.DataFrame(rows, schema=["ts", "metric", "gpu_uuid", "mig_instance", "sum", "count"], orient="row")


def test_sm_active_preferred_over_utilization():
    u = util([(T, "gpufleet_gpu_utilization_ratio", "G0", None, 9.0, 10),
              (T, "gpufleet_gpu_sm_active_ratio", "G0", None, 3.0, 10),
              (T, "gpufleet_gpu_utilization_ratio", "G1", None, 5.0, 10)])
    a = dict(gpu_activity(u).select("gpu_uuid", "activity").iter_rows())
    assert a == {"G0": pytest.approx(0.3), "G1": pytest.approx(0.5)}


def _alloc():
    return pl.DataFrame(
        [(T, "G0", "ns", "p8", 3600.0, 6.88), (T, "G1", "ns", "p8", 3600.0, 6.88), (T, "G2", "nb", "nb", 3600.0, 6.88),
         (T, "G3", "sv", "sv", 3600.0, 6.88), (T, "G4", None, None, 3600.0, 6.88)],
        schema=["ts", "gpu_uuid", "namespace", "pod", "gpu_seconds", "usd_per_gpu_hour"], orient="row")


def test_allocated_vs_used_and_recommendations():
    u = util([(T, "gpufleet_gpu_utilization_ratio", g, None, v, 10)
              for g, v in (("G0", 9.0), ("G1", 0.1), ("G2", 0.0), ("G3", 2.0), ("G4", 0.0))])
    by = {r["namespace"]: r for r in utilization_by(_alloc(), u).iter_rows(named=True)}
    assert by["ns"]["allocated_gpu_hours"] == 2.0 and by["ns"]["used_gpu_hours"] == pytest.approx(0.91)
    assert by["(unallocated)"]["allocated_gpu_hours"] == 1.0
    recs = {r.pod: r for r in recommend(per_pod_gpu_use(_alloc(), gpu_activity(u)))}
    assert recs["nb"].action == "Remove" and recs["nb"].monthly_savings_usd == pytest.approx(6.88 * 730)
    assert recs["p8"].action == "Optimize" and recs["p8"].keep_gpus == 1
    assert recs["sv"].action == "Share" and recs["sv"].monthly_savings_usd == pytest.approx(6.88 * 365)


def test_store_utilization(cost_store):
    con = open_readonly(cost_store)
    df = rep.utilization_report(DuckDBSource(con), dt.timedelta(days=30))
    con.close()
    by = {r["namespace"]: r for r in df.iter_rows(named=True)}
    assert by["research-train"]["efficiency"] > 0.5  # training runs hot
    assert by["notebooks"]["efficiency"] < 0.2  # a mostly idle notebook
    assert all(0 <= e <= 1 for e in df["efficiency"])
