"""Goodput and efficiency from a real store, landed through the real parser, adapters and writer.

One vLLM target is scraped four times, a minute apart; its process restarts before the third scrape,
so every counter and bucket drops. The writer's reset rule makes the window's counts hand-computable.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gpufleet.analytics.cost.pricing import load_catalog
from gpufleet.analytics.serving import ServingSource, serving_report
from gpufleet.collectors.ingest import Scrape, ingest
from gpufleet.collectors.target import Target
from gpufleet.core.store import Retention, StoreWriter, maintain, open_readonly
from gpufleet.main import main

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
LAB = 'model_name="m",engine="0"'


def _hist(name: str, bounds: list[str], cum: list[float]) -> str:
    lines = [f"# TYPE {name} histogram"]
    lines += [f'{name}_bucket{{{LAB},le="{b}"}} {c}' for b, c in zip(bounds, cum, strict=True)]
    lines += [f"{name}_sum{{{LAB}}} {cum[-1] * 0.5}", f"{name}_count{{{LAB}}} {cum[-1]}"]
    return "\n".join(lines)


def _scrape(ttft: list[float], tpot: list[float], prompt: float, kv: float) -> str:
    n = ttft[-1]
    parts = [
        _hist("vllm:time_to_first_token_seconds", ["1.0", "2.5", "+Inf"], ttft),
        _hist("vllm:request_time_per_output_token_seconds", ["0.05", "0.1", "+Inf"], tpot),
        _hist("vllm:e2e_request_latency_seconds", ["10.0", "+Inf"], [n, n]),
        "# TYPE vllm:prompt_tokens_total counter", f"vllm:prompt_tokens_total{{{LAB}}} {prompt}",
        "# TYPE vllm:kv_cache_usage_perc gauge", f"vllm:kv_cache_usage_perc{{{LAB}}} {kv}",
    ]
    return "\n".join(parts) + "\n"


# Cumulative values per scrape; the engine restarts between the 2nd and 3rd.
SCRAPES = [
    ([10, 18, 20], [12, 16, 20], 1000, 0.50),
    ([40, 55, 60], [30, 50, 60], 4000, 0.95),
    ([5, 8, 10], [6, 9, 10], 500, 0.92),       # reset: every value dropped
    ([35, 45, 50], [30, 40, 50], 2500, 0.60),
]
# Window deltas: scrape 1 opens the series (0); then (scrape 2 - scrape 1); then scrape 3 whole; then 4 - 3.
TTFT_LE1 = 30 + 5 + 30          # 65
TTFT_ALL = 40 + 10 + 40         # 90
TPOT_LE01 = 34 + 9 + 31         # 74
PROMPT = 3000 + 500 + 2000      # 5500
SECONDS = 180.0


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("serving-reset") / "reset.duckdb"
    target = Target("vllm-0:8000", {"namespace": "chat", "pod": "vllm-0"})
    with StoreWriter(path) as writer:
        for i, (ttft, tpot, prompt, kv) in enumerate(SCRAPES):
            report = ingest(writer, [Scrape(target, T0 + 60 * i, _scrape(ttft, tpot, prompt, kv), 60.0)])
            assert report.rejected == []
    return path


@pytest.mark.parametrize(("slos", "estimate", "fraction"), [
    ({"ttft": 1.0}, "lower", TTFT_LE1 / TTFT_ALL),                                   # one SLO: exact
    ({"ttft": 1.0, "tpot": 0.1}, "lower", (TTFT_LE1 + TPOT_LE01 - TTFT_ALL) / TTFT_ALL),
    ({"ttft": 1.0, "tpot": 0.1}, "independent", TTFT_LE1 * TPOT_LE01 / TTFT_ALL ** 2),
    ({"ttft": 1.0, "tpot": 0.1}, "upper", min(TTFT_LE1, TPOT_LE01) / TTFT_ALL),
    ({"ttft": 2.5, "tpot": 0.05}, "lower", (82 + 48 - 90) / 90),
])
def test_goodput_across_a_counter_reset(store, slos, estimate, fraction):
    with open_readonly(store) as con:
        rep = serving_report(ServingSource(con), dt.timedelta(hours=1), slos, load_catalog(), estimate=estimate)
    assert rep.window.seconds == SECONDS
    [g] = rep.goodput
    assert (g.model, g.engine) == ("m", "vllm")
    assert g.result is not None
    assert g.result.requests == TTFT_ALL
    assert g.result.goodput_rps == pytest.approx(TTFT_ALL * fraction / SECONDS)
    assert g.result.exact is (len(slos) == 1)
    assert g.result.gpus is None  # no GPU exporter scraped: no GPU time, so no per-GPU figure
    assert g.result.goodput_rps_per_gpu is None


def test_efficiency_across_a_counter_reset(store):
    with open_readonly(store) as con:
        rep = serving_report(ServingSource(con), dt.timedelta(hours=1), {"ttft": 1.0}, load_catalog())
    [row] = rep.efficiency.to_dicts()
    assert row["prompt_tokens_per_s"] == pytest.approx(PROMPT / SECONDS)
    # The first scrape (0.50) opens the window; the other three describe the 180 s after it.
    assert row["kv_cache_usage_mean"] == pytest.approx((0.95 + 0.92 + 0.6) / 3)
    assert row["kv_cache_above_s"] == pytest.approx(120.0)  # 0.95 and 0.92 held for 60 s each
    assert row["kv_cache_above_ratio"] == pytest.approx(120 / 180)
    assert row["generation_tokens_per_s"] is None
    assert row["prefix_cache_hit_rate"] is None


def test_window_shorter_than_the_data(store):
    """A 2-minute window holds the last two intervals: the reset scrape (whole) and the last delta."""
    with open_readonly(store) as con:
        rep = serving_report(ServingSource(con), dt.timedelta(minutes=2), {"ttft": 1.0}, load_catalog())
    [g] = rep.goodput
    assert rep.window.seconds == 120
    assert g.result is not None and g.result.requests == 10 + 40
    assert g.result.goodput_rps == pytest.approx((5 + 30) / 120)


def test_cli_json(store, capsys):
    code = main(["report", "serving", "--db", str(store), "--window", "1h", "--slo", "ttft=1", "--slo", "tpot=0.1",
                 "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["slos"] == {"ttft": 1.0, "tpot": 0.1}
    assert data["window"]["seconds"] == SECONDS
    [g] = data["goodput"]
    assert g["reported"] == "lower" and g["exact"] is False
    assert g["goodput_rps"] == pytest.approx((TTFT_LE1 + TPOT_LE01 - TTFT_ALL) / SECONDS)
    assert g["goodput_rps_upper"] == pytest.approx(TTFT_LE1 / SECONDS)
    assert g["slo_fractions"] == {"ttft": pytest.approx(TTFT_LE1 / 90), "tpot": pytest.approx(TPOT_LE01 / 90)}
    [e] = data["efficiency"]
    assert e["prompt_tokens_per_s"] == pytest.approx(PROMPT / SECONDS)


def test_cli_table(store, capsys):
    assert main(["report", "serving", "--db", str(store), "--slo", "ttft=1"]) == 0
    out = capsys.readouterr().out
    assert "Serving throughput" in out and "KV cache and queueing" in out and "Goodput" in out
    assert "exact" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--slo", "ttft=5000"], "beyond the highest finite bucket"),   # per model, the report still prints
])
def test_cli_per_model_error_does_not_stop_the_report(store, capsys, args, message):
    assert main(["report", "serving", "--db", str(store), *args]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert message in out and "Serving throughput" in out


def test_cli_by_namespace_and_match(store, capsys):
    assert main(["report", "serving", "--db", str(store), "--by", "namespace", "--match", "model=m",
                 "--slo", "ttft=1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["by"] == ["namespace"]
    [g] = data["goodput"]
    assert g["namespace"] == "chat" and "model" not in g
    assert g["goodput_rps"] == pytest.approx(TTFT_LE1 / SECONDS)
    assert main(["report", "serving", "--db", str(store), "--match", "model=other", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["goodput"] == [] and data["efficiency"] == []


@pytest.mark.parametrize(("args", "message"), [
    (["--by", "gpu"], "--by 'gpu'"),
    (["--kv-threshold", "90"], "--kv-threshold 90"),
    (["--match", "colour=red"], "--match 'colour=red'"),
    (["--slo", "itl=0.1"], "token gaps"),
    (["--slo", "ttft"], "KEY=SECONDS"),
    (["--window", "3x"], "window '3x'"),
    (["--estimate", "median"], "--estimate 'median'"),
])
def test_cli_bad_input(store, capsys, args, message):
    assert main(["report", "serving", "--db", str(store), *args]) == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_cli_missing_store(tmp_path, capsys):
    assert main(["report", "serving", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "no such store file" in capsys.readouterr().err


def test_store_without_serving_data(tmp_path, capsys):
    path = tmp_path / "empty.duckdb"
    with StoreWriter(path):
        pass
    assert main(["report", "serving", "--db", str(path)]) == 2
    assert "no serving metrics" in " ".join(capsys.readouterr().err.split())


def _sglang(finished: float, aborted: float, prompt: float, cached: float, ttft: list[float]) -> str:
    lab = 'model_name="q",engine_type="unified",tp_rank="0"'
    lines = []
    for name, v in (("sglang:num_requests_total", finished), ("sglang:num_aborted_requests_total", aborted),
                    ("sglang:prompt_tokens_total", prompt), ("sglang:cached_tokens_total", cached)):
        lines += [f"# TYPE {name} counter", f"{name}{{{lab}}} {v}"]
    lines.append("# TYPE sglang:time_to_first_token_seconds histogram")
    lines += [f'sglang:time_to_first_token_seconds_bucket{{{lab},le="{b}"}} {c}'
              for b, c in zip(["1.0", "+Inf"], ttft, strict=True)]
    lines += [f"sglang:time_to_first_token_seconds_sum{{{lab}}} 1", f"sglang:time_to_first_token_seconds_count{{{lab}}} "
              f"{ttft[-1]}"]
    return "\n".join(lines) + "\n"


def test_sglang_counts_finished_once_and_has_no_tpot(tmp_path):
    path = tmp_path / "sglang.duckdb"
    target = Target("sglang-0:30000", {"namespace": "code", "pod": "sglang-0"})
    with StoreWriter(path) as writer:
        ingest(writer, [Scrape(target, T0, _sglang(100, 5, 1000, 100, [50, 100]), 60.0),
                        Scrape(target, T0 + 60, _sglang(220, 11, 4000, 700, [140, 220]), 60.0)])
    with open_readonly(path) as con:
        rep = serving_report(ServingSource(con), dt.timedelta(hours=1), {"ttft": 1.0, "tpot": 0.1}, load_catalog())
        only_ttft = serving_report(ServingSource(con), dt.timedelta(hours=1), {"ttft": 1.0}, load_catalog())
    [row] = rep.efficiency.to_dicts()
    assert row["engine"] == "sglang"
    assert row["requests_per_s"] == pytest.approx(120 / 60)  # finished already includes the 6 aborted
    assert row["prefix_cache_hit_rate"] == pytest.approx(600 / 3000)
    assert row["prefix_cache_basis"] == "prompt_tokens"
    [g] = rep.goodput
    assert g.result is None and g.error is not None and "sglang has no time per output token" in g.error
    [g1] = only_ttft.goodput
    assert g1.result is not None and g1.result.goodput_rps == pytest.approx(90 / 60)


@pytest.fixture(scope="module")
def trimmed_store(tmp_path_factory):
    """Four hours scraped every 10 min (+10 requests, 6 under 1 s, each time); raw kept from 02:00 only."""
    path = tmp_path_factory.mktemp("serving-rollup") / "trimmed.duckdb"
    target = Target("vllm-0:8000", {"namespace": "chat", "pod": "vllm-0"})
    with StoreWriter(path) as writer:
        for k in range(25):
            text = _scrape([6.0 * k, 8.0 * k, 10.0 * k], [10.0 * k] * 3, 100.0 * k, 0.5)
            ingest(writer, [Scrape(target, T0 + 600 * k, text, 600.0)])
        maintain(writer.con, Retention(raw_days=1.5 / 24))
    return path


@pytest.mark.parametrize(("length", "seconds", "requests"), [
    (dt.timedelta(days=1), 4 * 3600, 240),   # hours 00-02 from rollups, 02:00-04:00 raw
    (dt.timedelta(hours=3), 3 * 3600, 190),  # hour 01 from rollups (6 scrapes), then raw
    (dt.timedelta(hours=1), 3600, 60),       # raw only
])
def test_long_window_reads_hourly_rollups_past_raw_retention(trimmed_store, length, seconds, requests):
    with open_readonly(trimmed_store) as con:
        first_raw = con.execute("SELECT min(ts) FROM counters").fetchone()[0]
        assert first_raw == dt.datetime(2026, 1, 1, 2)  # retention dropped the first two hours
        rep = serving_report(ServingSource(con), length, {"ttft": 1.0}, load_catalog())
    assert rep.window.seconds == seconds
    [g] = rep.goodput
    assert g.result is not None and g.result.requests == requests
    assert g.result.goodput_rps == pytest.approx(0.6 * requests / seconds)
    [row] = rep.efficiency.to_dicts()
    assert row["prompt_tokens_per_s"] == pytest.approx(10 * requests / seconds)
    assert any("hourly rollups" in n for n in rep.notes) is (seconds > 2 * 3600)


def test_group_mixing_engines_refuses_an_slo_one_engine_lacks(tmp_path):
    path = tmp_path / "mixed.duckdb"
    sg = Target("sglang-0:30000", {"namespace": "shared", "pod": "sglang-0"})
    vl = Target("vllm-0:8000", {"namespace": "shared", "pod": "vllm-0"})
    with StoreWriter(path) as writer:
        for i, (ttft, tpot, prompt, kv) in enumerate(SCRAPES[:2]):
            ingest(writer, [Scrape(vl, T0 + 60 * i, _scrape(ttft, tpot, prompt, kv), 60.0),
                            Scrape(sg, T0 + 60 * i, _sglang(100 + 60 * i, 0, 1000, 100, [50 + 30 * i, 100 + 60 * i]),
                                   60.0)])
    with open_readonly(path) as con:
        both = serving_report(ServingSource(con), dt.timedelta(hours=1), {"ttft": 1.0, "tpot": 0.1}, load_catalog(),
                              by=["namespace"])
        ttft = serving_report(ServingSource(con), dt.timedelta(hours=1), {"ttft": 1.0}, load_catalog(),
                              by=["namespace"])
    [g] = both.goodput
    assert g.result is None and g.error is not None and "group by model or --match engine" in g.error
    [t] = ttft.goodput  # both engines observe TTFT: one histogram over the bucket bounds they share (1.0, +Inf)
    assert t.result is not None and t.result.requests == 40 + 60
    assert t.result.goodput_rps == pytest.approx((30 + 30) / 60)


@pytest.mark.parametrize(("length", "seconds", "requests"), [
    (dt.timedelta(minutes=5), 600, 10),     # shorter than the 10-min scrape interval: one whole interval
    (dt.timedelta(minutes=25), 1800, 30),   # starts between scrapes: back to the scrape before
])
def test_window_starting_between_scrapes(trimmed_store, length, seconds, requests):
    with open_readonly(trimmed_store) as con:
        rep = serving_report(ServingSource(con), length, {"ttft": 1.0}, load_catalog())
    assert rep.window.seconds == seconds
    [g] = rep.goodput
    assert g.result is not None and g.result.requests == requests
    assert g.result.request_rps == pytest.approx(requests / seconds)
