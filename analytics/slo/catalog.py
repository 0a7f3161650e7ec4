"""Serving SLIs gpufleet knows: canonical metric names, the engines' own names, their bucket bounds.

One table maps a short SLI key (``ttft``, ``itl``, ``tpot``, ``e2e``, ``queue``) onto the normalised
``gpufleet_serving_*`` histogram and onto each engine's exposed name, so an SLO can be computed from the
store and expressed in PromQL against either naming.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "LatencyMetric",
    "LATENCY",
    "REQUESTS_TOTAL",
    "OUTCOMES",
    "SGLANG_REQUESTS",
    "SGLANG_ABORTED",
    "ENGINE_LABELS",
    "latency_metric",
    "metric_for_name",
]

SERVING = "gpufleet_serving_"

_VLLM_TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
              20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
_VLLM_ITL = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
             40.0, 80.0)
_VLLM_E2E = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
             480.0, 960.0, 1920.0, 7680.0)


@dataclass(frozen=True)
class LatencyMetric:
    """A latency histogram: its SLI key, canonical name, per-engine exposed names and default buckets.

    ``per_request`` is False where one request contributes many observations (inter-token latency
    observes every token gap), so its SLI is a fraction of token gaps, not of requests.
    """

    key: str
    canonical: str
    engines: dict[str, str]
    buckets: tuple[float, ...]
    per_request: bool = True
    description: str = ""


LATENCY: dict[str, LatencyMetric] = {
    m.key: m
    for m in (
        LatencyMetric("ttft", SERVING + "time_to_first_token_seconds",
                      {"vllm": "vllm:time_to_first_token_seconds", "sglang": "sglang:time_to_first_token_seconds"},
                      _VLLM_TTFT, True, "time to first token"),
        LatencyMetric("itl", SERVING + "inter_token_latency_seconds",
                      {"vllm": "vllm:inter_token_latency_seconds", "sglang": "sglang:inter_token_latency_seconds"},
                      _VLLM_ITL, False, "inter-token latency (one observation per token gap)"),
        LatencyMetric("tpot", SERVING + "request_time_per_output_token_seconds",
                      {"vllm": "vllm:request_time_per_output_token_seconds"},
                      _VLLM_ITL, True, "time per output token (one observation per request)"),
        LatencyMetric("e2e", SERVING + "e2e_request_latency_seconds",
                      {"vllm": "vllm:e2e_request_latency_seconds", "sglang": "sglang:e2e_request_latency_seconds"},
                      _VLLM_E2E, True, "end-to-end request latency"),
        LatencyMetric("queue", SERVING + "request_queue_time_seconds",
                      {"vllm": "vllm:request_queue_time_seconds", "sglang": "sglang:queue_time_seconds"},
                      _VLLM_E2E, True, "time spent queued before scheduling"),
    )
}

# Availability: finished requests by outcome (vLLM's request_success_total{finished_reason}).
REQUESTS_TOTAL = SERVING + "requests_total"
OUTCOMES = ("stop", "length", "abort", "error")
VLLM_REQUESTS = "vllm:request_success_total"
# SGLang exposes no outcome split: finished requests and aborted requests, stored under their own names.
SGLANG_REQUESTS = "sglang:num_requests_total"
SGLANG_ABORTED = "sglang:num_aborted_requests_total"

# Label names as each naming exposes them: canonical -> engine's own.
ENGINE_LABELS: dict[str, dict[str, str]] = {
    "canonical": {},
    "vllm": {"model": "model_name", "outcome": "finished_reason"},
    "sglang": {"model": "model_name"},
}

_ALIASES = {
    "ttft": "ttft", "time_to_first_token": "ttft", "time_to_first_token_seconds": "ttft",
    "itl": "itl", "inter_token_latency": "itl", "inter_token_latency_seconds": "itl",
    "time_per_output_token_seconds": "itl",
    "tpot": "tpot", "request_time_per_output_token": "tpot", "request_time_per_output_token_seconds": "tpot",
    "e2e": "e2e", "e2e_request_latency": "e2e", "e2e_request_latency_seconds": "e2e", "latency": "e2e",
    "queue": "queue", "queue_time": "queue", "request_queue_time_seconds": "queue", "queue_time_seconds": "queue",
}


def latency_metric(name: str) -> LatencyMetric | None:
    """The latency metric for a key, alias, canonical or engine name; None when unknown."""
    return metric_for_name(name)


def metric_for_name(name: str) -> LatencyMetric | None:
    """Resolve ``ttft`` / ``gpufleet_serving_time_to_first_token_seconds`` / ``vllm:...`` to its metric."""
    n = name.strip()
    for suffix in ("_bucket", "_count", "_sum"):
        if n.endswith(suffix):
            n = n[: -len(suffix)]
    key = _ALIASES.get(n.lower())
    if key is None:
        bare = n.removeprefix(SERVING).split(":", 1)[-1]
        key = _ALIASES.get(bare.lower())
    return LATENCY.get(key) if key else None
