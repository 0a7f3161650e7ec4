"""The app's process-wide memo: one computation per key across threads, eviction, and the memoized source."""

import datetime as dt
import threading
import time

import pytest
from polars.testing import assert_frame_equal

from gpufleet.analytics.cost.pricing import load_catalog
from gpufleet.analytics.cost.query import DuckDBSource
from gpufleet.analytics.cost.report import cost_report, utilization_report
from gpufleet.core.store import open_readonly
from gpufleet.dashboards.memo import Memo, MemoSource


def test_one_computation_per_key_across_threads() -> None:
    memo = Memo()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.05)
        return 42

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(memo.get("k", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [42] * 8 and len(calls) == 1
    assert memo.misses == 1 and memo.hits == 7


def test_eviction_and_drop() -> None:
    memo = Memo(max_entries=2)
    for k in ("a", "b", "c"):
        memo.get(k, lambda k=k: k.upper())
    assert "a" not in memo and "b" in memo and "c" in memo
    memo.get("b", lambda: "unused")  # b is now the most recent
    memo.get("d", lambda: "D")
    assert "c" not in memo and "b" in memo
    assert memo.drop(lambda k: k in ("b", "x")) == 1 and "b" not in memo


def test_a_failed_computation_is_not_cached() -> None:
    memo = Memo()

    def boom() -> int:
        raise ValueError("no data")

    with pytest.raises(ValueError, match="no data"):
        memo.get("k", boom)
    assert memo.get("k", lambda: 1) == 1


def test_memo_source_gives_the_store_numbers_once(demo_store) -> None:
    memo = Memo()
    src = MemoSource(str(demo_store), 1.0, memo)
    w = dt.timedelta(days=2)
    con = open_readonly(demo_store)
    try:
        direct = DuckDBSource(con)
        assert src.window(w) == direct.window(w)
        # the same rows; float sums may differ in the last bits with the order polars groups them in
        assert_frame_equal(src.allocations(src.window(w)), direct.allocations(direct.window(w)),
                           check_row_order=False)
        assert_frame_equal(cost_report(src, load_catalog(), w, "team"), cost_report(direct, load_catalog(), w, "team"),
                           check_row_order=False)
        assert_frame_equal(utilization_report(src, w, "namespace"), utilization_report(direct, w, "namespace"),
                           check_row_order=False)
        # the app's narrower activity query returns the same frame as the cost source's
        uw = direct.window(w)
        assert src.utilization(uw).height > 0
        assert_frame_equal(src.utilization(uw), direct.utilization(uw), check_row_order=False)
    finally:
        con.close()
    before = memo.misses
    cost_report(src, load_catalog(), w, "namespace")
    assert memo.misses == before  # every frame came from the memo
    # a new store version is a new key
    assert MemoSource(str(demo_store), 2.0, memo).window(w) == src.window(w) and memo.misses == before + 1
