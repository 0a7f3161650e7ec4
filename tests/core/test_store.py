import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from gpufleet.collectors.ingest import Scrape, ingest, ingest_file
from gpufleet.collectors.target import Target
from gpufleet.core.store import StoreError, StoreWriter, maintain, open_readonly, summary

T = Target("t:1")


def counter_rows(con, metric):
    return con.execute("""SELECT epoch(c.ts), c.value, c.delta FROM counters c JOIN series s USING (series_id)
                          WHERE s.metric = ? ORDER BY c.ts""", [metric]).fetchall()


def scrape(ts, text):
    return Scrape(T, ts, text)


def test_counter_deltas_with_reset(tmp_path):
    with StoreWriter(tmp_path / "s.duckdb") as w:
        for ts, v in [(10, 5), (20, 8), (30, 2), (40, 4)]:
            ingest(w, [scrape(ts, f"# TYPE c counter\nc_total {v}\n")])
        assert [r[2] for r in counter_rows(w.con, "c_total")] == [0.0, 3.0, 2.0, 2.0]


def test_counter_born_on_known_target_counts_from_zero(tmp_path):
    with StoreWriter(tmp_path / "s.duckdb") as w:
        ingest(w, [scrape(10, "up 1\n")])
        ingest(w, [scrape(20, "up 1\n# TYPE x counter\nx_total{xid=\"79\"} 1\n")])
        assert [r[2] for r in counter_rows(w.con, "x_total")] == [1.0]


def test_histogram_bucket_deltas_and_reset(tmp_path):
    def hist(a, b, c):
        return (f'# TYPE h histogram\nh_bucket{{le="0.1"}} {a}\nh_bucket{{le="1"}} {b}\n'
                f'h_bucket{{le="+Inf"}} {c}\nh_sum 1\nh_count {c}\n')
    with StoreWriter(tmp_path / "s.duckdb") as w:
        ingest(w, [scrape(10, hist(1, 2, 3)), scrape(20, hist(2, 5, 7)), scrape(30, hist(1, 1, 1))])
        rows = w.con.execute("SELECT epoch(ts), le, delta FROM histogram_buckets ORDER BY ts, le").fetchall()
    assert [r[2] for r in rows if r[0] == 20] == [1.0, 3.0, 4.0]
    assert [r[2] for r in rows if r[0] == 30] == [1.0, 1.0, 1.0]  # reset: counts since restart


def test_out_of_order_samples_are_rejected_with_the_series_named(tmp_path):
    with StoreWriter(tmp_path / "s.duckdb") as w:
        ingest(w, [Scrape(T, 100, "# TYPE c counter\nc_total 5 100000\n")])
        rep = ingest(w, [Scrape(T, 101, "# TYPE c counter\nc_total 7 50000\nother 1\n")])
        assert rep.landed == 1 and rep.samples == 1
        assert "c_total" in rep.rejected[0] and "out-of-order" in rep.rejected[0]


def test_same_scrape_twice_changes_nothing(tmp_path, fixtures):
    db = tmp_path / "s.duckdb"
    with StoreWriter(db) as w:
        first = ingest_file(w, fixtures / "vllm-0.4.3.prom", target="vllm")
        tables = ["series", "gauges", "counters", "histogram_buckets", "batches", "series_state"]
        before = {t: w.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
        second = ingest_file(w, fixtures / "vllm-0.4.3.prom", target="vllm")
        after = {t: w.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    assert first.landed == 1 and first.samples > 100
    assert second.landed == 0 and second.skipped == 1
    assert before == after
    # and across processes: a fresh writer knows the batch too
    with StoreWriter(db) as w:
        assert ingest_file(w, fixtures / "vllm-0.4.3.prom", target="vllm").skipped == 1


def test_killed_writer_leaves_no_partial_batch(tmp_path):
    db = tmp_path / "s.duckdb"
    script = textwrap.dedent("""
        from gpufleet.collectors.ingest import Scrape, ingest, to_batch
        from gpufleet.collectors.target import Target
        from gpufleet.core.store import StoreWriter
        body = "".join('m{i="%d"} %d\\n' % (i, i) for i in range(100_000))
        w = StoreWriter(DB)
        ingest(w, [Scrape(Target("small"), 1.0, "a 1\\n")])
        batches = [to_batch(Scrape(Target("big"), float(i), body)) for i in range(2, 22)]
        print("writing", flush=True)
        w.write(batches)
        print("committed", flush=True)
    """).replace("DB", repr(str(db)))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.5)  # inside the big transaction
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    con = duckdb.connect(str(db))
    batches = con.execute("SELECT target, count(*) FROM batches GROUP BY target ORDER BY target").fetchall()
    samples = con.execute("SELECT count(*) FROM gauges").fetchone()[0]
    big = dict(batches).get("big", 0)
    assert dict(batches)["small"] == 1
    assert big in (0, 20) and samples == 1 + big * 100_000  # the whole transaction or nothing
    con.close()
    with StoreWriter(db) as w:  # restart resumes: the batch that died lands now
        rep = ingest(w, [Scrape(Target("small"), 1.0, "a 1\n"), Scrape(Target("big"), 2.0, "m 1\n")])
        assert rep.skipped == 1 + (1 if big else 0)


def test_rollups_and_retention(tmp_path):
    with StoreWriter(tmp_path / "s.duckdb") as w:
        base = 1_700_000_000 // 3600 * 3600
        scrapes = [scrape(base + i * 30, f"g {i}\n# TYPE c counter\nc_total {i * 2}\n") for i in range(240)]
        ingest(w, scrapes)
        maintain(w.con)
        g1m = w.con.execute("SELECT count, sum, min, max, last FROM gauges_1m ORDER BY ts LIMIT 1").fetchone()
        assert g1m == (2, 1.0, 0.0, 1.0, 1.0)
        hours = w.con.execute("SELECT epoch(ts), delta FROM counters_1h ORDER BY ts").fetchall()
        assert [h[1] for h in hours] == [238.0, 240.0]
        # late data for the first hour reaches the rollups on the next run
        ingest(w, [Scrape(Target("late"), base + 5, "g 100\n")])
        maintain(w.con)
        assert w.con.execute("SELECT count(*) FROM gauges_1h WHERE max = 100").fetchone()[0] == 1
        # retention counts back from the newest sample
        from gpufleet.core.store import Retention
        maintain(w.con, Retention(raw_days=1 / 48))  # 30 min back from the newest, cut on the hour
        oldest, n = w.con.execute("SELECT min(epoch(ts)), count(*) FROM gauges").fetchone()
        assert oldest == base + 3600 and n == 120
        assert w.con.execute("SELECT count(*) FROM gauges_1h WHERE max = 100").fetchone()[0] == 1  # rollup kept


def test_read_only_open_of_a_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_readonly(tmp_path / "nope.duckdb")


def test_summary_of_empty_store(tmp_path):
    StoreWriter(tmp_path / "s.duckdb").close()
    with open_readonly(tmp_path / "s.duckdb") as con:
        s = summary(con)
    assert s["gpus"] == 0 and s["samples"] == 0 and s["start"] is None


def test_late_data_does_not_erase_rollups_of_dropped_raw(tmp_path):
    from gpufleet.core.store import Retention
    with StoreWriter(tmp_path / "s.duckdb") as w:
        base = 1_700_000_000 // 3600 * 3600
        ingest(w, [scrape(base + h * 3600, f"g {h}\n") for h in range(48)])
        maintain(w.con, Retention(raw_days=1))
        hours_before = w.con.execute("SELECT count(*) FROM gauges_1h").fetchone()[0]
        assert hours_before == 48
        assert w.con.execute("SELECT count(*) FROM gauges").fetchone()[0] <= 25  # raw cut on an hour
        ingest(w, [Scrape(Target("late"), base + 600, "g 7\n")])  # far behind the raw horizon
        maintain(w.con, Retention(raw_days=1))
        rows = w.con.execute("SELECT count(*) FROM gauges_1h").fetchone()[0]
        assert rows == 49  # every old bucket kept, plus the late target's
