"""SLO inputs read back from a real DuckDB store written through the ingest path, counter resets included."""

from datetime import datetime
from pathlib import Path

import pytest

from gpufleet.analytics.slo import store
from gpufleet.analytics.slo.events import availability_events, latency_events
from gpufleet.analytics.slo.report import slo_report
from gpufleet.analytics.slo.spec import parse_specs
from gpufleet.analytics.slo.windows import counts_in
from gpufleet.collectors.ingest import Scrape, to_batch
from gpufleet.collectors.target import Target
from gpufleet.core.store import Retention, StoreWriter, maintain, open_readonly

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


def _land(db: Path, scrapes: list[tuple[float, tuple[int, int, int, int], int, int]], service: str,
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
    _land(path, SCRAPES, "chat")
    _land(path, [(60, (0, 0, 0, 0), 0, 0), (240, (0, 0, 0, 50), 10, 40)], "other")
    return path


START = datetime(2026, 1, 1)
END = datetime(2026, 1, 1, 0, 4)


@pytest.mark.parametrize(
    ("threshold", "bad", "bad_min", "bad_max"),
    [
        # window sums: 13/45/60/70 (baseline excluded, reset counted from 0)
        (0.5, 70 - 45, 25, 25),
        (1.0, 10, 10, 10),
        (0.3, 70 - (13 + 32 * 0.5), 70 - 45, 70 - 13),
        (0.05, 70 - 6.5, 70 - 13, 70),
    ],
)
def test_latency_from_store_across_reset(db: Path, threshold: float, bad: float, bad_min: float,
                                         bad_max: float) -> None:
    """Stored bucket deltas give the hand-computed SLI and bounds across an engine restart."""
    with open_readonly(db) as con:
        frame = store.histogram_deltas(con, TTFT, {"service": "chat"}, START, END)
    c = counts_in(latency_events(frame, threshold), START, END)
    assert c.total == 70
    assert (c.bad, c.bad_min, c.bad_max) == (pytest.approx(bad), pytest.approx(bad_min), pytest.approx(bad_max))


def test_availability_from_store_across_reset(db: Path) -> None:
    """stop 50 + 5 + 20 and error 2 + 0 + 2: 79 finished, 4 failed; the other service is not selected."""
    with open_readonly(db) as con:
        frame = store.outcome_deltas(con, {"service": "chat"}, START, END)
        both = store.outcome_deltas(con, {}, START, END)
        assert store.serving_services(con) == ["chat", "other"]
        assert store.series_count(con, TTFT, "histogram", {"service": "nope"}) == 0
    c = counts_in(availability_events(frame, ["error"]), START, END)
    assert (c.total, c.bad) == (79, 4)
    c2 = counts_in(availability_events(both, ["error"]), START, END)
    assert (c2.total, c2.bad) == (79 + 50, 4 + 40)


def test_window_reaching_into_hourly_rollups(tmp_path: Path) -> None:
    """Past raw retention the reader takes the hourly rollup, so a long window still sees every request."""
    path = tmp_path / "rollup.duckdb"
    scrapes = [(600.0 * i, (i, 2 * i, 3 * i, 10 * i), 9 * i, i) for i in range(1, 19)]  # 00:10 .. 03:00
    _land(path, scrapes, "chat", Retention(raw_days=0.05))  # raw kept from 01:00 on
    with open_readonly(path) as con:
        oldest = con.execute("SELECT min(ts) FROM histogram_buckets").fetchall()[0][0]
        assert oldest == datetime(2026, 1, 1, 1, 0)
        hist = store.histogram_deltas(con, TTFT, {}, START, datetime(2026, 1, 1, 3))
        outcomes = store.outcome_deltas(con, {}, START, datetime(2026, 1, 1, 3))
    c = counts_in(latency_events(hist, 1.0), START, datetime(2026, 1, 1, 3))
    assert (c.total, c.bad) == (170, 170 - 51)  # 17 intervals of +10 requests, +3 under 1 s
    a = counts_in(availability_events(outcomes, ["error"]), START, datetime(2026, 1, 1, 3))
    assert (a.total, a.bad) == (170, 17)


def test_report_rows_from_store(db: Path) -> None:
    """The report computes each SLO on its own: values, no-data and errors side by side."""
    spec = """
version: gpufleet/v1
window: 1h
services:
  - service: chat
    objectives:
      - {name: availability, sli: availability, target: 99}
      - {name: ttft-500ms, sli: latency, metric: ttft, threshold: 500ms, target: 90}
      - {name: ttft-5s, sli: latency, metric: ttft, threshold: 5s, target: 90}
      - {name: ttft-bogus, sli: latency, metric: time_to_last_byte, threshold: 1s, target: 90}
  - service: ghost
    objectives:
      - {name: availability, sli: availability, target: 99}
"""
    problems: list = []
    specs = parse_specs(spec, "inline.yaml", problems=problems)
    assert [p.slo for p in problems] == ["chat/ttft-bogus"]
    with open_readonly(db) as con:
        rows = {r.slo: r for r in slo_report(con, specs, end=END, problems=problems)}
    avail = rows["chat/availability"]
    assert avail.budget is not None and avail.budget.counts.total == 79
    assert avail.budget.burn_rate == pytest.approx((4 / 79) / 0.01)
    assert avail.status == "page"  # 5 % errors burn 5x the budget in the last 5 minutes and hour
    ttft = rows["chat/ttft-500ms"]
    assert ttft.budget is not None and ttft.budget.sli == pytest.approx(45 / 70)
    assert rows["chat/ttft-5s"].status == "error"
    assert "beyond the highest finite bucket (le=1)" in rows["chat/ttft-5s"].message
    assert rows["chat/ttft-bogus"].status == "error"
    assert "unknown latency metric 'time_to_last_byte'" in rows["chat/ttft-bogus"].message
    assert rows["ghost/availability"].status == "no data"
    assert rows["ghost/availability"].budget is None
    assert "no gpufleet_serving_requests_total series match {'service': 'ghost'}" in rows["ghost/availability"].message
