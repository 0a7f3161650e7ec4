"""Shared fixtures of the SLO tests: a tiny vLLM store written through the real ingest path."""

from collections.abc import Callable
from pathlib import Path

import pytest

from gpufleet.collectors.ingest import Scrape, to_batch
from gpufleet.collectors.target import Target
from gpufleet.core.store import Retention, StoreWriter, maintain

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
TTFT = "gpufleet_serving_time_to_first_token_seconds"
BOUNDS = ("0.1", "0.5", "1.0", "+Inf")


def vllm_text(buckets: tuple[int, int, int, int], stop: int, error: int, model: str = "m") -> str:
    """A minimal vLLM /metrics page: a gauge, the TTFT histogram and finished requests by reason."""
    lab = f'engine="0",model_name="{model}"'
    lines = ["# TYPE vllm:num_requests_running gauge", f"vllm:num_requests_running{{{lab}}} 1",
             "# TYPE vllm:time_to_first_token_seconds histogram"]
    lines += [f'vllm:time_to_first_token_seconds_bucket{{{lab},le="{le}"}} {v}' for le, v in zip(BOUNDS, buckets,
                                                                                                  strict=True)]
    lines += [f"vllm:time_to_first_token_seconds_sum{{{lab}}} {buckets[-1] * 0.3}",
              f"vllm:time_to_first_token_seconds_count{{{lab}}} {buckets[-1]}",
              "# TYPE vllm:request_success_total counter",
              f'vllm:request_success_total{{{lab},finished_reason="stop"}} {stop}',
              f'vllm:request_success_total{{{lab},finished_reason="error"}} {error}']
    return "\n".join(lines) + "\n"


# (offset s, cumulative TTFT buckets, stop, error). The third scrape follows an engine restart: every
# counter dropped, so its delta is the value itself (Prometheus reset semantics).
SCRAPES = [
    (60, (10, 20, 30, 40), 100, 1),    # first scrape of the target: baseline, deltas 0
    (120, (20, 50, 70, 80), 150, 3),   # deltas 10/30/40/40, stop 50, error 2
    (180, (1, 5, 8, 10), 5, 0),        # reset: deltas 1/5/8/10, stop 5, error 0
    (240, (3, 15, 20, 30), 25, 2),     # deltas 2/10/12/20, stop 20, error 2
]


def land_scrapes(db: Path, scrapes: list[tuple[float, tuple[int, int, int, int], int, int]], service: str,
          retention: Retention | None = None) -> None:
    target = Target(f"{service}-0:8000", {"service": service, "namespace": "serving"})
    with StoreWriter(db) as w:
        for off, b, stop, err in scrapes:
            w.write([to_batch(Scrape(target, T0 + off, vllm_text(b, stop, err), 60.0))])
        maintain(w.con, retention or Retention())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store with the reset sequence for service ``chat`` and a different, worse service ``other``."""
    path = tmp_path / "slo.duckdb"
    land_scrapes(path, SCRAPES, "chat")
    land_scrapes(path, [(60, (0, 0, 0, 0), 0, 0), (240, (0, 0, 0, 50), 10, 40)], "other")
    return path


@pytest.fixture
def land() -> Callable[..., None]:
    """``land(db, scrapes, service, retention=None)``: write vLLM scrapes into a store and maintain it."""
    return land_scrapes
