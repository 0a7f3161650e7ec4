"""The store-side SLI agrees with Prometheus evaluating the spec's own PromQL over the same samples.

The same cumulative series (a vLLM TTFT histogram and finished requests by reason, with an engine
restart halfway) go two ways: through the ingest path into DuckDB, where ``gpufleet report slo``
computes the error ratio from deltas; and into ``promtool test rules``, which evaluates the PromQL
``SloSpec.error_ratio_query`` renders (``rate()`` ratios, interpolating a threshold between buckets).
Every series has samples at the same instants and grows every interval, so Prometheus' extrapolation
scales numerator and denominator alike and the ratios must match.
"""

import random
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from gpufleet.analytics.slo import store
from gpufleet.analytics.slo.events import availability_events, latency_events
from gpufleet.analytics.slo.spec import parse_specs
from gpufleet.analytics.slo.windows import window_budget
from gpufleet.collectors.ingest import Scrape, to_batch
from gpufleet.collectors.target import Target
from gpufleet.core.store import StoreWriter, maintain, open_readonly

T0 = 1_767_225_600.0
LES = ("0.1", "0.25", "0.5", "1.0", "+Inf")  # a subset of vLLM's TTFT buckets, so the catalog's edges exist
POINTS = 41  # one sample a minute for 40 minutes
RESTART = 25  # the engine restarts before this sample: every counter starts again from 0
OFFSET = 1_000_000  # counters far from zero before the restart


def _series() -> tuple[list[list[int]], dict[str, list[int]]]:
    """Cumulative bucket counts per sample (one list per ``le``) and outcome counters per sample."""
    rng = random.Random(5)
    buckets: list[list[int]] = [[] for _ in LES]
    outcomes: dict[str, list[int]] = {k: [] for k in ("stop", "length", "abort", "error")}
    cum = [OFFSET] * len(LES)
    out = dict.fromkeys(outcomes, OFFSET)
    for i in range(POINTS):
        if i == RESTART:
            cum = [0] * len(LES)
            out = dict.fromkeys(outcomes, 0)
        per_bucket = [rng.randint(20, 40) for _ in LES]  # observations landing in each (non-cumulative) bucket
        running = 0
        for j, n in enumerate(per_bucket):
            running += n
            cum[j] += running
            buckets[j].append(cum[j])
        for k, (lo, hi) in {"stop": (80, 120), "length": (10, 20), "abort": (3, 6), "error": (2, 5)}.items():
            out[k] += rng.randint(lo, hi)
            outcomes[k].append(out[k])
    return buckets, outcomes


BUCKETS, OUTCOMES = _series()
SPEC = """
version: gpufleet/v1
window: 1h
services:
  - service: chat
    objectives:
      - {name: availability, sli: availability, target: 99}
      - {name: not-stopped, sli: availability, bad_outcomes: [error, abort], target: 95}
      - {name: ttft-250ms, sli: latency, metric: ttft, threshold: 250ms, target: 90}
      - {name: ttft-400ms, sli: latency, metric: ttft, threshold: 400ms, target: 90}
      - {name: ttft-1s, sli: latency, metric: ttft, threshold: 1s, target: 90}
"""


def _exposition(i: int) -> str:
    lab = 'engine="0",model_name="m"'
    lines = ["# TYPE vllm:num_requests_running gauge", f"vllm:num_requests_running{{{lab}}} 1",
             "# TYPE vllm:time_to_first_token_seconds histogram"]
    lines += [f'vllm:time_to_first_token_seconds_bucket{{{lab},le="{le}"}} {BUCKETS[j][i]}' for j, le in enumerate(LES)]
    lines += [f"vllm:time_to_first_token_seconds_sum{{{lab}}} {BUCKETS[-1][i] * 0.3}",
              f"vllm:time_to_first_token_seconds_count{{{lab}}} {BUCKETS[-1][i]}",
              "# TYPE vllm:request_success_total counter"]
    lines += [f'vllm:request_success_total{{{lab},finished_reason="{k}"}} {v[i]}' for k, v in OUTCOMES.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def ratios(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], float]:
    """Store-side error ratio per (SLO name, window minutes), at the last sample."""
    db = tmp_path_factory.mktemp("promql") / "s.duckdb"
    target = Target("chat-0:8000", {"service": "chat"})
    with StoreWriter(db) as w:
        for i in range(POINTS):
            w.write([to_batch(Scrape(target, T0 + 60 * i, _exposition(i), 60.0))])
        maintain(w.con)
    end = datetime(2026, 1, 1) + timedelta(minutes=POINTS - 1)
    out = {}
    with open_readonly(db) as con:
        for spec in parse_specs(SPEC):
            for minutes in (10, 30):
                start = end - timedelta(minutes=minutes)
                if spec.latency is not None:
                    ev = latency_events(store.histogram_deltas(con, spec.latency.canonical, spec.selector, start, end),
                                        spec.latency.threshold_s)
                else:
                    assert spec.availability is not None
                    ev = availability_events(store.outcome_deltas(con, spec.selector, start, end),
                                             spec.availability.bad_outcomes)
                # Prometheus' [Nm] range holds N samples here (evaluated half a step after the last one), i.e.
                # N - 1 increases: the deltas stamped in the last N - 1 minutes.
                b = window_budget(ev, end, timedelta(minutes=minutes - 1), spec.objective)
                assert b.counts.total > 0
                out[(spec.name, minutes)] = b.counts.bad / b.counts.total
    return out


def test_store_ratio_equals_promql(ratios: dict[tuple[str, int], float], tmp_path: Path) -> None:
    """``promtool test rules`` checks |PromQL ratio - store ratio| < 1e-9 for every SLO and window."""
    name = "gpufleet_serving_time_to_first_token_seconds"
    series = [{"series": f'{name}_bucket{{service="chat",le="{le}"}}', "values": " ".join(map(str, BUCKETS[j]))}
              for j, le in enumerate(LES)]
    series.append({"series": f'{name}_count{{service="chat"}}', "values": " ".join(map(str, BUCKETS[-1]))})
    series += [{"series": f'gpufleet_serving_requests_total{{service="chat",outcome="{k}"}}',
                "values": " ".join(map(str, v))} for k, v in OUTCOMES.items()]
    checks = []
    specs = {s.name: s for s in parse_specs(SPEC)}
    for (slo, minutes), value in sorted(ratios.items()):
        query = specs[slo].error_ratio_query(f"{minutes}m", naming="canonical").replace("\n", " ")
        checks.append({"expr": f"abs(({query}) - {value!r}) < bool 1e-9", "eval_time": f"{POINTS - 1}m30s",
                       "exp_samples": [{"labels": "{}", "value": 1}]})
    test = {"evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}]}
    path = tmp_path / "agree_test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    run = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(checks) == 10
    # the restart is inside the 30-minute window and the ratios are real fractions, not 0 or 1
    assert all(0.0 < v < 1.0 for v in ratios.values())
