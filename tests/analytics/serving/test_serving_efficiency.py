"""Serving efficiency: pure functions on hand-made frames, and a simulated store checked against its raw rows."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import numpy as np
import polars as pl
import pytest

from gpufleet.analytics.cost.pricing import load_catalog
from gpufleet.analytics.cost.report import price_map
from gpufleet.analytics.serving import ServingSource, efficiency, kv_pressure, serving_report, token_rates
from gpufleet.core.store import open_readonly

S = "gpufleet_serving_"
T0 = dt.datetime(2026, 1, 1)


def _counters(rows: list[tuple[str, str, str, str | None, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"model": pl.String, "engine": pl.String, "metric": pl.String,
                                      "outcome": pl.String, "value": pl.Float64}, orient="row")


@pytest.mark.parametrize(("rows", "column", "expected"), [
    ([("m", "vllm", S + "prompt_tokens_total", None, 6000.0)], "prompt_tokens_per_s", 100.0),
    ([("m", "vllm", S + "generation_tokens_total", None, 1200.0)], "generation_tokens_per_s", 20.0),
    ([("m", "vllm", S + "preemptions_total", None, 3.0)], "preemptions_per_s", 0.05),
    # vLLM: outcomes add up.
    ([("m", "vllm", S + "requests_total", "stop", 50.0), ("m", "vllm", S + "requests_total", "length", 10.0)],
     "requests_per_s", 1.0),
    # SGLang: "finished" already counts aborted requests, so "abort" is not added again.
    ([("m", "sglang", S + "requests_total", "finished", 120.0), ("m", "sglang", S + "requests_total", "abort", 6.0)],
     "requests_per_s", 2.0),
    # Hit rate over queried tokens (vLLM) ...
    ([("m", "vllm", S + "prefix_cache_hit_tokens_total", None, 300.0),
      ("m", "vllm", S + "prefix_cache_query_tokens_total", None, 1200.0),
      ("m", "vllm", S + "prompt_tokens_total", None, 1500.0)], "prefix_cache_hit_rate", 0.25),
    # ... or over prompt tokens where no query counter exists (SGLang).
    ([("m", "sglang", S + "prefix_cache_hit_tokens_total", None, 300.0),
      ("m", "sglang", S + "prompt_tokens_total", None, 1500.0)], "prefix_cache_hit_rate", 0.2),
])
def test_token_rates(rows, column, expected):
    out = token_rates(_counters(rows), window_s=60.0)
    assert out[column].to_list() == [pytest.approx(expected)]


def test_prefix_cache_basis_is_named():
    out = token_rates(_counters([
        ("a", "vllm", S + "prefix_cache_hit_tokens_total", None, 1.0),
        ("a", "vllm", S + "prefix_cache_query_tokens_total", None, 2.0),
        ("b", "sglang", S + "prefix_cache_hit_tokens_total", None, 1.0),
        ("b", "sglang", S + "prompt_tokens_total", None, 4.0)]), 1.0).sort("model")
    assert out["prefix_cache_basis"].to_list() == ["queries", "prompt_tokens"]


def test_mixed_engines_in_one_group():
    """Grouped by cluster, vLLM and SGLang replicas each use their own hit-rate denominator and outcomes."""
    rows = [("a", "vllm", S + "prefix_cache_hit_tokens_total", None, 300.0),
            ("a", "vllm", S + "prefix_cache_query_tokens_total", None, 1200.0),
            ("a", "vllm", S + "prompt_tokens_total", None, 1500.0),
            ("a", "vllm", S + "requests_total", "stop", 40.0),
            ("a", "vllm", S + "requests_total", "abort", 2.0),
            ("b", "sglang", S + "prefix_cache_hit_tokens_total", None, 300.0),
            ("b", "sglang", S + "prompt_tokens_total", None, 1500.0),
            ("b", "sglang", S + "requests_total", "finished", 60.0),
            ("b", "sglang", S + "requests_total", "abort", 5.0)]
    frame = _counters(rows).with_columns(cluster=pl.lit("east"))
    [out] = token_rates(frame, 2.0, by=["cluster"]).to_dicts()
    assert out["prefix_cache_hit_rate"] == pytest.approx(600 / (1200 + 1500))
    assert out["prefix_cache_basis"] == "mixed"
    assert out["requests_per_s"] == pytest.approx((40 + 2 + 60) / 2)  # SGLang's abort is inside finished
    assert out["prompt_tokens_per_s"] == pytest.approx(1500.0)
    assert out["preemptions_per_s"] is None


def _gauges(series: dict[int, list[float]], metric: str = S + "kv_cache_usage_ratio", step_s: int = 60,
            model: str = "m") -> pl.DataFrame:
    rows = [(model, "vllm", sid, metric, T0 + dt.timedelta(seconds=i * step_s), v)
            for sid, values in series.items() for i, v in enumerate(values)]
    return pl.DataFrame(rows, schema={"model": pl.String, "engine": pl.String, "series_id": pl.Int64,
                                      "metric": pl.String, "ts": pl.Datetime("us"), "value": pl.Float64}, orient="row")


@pytest.mark.parametrize(("series", "mean", "above_s", "above_ratio"), [
    # One replica, 60 s apart: the first sample opens the series; 0.95 and 0.97 each hold 60 s.
    ({1: [0.5, 0.95, 0.6, 0.97]}, (0.5 + 0.95 + 0.6 + 0.97) / 4, 120.0, 120 / 180),
    # Two replicas: replica-seconds add up.
    ({1: [0.2, 0.92, 0.93], 2: [0.95, 0.5, 0.99]}, (0.2 + 0.92 + 0.93 + 0.95 + 0.5 + 0.99) / 6, 180.0, 180 / 240),
    # Exactly at the threshold is not above it.
    ({1: [0.9, 0.9, 0.9]}, 0.9, 0.0, 0.0),
])
def test_kv_pressure(series, mean, above_s, above_ratio):
    out = kv_pressure(_gauges(series))
    values = [v for vs in series.values() for v in vs]
    assert out["kv_cache_usage_mean"].to_list() == [pytest.approx(mean)]
    assert out["kv_cache_usage_p95"].to_list() == [pytest.approx(float(np.percentile(values, 95)))]
    assert out["kv_cache_above_s"].to_list() == [pytest.approx(above_s)]
    assert out["kv_cache_above_ratio"].to_list() == [pytest.approx(above_ratio)]


def test_kv_pressure_caps_gaps():
    g = _gauges({1: [0.95, 0.95, 0.95]}, step_s=600)
    assert kv_pressure(g, max_interval_s=300)["kv_cache_above_s"].to_list() == [pytest.approx(600.0)]


def test_efficiency_joins_all_parts_and_fills_missing():
    counters = _counters([("m", "vllm", S + "prompt_tokens_total", None, 600.0),
                          ("m", "vllm", S + "request_queue_time_seconds_sum", None, 30.0),
                          ("m", "vllm", S + "request_queue_time_seconds_count", None, 60.0)])
    gauges = pl.concat([_gauges({1: [0.5, 0.7]}), _gauges({2: [2.0, 4.0]}, S + "requests_running"),
                        _gauges({3: [1.0, 5.0]}, S + "requests_waiting")])
    queue = {("m", "vllm"): ([0.1, 1.0, math.inf], [30.0, 60.0, 60.0])}
    out = efficiency(counters, gauges, queue, 60.0).filter(pl.col("model") == "m").to_dicts()[0]
    assert out["prompt_tokens_per_s"] == pytest.approx(10.0)
    assert out["queue_time_mean_s"] == pytest.approx(0.5)
    assert out["queue_time_p95_s"] == pytest.approx(0.1 + 0.9 * (57 - 30) / 30)
    assert out["requests_running_mean"] == pytest.approx(3.0)
    assert out["requests_waiting_mean"] == pytest.approx(3.0)
    assert out["requests_waiting_max"] == pytest.approx(5.0)
    assert out["generation_tokens_per_s"] is None  # not exposed: no value, not zero


# -- against the raw rows of a simulated store -------------------------------------------------------------


def _raw(con: duckdb.DuckDBPyConnection, table: str, metric: str, model: str) -> list[tuple]:
    cols = "g.series_id, g.ts, g.value" + (", g.le" if table == "histogram_buckets" else "")
    return con.execute(f"SELECT {cols} FROM {table} g JOIN series s USING (series_id) "
                       "WHERE s.metric = ? AND s.labels->>'model' = ? ORDER BY g.series_id, g.ts",
                       [metric, model]).fetchall()


def _increase(rows: list[tuple]) -> float:
    """Sum over series of last - first cumulative value (the simulated engines never restart)."""
    by: dict[object, list[float]] = {}
    for r in rows:
        by.setdefault(r[0] if len(r) == 3 else (r[0], r[3]), []).append(r[2])
    return sum(v[-1] - v[0] for v in by.values())


@pytest.fixture(scope="module")
def report(serving_store):
    with open_readonly(serving_store) as con:
        rep = serving_report(ServingSource(con), dt.timedelta(days=1), {"ttft": 2.0, "tpot": 0.05}, load_catalog(),
                             kv_threshold=0.7)
    return rep


def test_store_window_covers_the_history(report):
    # 0.25 day every 300 s: 72 scrapes, the first one opens the series -> 71 intervals.
    assert report.window.seconds == pytest.approx(71 * 300)


def test_store_efficiency_matches_raw_rows(serving_store, report):
    con = duckdb.connect(str(serving_store), read_only=True)
    rows = {r["model"]: r for r in report.efficiency.to_dicts()}
    assert set(rows) == {"meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"}
    secs = report.window.seconds
    for model, r in rows.items():
        assert r["engine"] == "vllm"

        def inc(metric: str, model: str = model) -> float:
            return _increase(_raw(con, "counters", S + metric, model))

        assert r["prompt_tokens_per_s"] == pytest.approx(inc("prompt_tokens_total") / secs)
        assert r["generation_tokens_per_s"] == pytest.approx(inc("generation_tokens_total") / secs)
        assert r["requests_per_s"] == pytest.approx(inc("requests_total") / secs)
        assert r["preemptions_per_s"] == pytest.approx(inc("preemptions_total") / secs)
        assert r["prefix_cache_hit_rate"] == pytest.approx(
            inc("prefix_cache_hit_tokens_total") / inc("prefix_cache_query_tokens_total"))
        assert r["queue_time_mean_s"] == pytest.approx(
            inc("request_queue_time_seconds_sum") / inc("request_queue_time_seconds_count"))
        assert 0.2 < r["prefix_cache_hit_rate"] < 0.5  # the simulator caches 30-45 % of prompt tokens

        # The first scrape opens the window: its gauge samples describe the time before it.
        kv = _raw(con, "gauges", S + "kv_cache_usage_ratio", model)
        assert kv[0][1] == report.window.covered_from
        values = np.array([v for _, _, v in kv[1:]])
        assert r["kv_cache_usage_mean"] == pytest.approx(values.mean())
        assert r["kv_cache_usage_p95"] == pytest.approx(np.percentile(values, 95))
        above = 300.0 * int((values > 0.7).sum())
        assert r["kv_cache_above_s"] == pytest.approx(above)
        assert r["kv_cache_above_ratio"] == pytest.approx(above / (300.0 * len(values)))
        for metric, col in (("requests_running", "requests_running_mean"), ("requests_waiting",
                                                                           "requests_waiting_mean")):
            samples = _raw(con, "gauges", S + metric, model)[1:]
            assert r[col] == pytest.approx(np.mean([v for _, _, v in samples]))

        # p95 of queue time: interpolate the window's bucket increases by hand.
        buckets = _raw(con, "histogram_buckets", S + "request_queue_time_seconds", model)
        per_le: dict[float, list[float]] = {}
        for _, _, v, le in buckets:
            per_le.setdefault(le, []).append(v)
        les = sorted(per_le)
        cum = [per_le[le][-1] - per_le[le][0] for le in les]
        rank = 0.95 * cum[-1]
        i = next(i for i, c in enumerate(cum) if c >= rank)
        lo_b, lo_c = (les[i - 1], cum[i - 1]) if i else (0.0, 0.0)
        assert r["queue_time_p95_s"] == pytest.approx(lo_b + (les[i] - lo_b) * (rank - lo_c) / (cum[i] - lo_c))
    # The 70B model (4 GPUs per replica) is busier per request: more concurrent requests per replica.
    assert rows["meta-llama/Llama-3.1-70B-Instruct"]["requests_running_mean"] > 10


def test_store_goodput_gpus_and_cost(serving_store, report):
    con = duckdb.connect(str(serving_store), read_only=True)
    by = {g.model: g for g in report.goodput}
    prices = price_map(load_catalog())
    for model, gpus in (("meta-llama/Llama-3.1-70B-Instruct", 4.0), ("meta-llama/Llama-3.1-8B-Instruct", 1.0)):
        g = by[model].result
        assert g is not None and g.fraction is not None
        assert g.gpus == pytest.approx(gpus)
        node = con.execute(
            "SELECT n.provider, n.region, n.gpu_model, n.pricing_category FROM series s "
            "JOIN nodes n ON n.node = s.labels->>'node' WHERE s.labels->>'model' = ? LIMIT 1", [model]).fetchone()
        assert g.cost_usd == pytest.approx(gpus * report.window.seconds / 3600 * prices[node])
        # Requests: the e2e histogram's count; fractions from the TTFT and TPOT buckets.
        e2e = _raw(con, "histogram_buckets", S + "e2e_request_latency_seconds", model)
        inf = [v for _, _, v, le in e2e if le == math.inf]
        assert g.requests == pytest.approx(inf[-1] - inf[0])
        tpot = _raw(con, "histogram_buckets", S + "request_time_per_output_token_seconds", model)
        at = [v for _, _, v, le in tpot if le == 0.05]
        tot = [v for _, _, v, le in tpot if le == math.inf]
        p_tpot = (at[-1] - at[0]) / (tot[-1] - tot[0])
        assert g.marginals[1].sli.good == pytest.approx(p_tpot)  # 0.05 is a bucket bound: exact
        p_ttft = g.marginals[0].sli.good
        assert g.fraction.lower == pytest.approx(max(0.0, p_ttft + p_tpot - 1))
        assert g.fraction.upper == pytest.approx(min(p_ttft, p_tpot))
        assert g.goodput_rps == pytest.approx(g.requests * g.fraction.lower / report.window.seconds)
        assert g.goodput_rps_per_gpu == pytest.approx(g.goodput_rps / gpus)
        assert g.good_requests_per_usd == pytest.approx(g.goodput_rps * report.window.seconds / g.cost_usd)


def test_group_by_service_and_select(serving_store, report):
    """One model per service in the simulated fleet: grouping by service gives the same goodput and rates."""
    with open_readonly(serving_store) as con:
        by_service = serving_report(ServingSource(con), dt.timedelta(days=1), {"ttft": 2.0, "tpot": 0.05},
                                    load_catalog(), kv_threshold=0.7, by=["service"])
        one = serving_report(ServingSource(con), dt.timedelta(days=1), {"ttft": 2.0, "tpot": 0.05}, load_catalog(),
                             kv_threshold=0.7, selector={"service": "search-llama-3.1-8b-instruct"})
        with pytest.raises(ValueError, match="label 'gpu'"):
            serving_report(ServingSource(con), dt.timedelta(days=1), {"ttft": 2.0}, load_catalog(), by=["gpu"])
    model_of = {"chat-llama-3.1-70b-instruct": "meta-llama/Llama-3.1-70B-Instruct",
                "search-llama-3.1-8b-instruct": "meta-llama/Llama-3.1-8B-Instruct"}
    by_model = {g.model: g.result for g in report.goodput}
    assert {g.group["service"] for g in by_service.goodput} == set(model_of)
    for g in by_service.goodput:
        ref = by_model[model_of[g.group["service"] or ""]]
        assert g.result is not None and ref is not None
        assert g.result.goodput_rps == pytest.approx(ref.goodput_rps)
        assert g.result.gpus == pytest.approx(ref.gpus)
        assert g.result.cost_usd == pytest.approx(ref.cost_usd)
    eff_model = {r["model"]: r for r in report.efficiency.to_dicts()}
    for r in by_service.efficiency.to_dicts():
        ref = eff_model[model_of[r["service"]]]
        for col in ("prompt_tokens_per_s", "kv_cache_usage_p95", "kv_cache_above_s", "queue_time_p95_s"):
            assert r[col] == pytest.approx(ref[col])
    assert [g.model for g in one.goodput] == ["meta-llama/Llama-3.1-8B-Instruct"]
    assert one.efficiency.height == 1
