"""The serving SLO dashboard over the engines' own metric names (vLLM V1; SGLang beside it)."""

from __future__ import annotations

from typing import Any

from gpufleet.dashboards.grafana.model import Panel, Query, custom_var, dashboard, datasource_var, query_var

__all__ = ["rows", "serving_dashboard", "UID", "TTFT_BOUNDS", "ITL_BOUNDS"]

UID = "gpufleet-serving-slo"
S = 'cluster=~"$cluster", node=~"$node", namespace=~"$namespace", model_name=~"$model"'
R = "$__rate_interval"
# SLO thresholds offered: bucket bounds vLLM exposes, so attainment is exact (no interpolation).
TTFT_BOUNDS = ["0.25", "0.5", "0.75", "1.0", "2.5", "5.0"]
ITL_BOUNDS = ["0.025", "0.05", "0.075", "0.1", "0.15", "0.2"]


def _ts(title: str, q: tuple[Query, ...], unit: str = "short", *, width: int = 12, description: str = "") -> Panel:
    return Panel(title, "timeseries", q, unit=unit, width=width, description=description)


def _quantiles(metric: str) -> tuple[Query, ...]:
    return tuple(Query(f"histogram_quantile({q}, sum by (le, model_name) (rate({metric}_bucket{{{S}}}[{R}])))",
                       f"p{round(q * 100)} {{{{model_name}}}}") for q in (0.5, 0.99))


def _attainment(metric: str, var: str) -> str:
    return (f"sum by (model_name) (rate({metric}_bucket{{{S}, le=\"${var}\"}}[{R}])) / "
            f"sum by (model_name) (rate({metric}_count{{{S}}}[{R}]))")


def rows() -> list[tuple[str, list[Panel]]]:
    slo = [
        Panel("TTFT under threshold (range)", "stat", (Query(
            f"sum(increase(vllm:time_to_first_token_seconds_bucket{{{S}, le=\"$ttft_slo\"}}[$__range])) / "
            f"sum(increase(vllm:time_to_first_token_seconds_count{{{S}}}[$__range]))", instant=True),),
            unit="percentunit", width=6, height=4),
        Panel("Request errors (range)", "stat", (Query(
            f"sum(increase(vllm:request_success_total{{{S}, finished_reason=~\"abort|error\"}}[$__range])) / "
            f"sum(increase(vllm:request_success_total{{{S}}}[$__range]))", instant=True),),
            unit="percentunit", width=6, height=4),
        Panel("Requests per second", "stat", (Query(
            f"sum(rate(vllm:request_success_total{{{S}}}[{R}]))", instant=True),), unit="reqps", width=6, height=4),
        Panel("Output tokens per second", "stat", (Query(
            f"sum(rate(vllm:generation_tokens_total{{{S}}}[{R}]))", instant=True),), width=6, height=4),
        _ts("TTFT attainment by model", (Query(_attainment("vllm:time_to_first_token_seconds", "ttft_slo"),
                                               "{{model_name}}"),), "percentunit",
            description="Share of requests whose time to first token was at most $ttft_slo s."),
        _ts("Inter-token latency attainment by model", (Query(_attainment("vllm:inter_token_latency_seconds",
                                                                          "itl_slo"), "{{model_name}}"),),
            "percentunit", description="Share of token gaps at most $itl_slo s."),
        _ts("Error ratio by model", (Query(
            f"sum by (model_name) (rate(vllm:request_success_total{{{S}, finished_reason=~\"abort|error\"}}[{R}])) "
            f"/ sum by (model_name) (rate(vllm:request_success_total{{{S}}}[{R}]))", "{{model_name}}"),),
            "percentunit"),
        _ts("Goodput proxy: requests meeting TTFT per second", (Query(
            f"sum by (model_name) (rate(vllm:time_to_first_token_seconds_bucket{{{S}, le=\"$ttft_slo\"}}[{R}]))",
            "{{model_name}}"),), "reqps"),
    ]
    latency = [
        _ts("Time to first token", _quantiles("vllm:time_to_first_token_seconds"), "s"),
        _ts("Inter-token latency", _quantiles("vllm:inter_token_latency_seconds"), "s"),
        _ts("Time per output token (per request)", _quantiles("vllm:request_time_per_output_token_seconds"), "s"),
        _ts("Queue time", _quantiles("vllm:request_queue_time_seconds"), "s"),
    ]
    load = [
        _ts("Running and waiting requests", (
            Query(f"sum by (model_name) (vllm:num_requests_running{{{S}}})", "running {{model_name}}"),
            Query(f"sum by (model_name) (vllm:num_requests_waiting{{{S}}})", "waiting {{model_name}}")), width=8),
        _ts("KV cache usage (max per pod)", (Query(f"max by (pod) (vllm:kv_cache_usage_perc{{{S}}})", "{{pod}}"),),
            "percentunit", width=8),
        _ts("Tokens per second", (
            Query(f"sum by (model_name) (rate(vllm:prompt_tokens_total{{{S}}}[{R}]))", "prompt {{model_name}}"),
            Query(f"sum by (model_name) (rate(vllm:generation_tokens_total{{{S}}}[{R}]))",
                  "generated {{model_name}}")), width=8),
        _ts("Prefix cache hit rate", (Query(
            f"sum by (model_name) (rate(vllm:prefix_cache_hits_total{{{S}}}[{R}])) / "
            f"sum by (model_name) (rate(vllm:prefix_cache_queries_total{{{S}}}[{R}]))", "{{model_name}}"),),
            "percentunit", width=8),
        _ts("Preemptions", (Query(f"sum by (model_name) (rate(vllm:num_preemptions_total{{{S}}}[{R}]))",
                                  "{{model_name}}", main=False),), "cps", width=8),
        _ts("SGLang TTFT p99", (Query(
            f"histogram_quantile(0.99, sum by (le, model_name) (rate(sglang:time_to_first_token_seconds_bucket"
            f"{{{S}}}[{R}])))", "{{model_name}}", main=False),), "s", width=8),
    ]
    return [("SLOs", slo), ("Latency percentiles", latency), ("Load and throughput", load)]


def serving_dashboard() -> dict[str, Any]:
    """The serving SLO dashboard document."""
    variables = [
        datasource_var(),
        query_var("cluster", "Cluster", "label_values(vllm:num_requests_running, cluster)"),
        query_var("node", "Node", 'label_values(vllm:num_requests_running{cluster=~"$cluster"}, node)'),
        query_var("namespace", "Namespace", 'label_values(vllm:num_requests_running{cluster=~"$cluster"}, '
                                            'namespace)'),
        query_var("model", "Model", 'label_values(vllm:num_requests_running{cluster=~"$cluster", '
                                    'namespace=~"$namespace"}, model_name)'),
        custom_var("ttft_slo", "TTFT SLO (s)", TTFT_BOUNDS, "2.5"),
        custom_var("itl_slo", "ITL SLO (s)", ITL_BOUNDS, "0.1"),
    ]
    return dashboard(UID, "gpufleet / Serving SLOs", rows(), variables, tags=["gpufleet", "serving", "slo"],
                     description="Inference SLOs from the engines' own metrics: TTFT and inter-token latency "
                                 "attainment, errors, percentiles, load.")
