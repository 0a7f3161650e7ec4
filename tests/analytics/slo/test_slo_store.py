"""SLO inputs read back from a real DuckDB store written through the ingest path, counter resets included."""

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from gpufleet.analytics.slo import store
from gpufleet.analytics.slo.events import availability_events, latency_events
from gpufleet.analytics.slo.goodput_column import goodput_column, window_histogram
from gpufleet.analytics.slo.report import slo_report
from gpufleet.analytics.slo.spec import parse_specs
from gpufleet.analytics.slo.windows import counts_in
from gpufleet.collectors.ingest import Scrape, to_batch
from gpufleet.collectors.target import Target
from gpufleet.core.store import Retention, StoreWriter, open_readonly

TTFT = "gpufleet_serving_time_to_first_token_seconds"
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


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


def test_window_reaching_into_hourly_rollups(tmp_path: Path, land: Any) -> None:
    """Past raw retention the reader takes the hourly rollup, so a long window still sees every request."""
    path = tmp_path / "rollup.duckdb"
    scrapes = [(600.0 * i, (i, 2 * i, 3 * i, 10 * i), 9 * i, i) for i in range(1, 19)]  # 00:10 .. 03:00
    land(path, scrapes, "chat", Retention(raw_days=0.05))  # raw kept from 01:00 on
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
---
version: prometheus/v1
service: api
slos:
  - name: http-errors
    objective: 99.9
    sli:
      raw:
        error_ratio_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}])) / sum(rate(http_requests_total[{{.window}}]))
"""
    problems: list = []
    specs = parse_specs(spec, "inline.yaml", problems=problems)
    assert [p.slo for p in problems] == ["chat/ttft-bogus"]
    with open_readonly(db) as con:
        rows = {r.slo: r for r in slo_report(con, specs, end=END, problems=problems,
                                             goodput=goodput_column(con, specs))}
        early = {r.slo: r for r in slo_report(con, specs, end=datetime(2025, 12, 31, 23))}
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
    assert rows["api/http-errors"].status == "error" and "PromQL-only" in rows["api/http-errors"].message
    # goodput beside the latency SLO: 45 of 70 requests under 0.5 s over 4 one-minute stamps
    good = ttft.goodput
    assert good is not None and good["covered_s"] == 240
    assert good["rps"] == pytest.approx(45 / 240) and good["request_rps"] == pytest.approx(70 / 240)
    assert good["rps_min"] == pytest.approx(45 / 240) and good["rps_max"] == pytest.approx(45 / 240)
    assert rows["chat/ttft-5s"].goodput is None and rows["chat/availability"].goodput is None
    # before the first scrape: series exist but the window is empty -> no data, not 0 % or 100 %
    assert early["chat/availability"].status == "no data"
    assert early["chat/availability"].budget is not None and early["chat/availability"].budget.sli is None
    assert "no requests in the 1h window" in early["chat/availability"].message
    assert early["chat/ttft-500ms"].to_dict()["sli_value"] is None


def test_goodput_histogram_needs_one_layout() -> None:
    """Summing histograms of different bucket layouts is refused with the fix named."""
    frame = pl.DataFrame({"series_id": [1, 1, 2, 2], "ts": [START] * 4, "le": [0.5, math.inf, 1.0, math.inf],
                          "delta": [1.0, 2.0, 1.0, 2.0]})
    with pytest.raises(ValueError, match="different bucket layouts; narrow the selector"):
        window_histogram(frame)
    bounds, counts, covered = window_histogram(frame.filter(pl.col("series_id") == 1)) or ([], [], 0.0)
    assert (bounds, counts, covered) == ([0.5, math.inf], [1.0, 2.0], 0.0)


def test_sglang_availability_through_ingest(tmp_path: Path) -> None:
    """SGLang has no outcome split: finished requests are the total, every aborted one is bad."""
    path = tmp_path / "sglang.duckdb"
    target = Target("sg-0:30000", {"service": "sg"})
    lab = 'engine_type="unified",model_name="m",tp_rank="0"'

    def page(finished: int, aborted: int) -> str:
        return ("# TYPE sglang:num_running_reqs gauge\n"
                f"sglang:num_running_reqs{{{lab}}} 1\n"
                "# TYPE sglang:num_requests_total counter\n"
                f"sglang:num_requests_total{{{lab}}} {finished}\n"
                "# TYPE sglang:num_aborted_requests_total counter\n"
                f"sglang:num_aborted_requests_total{{{lab}}} {aborted}\n")

    with StoreWriter(path) as w:
        for off, finished, aborted in ((60, 1000, 10), (120, 1200, 13), (180, 50, 1), (240, 250, 9)):  # restart
            w.write([to_batch(Scrape(target, T0 + off, page(finished, aborted), 60.0))])
    with open_readonly(path) as con:
        frame = store.outcome_deltas(con, {"service": "sg", "engine": "sglang"}, START, END)
    c = counts_in(availability_events(frame, ["error"]), START, END)
    assert (c.total, c.bad) == (200 + 50 + 200, 3 + 1 + 8)
