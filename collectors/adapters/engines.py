"""Inference-engine families onto the normalised serving schema (``gpufleet_serving_*``).

One row per exposed family: ``(source family, canonical suffix, scale, engine, extra labels)``.
The canonical series keep the exposed name in ``source_metric``; families with no row land raw.

Quirks that matter:

- vLLM V0's ``time_per_output_token_seconds`` observes every token gap, i.e. it is the V1
  ``inter_token_latency_seconds`` (renamed in 0.11); ``gpu_cache_usage_perc`` became
  ``kv_cache_usage_perc`` and ``gpu_prefix_cache_*`` became ``prefix_cache_*`` (counted in tokens).
  vLLM labels the engine index ``engine``; we keep it as ``engine_index`` so ``engine`` names the engine.
- ``vllm:iteration_tokens_total`` is a histogram whose name ends in ``_total``: it lands raw, as a histogram.
- SGLang's ``inter_token_latency_seconds_count`` counts tokens, not requests (like vLLM's ITL).
  ``sglang:num_requests_total`` counts every finished request, aborted ones included.
- Triton's ``*_duration_us`` are cumulative microsecond counters (a histogram's ``_sum`` in base units:
  mean latency = rate(sum) / rate(success)); its opt-in first-response histogram is in milliseconds.
- TGI has no TTFT histogram and no model label.
- TensorRT-LLM's Triton backend puts several gauges in one family keyed by a label
  (``request_type``, ``kv_cache_block_type``): see :data:`LABEL_SPLITS`.
- llama.cpp server exposes unlabelled counters only: no histograms, so no latency percentiles.
"""

from __future__ import annotations

__all__ = ["FAMILIES", "LABELS", "LABEL_SPLITS", "SERVING", "ENGINES"]

SERVING = "gpufleet_serving_"

Row = tuple[str, str, float, str, dict[str, str]]

_NONE: dict[str, str] = {}
_SUCCESS = {"outcome": "success"}
_ERROR = {"outcome": "error"}

_VLLM: list[Row] = [
    ("vllm:time_to_first_token_seconds", "time_to_first_token_seconds", 1.0, "vllm", _NONE),
    ("vllm:inter_token_latency_seconds", "inter_token_latency_seconds", 1.0, "vllm", _NONE),
    ("vllm:time_per_output_token_seconds", "inter_token_latency_seconds", 1.0, "vllm", _NONE),
    ("vllm:request_time_per_output_token_seconds", "request_time_per_output_token_seconds", 1.0, "vllm", _NONE),
    ("vllm:e2e_request_latency_seconds", "e2e_request_latency_seconds", 1.0, "vllm", _NONE),
    ("vllm:request_queue_time_seconds", "request_queue_time_seconds", 1.0, "vllm", _NONE),
    ("vllm:request_prefill_time_seconds", "request_prefill_time_seconds", 1.0, "vllm", _NONE),
    ("vllm:request_decode_time_seconds", "request_decode_time_seconds", 1.0, "vllm", _NONE),
    ("vllm:request_prompt_tokens", "request_prompt_tokens", 1.0, "vllm", _NONE),
    ("vllm:request_generation_tokens", "request_generation_tokens", 1.0, "vllm", _NONE),
    ("vllm:prompt_tokens_total", "prompt_tokens_total", 1.0, "vllm", _NONE),
    ("vllm:generation_tokens_total", "generation_tokens_total", 1.0, "vllm", _NONE),
    ("vllm:prefix_cache_hits_total", "prefix_cache_hit_tokens_total", 1.0, "vllm", _NONE),
    ("vllm:prefix_cache_queries_total", "prefix_cache_query_tokens_total", 1.0, "vllm", _NONE),
    ("vllm:gpu_prefix_cache_hits_total", "prefix_cache_hit_tokens_total", 1.0, "vllm", _NONE),
    ("vllm:gpu_prefix_cache_queries_total", "prefix_cache_query_tokens_total", 1.0, "vllm", _NONE),
    ("vllm:request_success_total", "requests_total", 1.0, "vllm", _NONE),
    ("vllm:num_preemptions_total", "preemptions_total", 1.0, "vllm", _NONE),
    ("vllm:num_requests_running", "requests_running", 1.0, "vllm", _NONE),
    ("vllm:num_requests_waiting", "requests_waiting", 1.0, "vllm", _NONE),
    ("vllm:kv_cache_usage_perc", "kv_cache_usage_ratio", 1.0, "vllm", _NONE),
    ("vllm:gpu_cache_usage_perc", "kv_cache_usage_ratio", 1.0, "vllm", _NONE),
]

_SGLANG: list[Row] = [
    ("sglang:time_to_first_token_seconds", "time_to_first_token_seconds", 1.0, "sglang", _NONE),
    ("sglang:inter_token_latency_seconds", "inter_token_latency_seconds", 1.0, "sglang", _NONE),
    ("sglang:e2e_request_latency_seconds", "e2e_request_latency_seconds", 1.0, "sglang", _NONE),
    ("sglang:queue_time_seconds", "request_queue_time_seconds", 1.0, "sglang", _NONE),
    ("sglang:prompt_tokens_histogram", "request_prompt_tokens", 1.0, "sglang", _NONE),
    ("sglang:generation_tokens_histogram", "request_generation_tokens", 1.0, "sglang", _NONE),
    ("sglang:prompt_tokens_total", "prompt_tokens_total", 1.0, "sglang", _NONE),
    ("sglang:generation_tokens_total", "generation_tokens_total", 1.0, "sglang", _NONE),
    ("sglang:cached_tokens_total", "prefix_cache_hit_tokens_total", 1.0, "sglang", _NONE),
    ("sglang:num_requests_total", "requests_total", 1.0, "sglang", {"outcome": "finished"}),
    ("sglang:num_aborted_requests_total", "requests_total", 1.0, "sglang", {"outcome": "abort"}),
    ("sglang:num_running_reqs", "requests_running", 1.0, "sglang", _NONE),
    ("sglang:num_queue_reqs", "requests_waiting", 1.0, "sglang", _NONE),
    ("sglang:token_usage", "kv_cache_usage_ratio", 1.0, "sglang", _NONE),
]

_TGI: list[Row] = [
    ("tgi_request_duration", "e2e_request_latency_seconds", 1.0, "tgi", _NONE),
    ("tgi_request_queue_duration", "request_queue_time_seconds", 1.0, "tgi", _NONE),
    ("tgi_request_mean_time_per_token_duration", "request_time_per_output_token_seconds", 1.0, "tgi", _NONE),
    ("tgi_request_input_length", "request_prompt_tokens", 1.0, "tgi", _NONE),
    ("tgi_request_generated_tokens", "request_generation_tokens", 1.0, "tgi", _NONE),
    ("tgi_request_success", "requests_total", 1.0, "tgi", _SUCCESS),
    ("tgi_request_failure", "requests_total", 1.0, "tgi", _ERROR),
    ("tgi_queue_size", "requests_waiting", 1.0, "tgi", _NONE),
    ("tgi_batch_current_size", "requests_running", 1.0, "tgi", _NONE),
]

_TRITON: list[Row] = [
    ("nv_inference_request_success", "requests_total", 1.0, "triton", _SUCCESS),
    ("nv_inference_request_failure", "requests_total", 1.0, "triton", _ERROR),
    ("nv_inference_request_duration_us", "e2e_request_latency_seconds_sum", 1e-6, "triton", _NONE),
    ("nv_inference_queue_duration_us", "request_queue_time_seconds_sum", 1e-6, "triton", _NONE),
    ("nv_inference_first_response_histogram_ms", "time_to_first_token_seconds", 1e-3, "triton", _NONE),
    ("nv_inference_pending_request_count", "requests_waiting", 1.0, "triton", _NONE),
]

_TRTLLM: list[Row] = [
    ("trtllm_time_to_first_token_seconds", "time_to_first_token_seconds", 1.0, "trtllm", _NONE),
    ("trtllm_time_per_output_token_seconds", "request_time_per_output_token_seconds", 1.0, "trtllm", _NONE),
    ("trtllm_e2e_request_latency_seconds", "e2e_request_latency_seconds", 1.0, "trtllm", _NONE),
    ("trtllm_request_queue_time_seconds", "request_queue_time_seconds", 1.0, "trtllm", _NONE),
    ("trtllm_request_success_total", "requests_total", 1.0, "trtllm", _NONE),
    ("trtllm_kv_cache_utilization", "kv_cache_usage_ratio", 1.0, "trtllm", _NONE),
]

_LLAMACPP: list[Row] = [
    ("llamacpp:prompt_tokens_total", "prompt_tokens_total", 1.0, "llamacpp", _NONE),
    ("llamacpp:tokens_predicted_total", "generation_tokens_total", 1.0, "llamacpp", _NONE),
    ("llamacpp:prompt_seconds_total", "prefill_busy_seconds_total", 1.0, "llamacpp", _NONE),
    ("llamacpp:tokens_predicted_seconds_total", "decode_busy_seconds_total", 1.0, "llamacpp", _NONE),
    ("llamacpp:requests_processing", "requests_running", 1.0, "llamacpp", _NONE),
    ("llamacpp:requests_deferred", "requests_waiting", 1.0, "llamacpp", _NONE),
    ("llamacpp:kv_cache_usage_ratio", "kv_cache_usage_ratio", 1.0, "llamacpp", _NONE),
]

FAMILIES: list[Row] = [(src, SERVING + dst, scale, engine, extra)
                       for src, dst, scale, engine, extra in _VLLM + _SGLANG + _TGI + _TRITON + _TRTLLM + _LLAMACPP]

ENGINES = ("vllm", "sglang", "tgi", "triton", "trtllm", "llamacpp")

LABELS: dict[str, dict[str, str]] = {
    "vllm": {"model_name": "model", "engine": "engine_index", "finished_reason": "outcome"},
    "sglang": {"model_name": "model", "engine_type": "engine_type"},
    "tgi": {"err": "error_kind"},
    "triton": {"version": "model_version"},
    "trtllm": {"model_name": "model", "finished_reason": "outcome", "version": "model_version"},
    "llamacpp": {"model_name": "model"},
}

# Families that carry several gauges in one, keyed by a label: (label, {label value: canonical suffix}).
# Other values of the label land raw, under the family's own name.
LABEL_SPLITS: dict[str, tuple[str, str, dict[str, str]]] = {
    "nv_trt_llm_request_metrics": ("trtllm", "request_type", {
        "waiting": SERVING + "requests_waiting", "active": SERVING + "requests_running",
        "scheduled": SERVING + "requests_scheduled", "max": SERVING + "requests_max"}),
    "nv_trt_llm_kv_cache_block_metrics": ("trtllm", "kv_cache_block_type", {
        "fraction": SERVING + "kv_cache_usage_ratio", "used": SERVING + "kv_cache_used_blocks",
        "max": SERVING + "kv_cache_max_blocks"}),
}
