import datetime as dt

import polars as pl
import pytest

from gpufleet.dashboards.shaping import bin_every, first_rows, formatted, live_table, xid_nodes, xid_timeline

T0 = dt.datetime(2026, 1, 1)


@pytest.mark.parametrize(("hours", "every"), [
    (6, "1h"), (100, "1h"), (101, "6h"), (600, "6h"), (601, "1d"), (24 * 90, "1d"),
])
def test_bin_every_keeps_at_most_100_bins(hours, every):
    assert bin_every(T0, T0 + dt.timedelta(hours=hours)) == every


def events() -> pl.DataFrame:
    return pl.DataFrame({
        "ts": [T0 + dt.timedelta(minutes=m) for m in (10, 50, 70, 130, 140)],
        "cluster": ["a", "a", "a", "b", "b"],
        "node": ["n1", "n2", "n1", "n3", "n3"],
        "severity": ["critical", "warning", "critical", "application", "application"],
        "count": [1.0, 2.0, 1.0, 3.0, 4.0],
    })


def test_xid_timeline_sums_counts_per_bin_and_severity():
    line = xid_timeline(events(), "1h")
    assert line.rows() == [
        (T0, "critical", 1.0), (T0, "warning", 2.0),
        (T0 + dt.timedelta(hours=1), "critical", 1.0),
        (T0 + dt.timedelta(hours=2), "application", 7.0),
    ]


def test_xid_timeline_of_no_events_is_empty_with_its_columns():
    line = xid_timeline(events().clear(), "1h")
    assert line.height == 0 and line.columns == ["ts", "severity", "events"]


def test_xid_nodes_puts_the_most_critical_node_first():
    nodes = xid_nodes(events())
    assert nodes["node"].to_list() == ["n1", "n3", "n2"]
    assert nodes.row(0, named=True) == {"cluster": "a", "node": "n1", "critical": 2.0, "warning": 0.0,
                                        "application": 0.0, "total": 2.0, "last_ts": T0 + dt.timedelta(minutes=70)}
    assert nodes.filter(pl.col("node") == "n3")["total"].item() == 7.0


def test_xid_nodes_of_no_events_is_empty_with_its_columns():
    nodes = xid_nodes(events().clear())
    assert nodes.height == 0
    assert nodes.columns == ["cluster", "node", "critical", "warning", "application", "total", "last_ts"]


def test_first_rows_says_how_many_of_how_many():
    frame = pl.DataFrame({"x": range(1500)})
    shown, note = first_rows(frame, 100)
    assert shown["x"].to_list() == list(range(100))
    assert note == "Showing 100 of 1,500 rows."
    assert first_rows(frame, 1500) == (frame, None)


def test_live_table_lists_the_least_healthy_first_with_memory_in_gib():
    gpus = pl.DataFrame({
        "state": ["healthy", "lost", "warning", "critical", "healthy"],
        "node": ["n2", "n9", "n1", "n5", "n1"],
        "gpu_index": [0, 3, 1, 2, 7],
        "memory_used_bytes": [2 * 2**30, 0, 2**29, 3 * 2**30, 2**30],
        "extra": [1, 2, 3, 4, 5],
    })
    live = live_table(gpus)
    assert live.columns == ["state", "node", "gpu_index", "memory_used_gib"]
    assert live["state"].to_list() == ["lost", "critical", "warning", "healthy", "healthy"]
    assert live["node"].to_list() == ["n9", "n5", "n1", "n1", "n2"]
    assert live["memory_used_gib"].to_list() == [0.0, 3.0, 0.5, 1.0, 2.0]


def test_formatted_writes_the_named_columns_as_text_and_keeps_nulls():
    frame = pl.DataFrame({"share": [0.5, None], "usd": [1234.5, 2.0], "n": [1, 2]})
    out = formatted(frame, {"share": "{:.0%}", "usd": "${:,.2f}", "missing": "{}"})
    assert out.rows() == [("50%", "$1,234.50", "1"), (None, "$2.00", "2")]
    assert formatted(pl.DataFrame({"team": ["ml"]}), {}).rows() == [("ml",)]


def test_formatted_writes_other_numbers_to_three_digits_and_flags_as_yes_no():
    frame = pl.DataFrame({"p50_s": [9.580368670649193, 0.03772242, None], "n": [1234567, 0, None],
                          "met": [True, False, None]})
    assert formatted(frame, {}).rows() == [("9.58", "1,234,567", "yes"), ("0.0377", "0", "no"), (None, None, None)]


def test_formatted_writes_timestamps_to_the_minute_unless_told_otherwise():
    frame = pl.DataFrame({"ts": [T0], "last": [T0]})
    assert formatted(frame, {"last": "{:%d %b}"}).rows() == [("2026-01-01 00:00", "01 Jan")]
