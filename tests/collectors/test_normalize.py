import pytest

from gpufleet.collectors.exposition import parse
from gpufleet.collectors.normalize import Limits, normalize
from gpufleet.collectors.target import Target

T = Target("node-1:9400", {"cluster": "c1"})
DCGM = """# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",Hostname="n1",modelName="NVIDIA H100 80GB HBM3",pod="p",namespace="ns",container="c"} 45
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-a",Hostname="n1",modelName="NVIDIA H100 80GB HBM3"} 1024
# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="GPU-a",Hostname="n1"} 5000
"""


def by_metric(batch):
    out = {}
    for sid, _ts, v in batch.gauges + batch.counters:
        out[batch.series[sid].metric] = (batch.series[sid], v)
    return out


def test_dcgm_names_become_native_base_units_and_labels():
    b = normalize(parse(DCGM), T, 100.0)
    m = by_metric(b)
    util, v = m["gpufleet_gpu_utilization_ratio"]
    assert v == pytest.approx(0.45)
    assert util.labels == {"gpu": "0", "gpu_uuid": "GPU-a", "node": "n1", "gpu_model": "NVIDIA H100 80GB HBM3",
                           "pod": "p", "namespace": "ns", "container": "c", "cluster": "c1"}
    assert util.source_metric == "DCGM_FI_DEV_GPU_UTIL"
    assert m["gpufleet_gpu_memory_used_bytes"][1] == 1024 * 1024 * 1024
    assert m["gpufleet_gpu_energy_joules_total"][1] == 5.0
    assert m["gpufleet_gpu_energy_joules_total"][0].kind == "counter"


def test_gpu_and_allocation_dimensions_are_derived():
    b = normalize(parse(DCGM), T, 100.0)
    assert [g.gpu_uuid for g in b.gpus] == ["GPU-a"]
    assert [(a.namespace, a.pod, a.share) for a in b.allocations] == [("ns", "p", 1.0)]


def test_native_dialect_wins_when_both_are_present():
    text = DCGM + '# TYPE gpufleet_gpu_utilization_ratio gauge\ngpufleet_gpu_utilization_ratio{gpu_uuid="GPU-a"} 0.5\n'
    b = normalize(parse(text), T, 100.0)
    utils = [v for sid, _, v in b.gauges if b.series[sid].metric == "gpufleet_gpu_utilization_ratio"]
    assert utils == [0.5]


def test_duplicate_series_keeps_first_and_says_so():
    b = normalize(parse("a 1\na 2\n"), T, 1.0)
    assert [v for _, _, v in b.gauges] == [1.0]
    assert "duplicate series" in b.rejected[0]


def test_nan_is_rejected_but_the_rest_lands():
    b = normalize(parse("a NaN\nb 2\n"), T, 1.0)
    assert [v for _, _, v in b.gauges] == [2.0]
    assert "non-finite" in b.rejected[0] and b.rejected[0].startswith("a")


@pytest.mark.parametrize(("buckets", "problem"), [
    ('h_bucket{le="1"} 5\nh_bucket{le="2"} 3\nh_bucket{le="+Inf"} 6\n', "not cumulative"),
    ('h_bucket{le="1"} 5\nh_bucket{le="2"} 6\n', "no le=\"+Inf\""),
    ('h_bucket{le="abc"} 5\nh_bucket{le="+Inf"} 6\n', "invalid 'le'"),
])
def test_bad_histograms_are_rejected_and_other_families_land(buckets, problem):
    text = "# TYPE h histogram\n" + buckets + "h_sum 1\nh_count 6\nok 1\n"
    b = normalize(parse(text), T, 1.0)
    assert any(problem in r for r in b.rejected)
    assert [b.series[sid].metric for sid, _, _ in b.gauges] == ["ok"]


def test_histogram_buckets_sum_count():
    text = '# TYPE h histogram\nh_bucket{le="0.5"} 1\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 4\nh_sum 2.5\nh_count 4\n'
    b = normalize(parse(text), T, 1.0)
    assert [(le, v) for _, _, le, v in b.buckets] == [(0.5, 1), (1.0, 3), (float("inf"), 4)]
    assert sorted(b.series[sid].metric for sid, _, _ in b.counters) == ["h_count", "h_sum"]


def test_label_limits_are_enforced_per_series():
    many = ",".join(f'l{i}="v"' for i in range(5))
    b = normalize(parse(f"wide{{{many}}} 1\nnarrow 1\n"), T, 1.0, limits=Limits(max_labels=3))
    assert [b.series[sid].metric for sid, _, _ in b.gauges] == ["narrow"]
    assert "5 labels exceed the limit of 3" in b.rejected[0]


def test_sample_limit_drops_later_families_with_a_message():
    b = normalize(parse("a 1\nb 2\nc 3\n"), T, 1.0, limits=Limits(max_samples=2))
    assert len(b.gauges) == 2
    assert "sample limit" in b.rejected[-1]


def test_vllm_v0_capture_maps_to_serving_schema(fixtures):
    b = normalize(parse((fixtures / "vllm-0.4.3.prom").read_text()), Target("vllm:8000"), 1.0)
    metrics = {s.metric for s in b.series.values()}
    assert {"gpufleet_serving_time_to_first_token_seconds", "gpufleet_serving_inter_token_latency_seconds",
            "gpufleet_serving_prompt_tokens_total", "gpufleet_serving_kv_cache_usage_ratio"} <= metrics
    prompt = [v for sid, _, v in b.counters if b.series[sid].metric == "gpufleet_serving_prompt_tokens_total"]
    assert prompt == [5.0]
    ttft = [(le, v) for sid, _, le, v in b.buckets
            if b.series[sid].metric == "gpufleet_serving_time_to_first_token_seconds"]
    assert (0.25, 0.0) in ttft and (0.5, 1.0) in ttft
    sdef = next(s for s in b.series.values() if s.metric == "gpufleet_serving_prompt_tokens_total")
    assert sdef.labels == {"model": "facebook/opt-125m", "engine": "vllm"}
