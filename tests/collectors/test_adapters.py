"""Golden tests: real captures of each engine land in the normalised serving schema, values checked by hand."""

import math
import re

import pytest

from gpufleet.collectors.adapters.engines import FAMILIES, LABELS
from gpufleet.collectors.exposition import parse
from gpufleet.collectors.ingest import Scrape, ingest
from gpufleet.collectors.normalize import normalize
from gpufleet.collectors.target import Target
from gpufleet.core.store import StoreWriter

S = "gpufleet_serving_"


def batch_of(fixtures, name):
    result = parse((fixtures / name).read_text())
    assert result.errors == []
    return normalize(result, Target(name), 100.0)


def values(batch, metric, **labels):
    """Values of every sample of ``metric`` whose labels include ``labels``."""
    out = []
    for sid, _, v in batch.gauges + batch.counters:
        s = batch.series[sid]
        if s.metric == metric and all(s.labels.get(k) == v2 for k, v2 in labels.items()):
            out.append(v)
    return out


def buckets(batch, metric):
    return [(le, v) for sid, _, le, v in batch.buckets if batch.series[sid].metric == metric]


# (fixture, canonical metric, label filter, expected values) -- each figure read off the capture by hand.
GOLDEN = [
    ("vllm-0.4.3.prom", S + "prompt_tokens_total", {"model": "facebook/opt-125m"}, [5.0]),
    ("vllm-0.4.3.prom", S + "generation_tokens_total", {}, [7.0]),
    ("vllm-0.4.3.prom", S + "requests_total", {"outcome": "length"}, [1.0]),
    ("vllm-0.4.3.prom", S + "kv_cache_usage_ratio", {"engine": "vllm"}, [0.0]),  # V0 gpu_cache_usage_perc
    ("vllm-0.4.3.prom", S + "inter_token_latency_seconds_count", {}, [6.0]),  # V0 time_per_output_token: 7 tokens, 6 gaps
    ("sglang-0.5.10.prom", S + "prompt_tokens_total", {"model": "facebook/opt-125m", "tp_rank": "0"}, [5.0]),
    ("sglang-0.5.10.prom", S + "generation_tokens_total", {}, [32.0]),
    ("sglang-0.5.10.prom", S + "prefix_cache_hit_tokens_total", {}, [1.0]),
    ("sglang-0.5.10.prom", S + "kv_cache_usage_ratio", {}, [0.25]),
    ("sglang-0.5.10.prom", S + "requests_total", {"outcome": "finished"}, [1.0]),
    ("sglang-0.5.10.prom", S + "inter_token_latency_seconds_count", {}, [31.0]),  # counts tokens: 32 generated, 31 gaps
    ("tgi-2.x-datadog.prom", S + "requests_total", {"outcome": "success"}, [109.0]),
    ("tgi-2.x-datadog.prom", S + "requests_total", {"outcome": "error", "error_kind": "validation"}, [2.0]),
    ("tgi-2.x-datadog.prom", S + "requests_waiting", {"engine": "tgi"}, [0.0]),
    ("triton-2.x-datadog.prom", S + "requests_total", {"model": "densenet_onnx", "outcome": "success"}, [3.0]),
    ("triton-2.x-datadog.prom", S + "e2e_request_latency_seconds_sum", {"model": "densenet_onnx"}, [1.327965]),
    ("triton-2.x-datadog.prom", S + "request_queue_time_seconds_sum", {"model": "densenet_onnx"}, [0.000145]),
    ("triton-trtllm-backend-23.11.prom", S + "requests_waiting", {"model": "tensorrt_llm"}, [1.0]),
    ("triton-trtllm-backend-23.11.prom", S + "requests_running", {}, [0.0]),
    ("triton-trtllm-backend-23.11.prom", S + "kv_cache_usage_ratio", {"engine": "trtllm"}, [0.4875]),
    ("triton-trtllm-backend-23.11.prom", S + "kv_cache_max_blocks", {}, [6239.0]),
    ("trtllm-serve-1.1.0rc5.prom", S + "requests_total", {"outcome": "stop", "model": "Qwen/Qwen3-0.6B"}, [150.0]),
    ("trtllm-serve-1.1.0rc5.prom", S + "time_to_first_token_seconds_sum", {}, [8.75]),
    ("trtllm-serve-1.1.0rc5.prom", S + "request_time_per_output_token_seconds_count", {}, [150.0]),
    ("llamacpp-b10380.prom", S + "prompt_tokens_total", {"engine": "llamacpp"}, [25.0]),
    ("llamacpp-b10380.prom", S + "generation_tokens_total", {}, [200.0]),
    ("llamacpp-b10380.prom", S + "decode_busy_seconds_total", {}, [39.8]),
    ("llamacpp-b10380.prom", S + "requests_running", {}, [0.0]),
]


@pytest.mark.parametrize(("fixture", "metric", "labels", "expected"), GOLDEN)
def test_engine_capture_maps_to_serving_schema(fixtures, fixture, metric, labels, expected):
    got = values(batch_of(fixtures, fixture), metric, **labels)
    assert got == pytest.approx(expected)


def test_source_metric_records_the_exposed_name(fixtures):
    b = batch_of(fixtures, "vllm-0.4.3.prom")
    itl = next(s for s in b.series.values() if s.metric == S + "inter_token_latency_seconds")
    assert itl.source_metric == "vllm:time_per_output_token_seconds"
    assert itl.kind == "histogram"
    raw = [s for s in b.series.values() if s.metric == "vllm:avg_generation_throughput_toks_per_s"]
    assert len(raw) == 1 and raw[0].source_metric == raw[0].metric  # unmapped families land raw


def test_vllm_ttft_buckets_read_off_the_capture(fixtures):
    # one request with TTFT 0.313 s: every bucket below 0.5 holds 0, 0.5 and above hold 1
    ttft = dict(buckets(batch_of(fixtures, "vllm-0.4.3.prom"), S + "time_to_first_token_seconds"))
    assert ttft[0.25] == 0.0 and ttft[0.5] == 1.0 and ttft[math.inf] == 1.0
    assert sorted(ttft) == [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                            10.0, math.inf]


def test_tgi_has_no_ttft_and_its_latency_histograms_stay_raw(fixtures):
    b = batch_of(fixtures, "tgi-2.x-datadog.prom")
    assert not [s for s in b.series.values() if "time_to_first_token" in s.metric]
    inference = dict(buckets(b, "tgi_request_inference_duration"))
    assert inference[1.683411219602823] == 83.0 and inference[math.inf] == 109.0


def test_triton_microsecond_counter_gives_mean_latency_in_seconds(fixtures):
    b = batch_of(fixtures, "triton-2.x-datadog.prom")
    total = values(b, S + "e2e_request_latency_seconds_sum", model="densenet_onnx")[0]
    ok = values(b, S + "requests_total", model="densenet_onnx", outcome="success")[0]
    assert total / ok == pytest.approx(0.442655)  # 1327965 us over 3 requests


def test_trtllm_serve_histograms_without_inf_bucket_are_rejected_by_name(fixtures):
    b = batch_of(fixtures, "trtllm-serve-1.1.0rc5.prom")
    assert any(r.startswith("trtllm_time_to_first_token_seconds_bucket") and "+Inf" in r for r in b.rejected)
    assert buckets(b, S + "time_to_first_token_seconds") == []


def test_dcgm_capture_maps_onto_native_gpu_schema(fixtures):
    b = batch_of(fixtures, "dcgm-exporter-2.x-t4.prom")
    uuid = "GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e"
    assert values(b, "gpufleet_gpu_power_watts", gpu_uuid=uuid) == [8.969]
    assert values(b, "gpufleet_gpu_sm_clock_hertz") == [300e6]
    assert values(b, "gpufleet_gpu_memory_free_bytes") == [15109 * 1024 * 1024]
    assert values(b, "gpufleet_gpu_energy_joules_total") == [pytest.approx(128996.013)]
    assert [g.gpu_model for g in b.gpus] == ["Tesla T4"]


def _zeroed(text):
    """The same exposition from a server that has served nothing yet: every sample value 0."""
    return "\n".join(line if line.startswith("#") or not line.strip() else re.sub(r" \S+$", " 0", line)
                     for line in text.split("\n"))


@pytest.mark.parametrize("fixture", ["vllm-0.4.3.prom", "sglang-0.5.10.prom"])
def test_fixture_ingests_with_hand_checked_deltas(tmp_path, fixtures, fixture):
    text = (fixtures / fixture).read_text()
    target = Target("engine:8000")
    with StoreWriter(tmp_path / "s.duckdb") as w:
        ingest(w, [Scrape(target, 100.0, _zeroed(text)), Scrape(target, 115.0, text)])
        con = w.con
        prompt = con.execute("""SELECT c.delta FROM counters c JOIN series s USING (series_id)
                                WHERE s.metric = ? AND epoch(c.ts) = 115""", [S + "prompt_tokens_total"]).fetchall()
        ttft = dict(con.execute("""SELECT h.le, h.delta FROM histogram_buckets h JOIN series s USING (series_id)
                                   WHERE s.metric = ? AND epoch(h.ts) = 115""",
                                [S + "time_to_first_token_seconds"]).fetchall())
    assert prompt == [(5.0,)]
    if fixture.startswith("vllm"):
        assert ttft[0.25] == 0.0 and ttft[0.5] == 1.0 and ttft[math.inf] == 1.0  # TTFT 0.313 s
    else:
        assert ttft == {0.1: 1.0, math.inf: 1.0}  # TTFT 0.02 s


@pytest.mark.parametrize(("name", "canonical"), [
    ("vllm:inter_token_latency_seconds", S + "inter_token_latency_seconds"),
    ("vllm:time_per_output_token_seconds", S + "inter_token_latency_seconds"),
    ("vllm:kv_cache_usage_perc", S + "kv_cache_usage_ratio"),
    ("vllm:gpu_cache_usage_perc", S + "kv_cache_usage_ratio"),
    ("vllm:prefix_cache_hits_total", S + "prefix_cache_hit_tokens_total"),
    ("vllm:gpu_prefix_cache_hits_total", S + "prefix_cache_hit_tokens_total"),
    ("vllm:request_time_per_output_token_seconds", S + "request_time_per_output_token_seconds"),
])
def test_vllm_v0_and_v1_names_share_canonical_names(name, canonical):
    assert {dst for src, dst, *_ in FAMILIES if src == name} == {canonical}


def test_vllm_v1_engine_label_becomes_engine_index():
    text = ('# TYPE vllm:num_requests_running gauge\n'
            'vllm:num_requests_running{engine="0",model_name="m"} 3\n'
            '# TYPE vllm:iteration_tokens_total histogram\n'
            'vllm:iteration_tokens_total_bucket{engine="0",le="1.0",model_name="m"} 2\n'
            'vllm:iteration_tokens_total_bucket{engine="0",le="+Inf",model_name="m"} 5\n'
            'vllm:iteration_tokens_total_sum{engine="0",model_name="m"} 40\n'
            'vllm:iteration_tokens_total_count{engine="0",model_name="m"} 5\n')
    b = normalize(parse(text), Target("v1:8000"), 1.0)
    run = next(s for s in b.series.values() if s.metric == S + "requests_running")
    assert run.labels == {"engine_index": "0", "model": "m", "engine": "vllm"}
    it = next(s for s in b.series.values() if s.metric == "vllm:iteration_tokens_total")
    assert it.kind == "histogram"  # a histogram whose name ends in _total
    assert dict(buckets(b, "vllm:iteration_tokens_total")) == {1.0: 2.0, math.inf: 5.0}


def test_every_engine_has_label_renames():
    assert {engine for *_, engine, _extra in FAMILIES} <= set(LABELS)
