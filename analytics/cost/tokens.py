"""Cost per 1M tokens, per request and per goodput request (OpenCost's inference-cost method)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenCost", "cost_per_million", "token_cost", "compute_times"]


def cost_per_million(usd: float, tokens: float) -> float:
    """Dollars per 1M tokens; ValueError when there are no tokens."""
    if tokens <= 0:
        raise ValueError(f"tokens must be > 0 to price per 1M tokens, got {tokens}")
    return usd / tokens * 1e6


@dataclass(frozen=True)
class TokenCost:
    """What a model's serving cost per unit of work."""

    cost_usd: float
    input_usd_per_1m: float | None
    output_usd_per_1m: float | None
    usd_per_1m: float | None
    usd_per_request: float | None
    usd_per_goodput_request: float | None


def token_cost(cost_usd: float, *, prompt_tokens: float, cached_tokens: float, output_tokens: float,
               prefill_s: float, decode_s: float, requests: float, goodput_requests: float | None = None
               ) -> TokenCost:
    """Split ``cost_usd`` into input (prefill time) and output (decode time) and price each per 1M tokens.

    Cached prompt tokens were not computed, so they are removed from the input count. With no timing, the
    cost splits by token count.
    """
    inp = max(prompt_tokens - cached_tokens, 0.0)
    t = prefill_s + decode_s
    in_share = prefill_s / t if t > 0 else (inp / (inp + output_tokens) if inp + output_tokens > 0 else 0.0)
    in_usd, out_usd = cost_usd * in_share, cost_usd * (1 - in_share)

    def per(usd: float, n: float) -> float | None:
        return usd / n * 1e6 if n > 0 else None

    return TokenCost(cost_usd, per(in_usd, inp), per(out_usd, output_tokens), per(cost_usd, inp + output_tokens),
                     cost_usd / requests if requests > 0 else None,
                     cost_usd / goodput_requests if goodput_requests else None)


def compute_times(*, prefill_s: float, decode_s: float, ttft_s: float, queue_s: float, e2e_s: float
                  ) -> tuple[float, float]:
    """Seconds of prefill and of decode compute, from an engine's histogram sums over the same requests.

    An engine that reports prefill and decode time (vLLM) is taken at its word. Otherwise prefill is the time
    to first token less the time queued (a request waiting in an overloaded queue is not being computed), and
    decode is what follows the first token.
    """
    prefill = prefill_s if prefill_s > 0 else max(ttft_s - queue_s, 0.0)
    decode = decode_s if decode_s > 0 else max(e2e_s - ttft_s, 0.0)
    return prefill, decode
