"""Inference-engine families onto the normalised serving schema (``gpufleet_serving_*``).

Quirks that matter: vLLM V0's ``time_per_output_token_seconds`` observes every token gap
(the V1 ``inter_token_latency_seconds``); vLLM labels the engine index ``engine``, which we
keep as ``engine_index`` so ``engine`` can name the engine itself.
"""

from __future__ import annotations

__all__ = ["FAMILIES", "LABELS", "SERVING"]

SERVING = "gpufleet_serving_"

_VLLM = {
    "vllm:time_to_first_token_seconds": "time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds": "inter_token_latency_seconds",
    "vllm:time_per_output_token_seconds": "inter_token_latency_seconds",
    "vllm:request_time_per_output_token_seconds": "request_time_per_output_token_seconds",
    "vllm:e2e_request_latency_seconds": "e2e_request_latency_seconds",
    "vllm:request_queue_time_seconds": "request_queue_time_seconds",
    "vllm:request_prefill_time_seconds": "request_prefill_time_seconds",
    "vllm:request_decode_time_seconds": "request_decode_time_seconds",
    "vllm:prompt_tokens_total": "prompt_tokens_total",
    "vllm:generation_tokens_total": "generation_tokens_total",
    "vllm:prefix_cache_hits_total": "prefix_cache_hit_tokens_total",
    "vllm:prefix_cache_queries_total": "prefix_cache_query_tokens_total",
    "vllm:request_success_total": "requests_total",
    "vllm:num_preemptions_total": "preemptions_total",
    "vllm:num_requests_running": "requests_running",
    "vllm:num_requests_waiting": "requests_waiting",
    "vllm:kv_cache_usage_perc": "kv_cache_usage_ratio",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage_ratio",
}

_SGLANG = {
    "sglang:time_to_first_token_seconds": "time_to_first_token_seconds",
    "sglang:inter_token_latency_seconds": "inter_token_latency_seconds",
    "sglang:e2e_request_latency_seconds": "e2e_request_latency_seconds",
    "sglang:queue_time_seconds": "request_queue_time_seconds",
    "sglang:prompt_tokens_total": "prompt_tokens_total",
    "sglang:generation_tokens_total": "generation_tokens_total",
    "sglang:cached_tokens_total": "prefix_cache_hit_tokens_total",
    "sglang:num_running_reqs": "requests_running",
    "sglang:num_queue_reqs": "requests_waiting",
    "sglang:token_usage": "kv_cache_usage_ratio",
}

FAMILIES: list[tuple[str, str, float, str]] = [
    (src, SERVING + dst, 1.0, "vllm") for src, dst in _VLLM.items()
] + [(src, SERVING + dst, 1.0, "sglang") for src, dst in _SGLANG.items()]

LABELS: dict[str, dict[str, str]] = {
    "vllm": {"model_name": "model", "engine": "engine_index", "finished_reason": "outcome"},
    "sglang": {"model_name": "model", "engine_type": "engine_type"},
}
