"""SLO spec loading: gpufleet YAML, Sloth prometheus/v1, OpenSLO v1, and errors that name file, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufleet.analytics.slo import SpecError, load_specs, parse_specs
from gpufleet.analytics.slo.spec import parse_duration, parse_objective

EXAMPLES = Path(__file__).resolve().parents[3] / "analytics" / "slo" / "examples"


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("2s", 2.0), ("5m", 300.0), ("6h", 21600.0), ("28d", 2419200.0), ("1w", 604800.0), (1.5, 1.5),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("value", "ratio"), [(99.9, 0.999), ("99.5%", 0.995), (0.99, 0.99), ("95", 0.95), (50, 0.5)])
def test_parse_objective(value, ratio):
    assert parse_objective(value) == pytest.approx(ratio, abs=1e-12)


@pytest.mark.parametrize("value", [100, 1, 0, -3, "abc", True])
def test_parse_objective_rejects(value):
    with pytest.raises(ValueError):
        parse_objective(value)


def test_examples_load_in_all_three_formats():
    specs = {s.id: s for s in load_specs(EXAMPLES)}
    assert {s.source_format for s in specs.values()} == {"gpufleet", "sloth", "openslo"}
    ttft = specs["chat-llama-3.1-70b-instruct/ttft-2s"]
    assert (ttft.sli, ttft.latency.metric, ttft.latency.threshold_s, ttft.objective) == ("latency", "ttft", 2.0, 0.99)
    assert ttft.window_s == 28 * 86400 and ttft.window == "28d" and ttft.tier == "interactive"
    assert ttft.selector == {"service": "chat-llama-3.1-70b-instruct"}
    assert ttft.latency.canonical == "gpufleet_serving_time_to_first_token_seconds"
    assert ttft.latency.engine_metrics["vllm"] == "vllm:time_to_first_token_seconds"
    search = specs["search-llama-3.1-8b-instruct/availability"]
    assert search.availability.bad_outcomes == ("error", "abort") and search.window == "7d"
    qwen = specs["Qwen/Qwen2.5-Coder-32B-Instruct/e2e-10s"]
    assert qwen.selector == {"model": "Qwen/Qwen2.5-Coder-32B-Instruct"} and qwen.window == "30d"
    # Sloth over vLLM names: recognised as serving SLIs, its own PromQL kept for rule generation
    sloth = specs["chat-llama-3.1-70b-instruct/ttft-2500ms"]
    assert (sloth.sli, sloth.latency.metric, sloth.latency.threshold_s) == ("latency", "ttft", 2.5)
    assert sloth.window == "30d" and sloth.tier == "interactive" and sloth.labels["owner"] == "chat-team"
    assert "vllm:time_to_first_token_seconds_bucket" in sloth.error_query("1h")
    assert "[1h]" in sloth.error_query("1h") and "{{.window}}" not in sloth.error_query("1h")
    assert "gpufleet_serving_time_to_first_token_seconds_bucket" in sloth.error_query("1h", "canonical")
    avail = specs["chat-llama-3.1-70b-instruct/requests-availability"]
    assert avail.sli == "availability" and avail.availability.bad_outcomes == ("error",)
    # OpenSLO: SLI by reference, and a threshold indicator
    code = specs["code-qwen2.5-coder-32b-instruct/code-availability"]
    assert code.sli == "availability" and code.objective == 0.99 and code.tier == "interactive"
    e2e = specs["code-qwen2.5-coder-32b-instruct/code-e2e"]
    assert (e2e.sli, e2e.latency.metric, e2e.latency.threshold_s, e2e.window) == ("latency", "e2e", 10.0, "30d")


@pytest.mark.parametrize(("naming", "expected"), [
    ("canonical", 'sum(rate(gpufleet_serving_requests_total{service="svc",outcome=~"error"}[5m]))'),
    ("vllm", 'sum(rate(vllm:request_success_total{service="svc",finished_reason=~"error"}[5m]))'),
    ("sglang", 'sum(rate(sglang:num_aborted_requests_total{service="svc"}[5m]))'),
])
def test_availability_promql(naming, expected):
    (spec,) = parse_specs("services: [{service: svc, objectives: [{name: a, sli: availability, target: 99}]}]")
    assert spec.error_query("5m", naming) == expected


def test_latency_promql_interpolates_between_buckets():
    (spec,) = parse_specs("services: [{service: s, model: m, objectives: "
                          "[{name: t, sli: latency, metric: ttft, threshold: 2s, target: 99}]}]")
    q = spec.error_query("1h", "vllm")
    # 2 s lies between the 1 s and 2.5 s buckets: 1 + (2.5 - 1) * 2/3
    assert 'le=~"1(\\\\.0)?"' in q and 'le="2.5"' in q and "* 0.666667" in q
    assert 'model_name="m"' in q and 'model="m"' not in q
    with pytest.raises(ValueError, match="exposes no"):
        parse_specs("services: [{service: s, objectives: [{name: t, sli: latency, metric: tpot, threshold: 0.1, "
                    "target: 99}]}]")[0].total_query("5m", "sglang")


def test_threshold_beyond_buckets_has_no_promql():
    (spec,) = parse_specs("services: [{service: s, objectives: [{name: t, sli: latency, metric: itl, "
                          "threshold: 100s, target: 99}]}]")
    with pytest.raises(ValueError, match="beyond the highest finite bucket"):
        spec.error_query("5m")


@pytest.mark.parametrize(("text", "fragments"), [
    ("services: [{service: s, objectives: [{name: a, sli: latency, target: 99}]}]",
     ["services[0].objectives[0]", "needs `metric`"]),
    ("services: [{service: s, objectives: [{name: a, sli: latency, metric: ttfx, threshold: 1s, target: 99}]}]",
     ["services[0].objectives[0].metric", "unknown latency metric 'ttfx'"]),
    ("services: [{service: s, objectives: [{name: a, sli: availability, target: 100}]}]",
     ["services[0].objectives[0].target", "no error budget"]),
    ("services: [{service: s, windw: 28d, objectives: [{name: a, sli: availability, target: 99}]}]",
     ["services[0].windw", "unknown key"]),
    ("services: [{service: s, window: 4 weeks, objectives: [{name: a, sli: availability, target: 99}]}]",
     ["services[0].window", "not a duration"]),
    ("services: [{objectives: [{name: a, sli: availability, target: 99}]}]", ["services[0]", "`service`"]),
    ("services: [{service: s, objectives: [{name: a, sli: availability, target: 99}, "
     "{name: a, sli: availability, target: 98}]}]", ["defined twice"]),
    ("services: [{service: s, selector: {gpu: x}, objectives: [{name: a, sli: availability, target: 99}]}]",
     ["services[0].selector", "not serving labels"]),
    ("version: prometheus/v1\nservice: s\nslos: [{name: a, objective: 0.99, sli: {raw: {error_ratio_query: x}}}]",
     ["slos[0].objective", "percent"]),
    ("version: prometheus/v1\nservice: s\nslos: [{name: a, objective: 99, sli: {plugin: {id: x}}}]",
     ["slos[0].sli", "plugins are not supported"]),
    ("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {service: s, indicatorRef: nope, "
     "objectives: [{target: 0.9}]}", ["indicatorRef 'nope'", "kind: SLI"]),
    ("version: other/v9\n", ["version 'other/v9'"]),
    ("services: [", ["not valid YAML"]),
])
def test_errors_name_file_key_and_fix(tmp_path, text, fragments):
    f = tmp_path / "slo.yaml"
    f.write_text(text)
    with pytest.raises(SpecError) as err:
        load_specs(f)
    msg = str(err.value)
    assert msg.startswith(str(f)), msg
    for frag in fragments:
        assert frag in msg, msg


def test_missing_path_and_empty_dir(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_specs(tmp_path / "none.yaml")
    with pytest.raises(SpecError, match="no \\*.yaml"):
        load_specs(tmp_path)
