"""Per-interval good/bad events from bucket and outcome deltas, against hand-computed values."""

import math
from datetime import datetime

import polars as pl
import pytest

from gpufleet.analytics.slo.events import availability_events, latency_events
from gpufleet.analytics.slo.sli import SliError

T1 = datetime(2026, 1, 1, 0, 5)
T2 = datetime(2026, 1, 1, 0, 10)
INF = math.inf


def _hist(rows: list[tuple[int, datetime, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"series_id": pl.Int64, "ts": pl.Datetime("us"), "le": pl.Float64,
                                      "delta": pl.Float64}, orient="row")


# Series 1: buckets 0.1/0.5/1/+Inf with cumulative deltas 10/60/90/100 at T1 and 0/20/20/40 at T2.
# Series 2 (another engine's layout): 0.25/1/+Inf with 5/15/20 at T1.
HIST = _hist([
    (1, T1, 0.1, 10), (1, T1, 0.5, 60), (1, T1, 1.0, 90), (1, T1, INF, 100),
    (1, T2, 0.1, 0), (1, T2, 0.5, 20), (1, T2, 1.0, 20), (1, T2, INF, 40),
    (2, T1, 0.25, 5), (2, T1, 1.0, 15), (2, T1, INF, 20),
])


@pytest.mark.parametrize(
    ("threshold", "t1", "t2"),
    [
        # (bad, bad_min, bad_max) at T1 (both series) and T2 (series 1 only)
        # 0.5: series 1 exact (100-60); series 2 inside (0.25, 1]: good 5 + 10*(0.25/0.75) -> bad 20 - 8.333
        (0.5, (40 + 20 - 5 - 10 / 3, 40 + 5, 40 + 15), (20, 20, 20)),
        # 1.0: a boundary in both layouts, exact everywhere
        (1.0, (10 + 5, 10 + 5, 10 + 5), (20, 20, 20)),
        # 0.3: series 1 inside (0.1, 0.5]: good 10 + 50*0.5 = 35; series 2 inside (0.25, 1]: good 5 + 10/15
        (0.3, (65 + 20 - 5 - 10 * 0.05 / 0.75, 40 + 5, 90 + 15), (40 - 0 - 20 * 0.5, 20, 40)),
        # 0.05: series 1 below its first bucket, interpolated from 0: good 5; series 2 good 5 * 0.2 = 1
        (0.05, (95 + 19, 90 + 15, 100 + 20), (40, 40, 40)),
    ],
)
def test_latency_events_table(threshold: float, t1: tuple[float, float, float], t2: tuple[float, float, float]) -> None:
    """Each series interpolated in its own layout; bounds are the straddling buckets' edges."""
    ev = latency_events(HIST, threshold).sort("ts")
    assert ev["ts"].to_list() == [T1, T2]
    assert ev["total"].to_list() == [120.0, 40.0]
    for row, (bad, lo, hi) in zip(ev.iter_rows(named=True), (t1, t2), strict=True):
        assert row["bad"] == pytest.approx(bad)
        assert row["bad_min"] == pytest.approx(lo)
        assert row["bad_max"] == pytest.approx(hi)


def test_window_sum_equals_summed_histogram() -> None:
    """Interpolation is linear, so summing per-interval estimates equals interpolating the summed buckets."""
    ev = latency_events(HIST.filter(pl.col("series_id") == 1), 0.3)
    # summed series 1: 10/80/110/140 -> good 10 + 70*0.5 = 45, bad 95; bounds 140-80 .. 140-10
    assert ev["bad"].sum() == pytest.approx(95)
    assert ev["bad_min"].sum() == pytest.approx(60)
    assert ev["bad_max"].sum() == pytest.approx(130)


@pytest.mark.parametrize(
    ("frame", "threshold", "match"),
    [
        (HIST, 2.0, r"beyond the highest finite bucket \(le=1\)"),
        (HIST, 0.0, "positive"),
        (HIST, -1.0, "positive"),
        (_hist([(1, T1, 0.5, 3), (1, T1, 1.0, 4)]), 0.7, r"no le=\+Inf"),
    ],
)
def test_latency_events_errors(frame: pl.DataFrame, threshold: float, match: str) -> None:
    """Thresholds past the top bucket, non-positive thresholds and missing totals are named errors."""
    with pytest.raises(SliError, match=match):
        latency_events(frame, threshold, "ttft")


def test_latency_events_empty() -> None:
    """No deltas: no events (the window is no-data, not 0 % or 100 %)."""
    assert latency_events(HIST.head(0), 0.5).is_empty()


def _outcomes(rows: list[tuple[int, datetime, str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"series_id": pl.Int64, "ts": pl.Datetime("us"), "engine": pl.Utf8,
                                      "outcome": pl.Utf8, "delta": pl.Float64}, orient="row")


OUTCOMES = _outcomes([
    (1, T1, "vllm", "stop", 90), (2, T1, "vllm", "length", 5), (3, T1, "vllm", "abort", 3),
    (4, T1, "vllm", "error", 2),
    (5, T1, "sglang", "finished", 50), (6, T1, "sglang", "abort", 4),
    (7, T1, "tgi", "success", 28), (8, T1, "tgi", "error", 2),
])


@pytest.mark.parametrize(
    ("engine", "bad_outcomes", "total", "bad"),
    [
        ("vllm", ["error"], 100, 2),
        ("vllm", ["error", "abort"], 100, 5),
        ("sglang", ["error"], 50, 4),  # no outcome split: every abort counts, out of finished requests
        ("tgi", ["error"], 30, 2),
        ("tgi", ["abort"], 30, 0),
        (None, ["error"], 180, 8),  # all engines together
    ],
)
def test_availability_events_table(engine: str | None, bad_outcomes: list[str], total: float, bad: float) -> None:
    """Split outcomes sum to the total; SGLang's finished counter is the total and its aborts are bad."""
    frame = OUTCOMES if engine is None else OUTCOMES.filter(pl.col("engine") == engine)
    ev = availability_events(frame, bad_outcomes)
    assert ev.height == 1
    row = ev.row(0, named=True)
    assert (row["total"], row["bad"], row["bad_min"], row["bad_max"]) == (total, bad, bad, bad)


def test_layout_change_within_a_series() -> None:
    """A bucket added mid-window (an engine upgrade) is used only where it exists."""
    frame = _hist([(1, T1, 0.5, 6), (1, T1, INF, 10),
                   (1, T2, 0.25, 2), (1, T2, 0.5, 5), (1, T2, INF, 8)])
    ev = latency_events(frame, 0.4).sort("ts")
    # T1: (0, 0.5] holds 6 -> good 6 x 0.8 = 4.8; T2: (0.25, 0.5] -> good 2 + 3 x 0.6 = 3.8
    assert ev["bad"].to_list() == pytest.approx([10 - 4.8, 8 - 3.8])
    assert ev["bad_min"].to_list() == pytest.approx([4, 3])
    assert ev["bad_max"].to_list() == pytest.approx([10, 6])
