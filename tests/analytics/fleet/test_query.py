from datetime import datetime, timedelta

import pytest

from gpufleet.analytics.fleet import load_snapshot, store_range
from gpufleet.core.store import open_readonly


@pytest.fixture
def con(demo_store):
    c = open_readonly(demo_store)
    yield c
    c.close()


def test_store_range_is_the_scrape_range(con):
    first, last = store_range(con)
    assert last == datetime(2026, 1, 8)
    assert first == datetime(2026, 1, 6, 0, 10)


def test_snapshot_counts_every_gpu_once(con):
    first, last = store_range(con)
    snap = load_snapshot(con, first, last)
    assert snap.gpus.height == 32
    assert snap.gpus["gpu_uuid"].n_unique() == 32
    assert sum(snap.state_counts.values()) == 32
    assert snap.by_model_state["total"].sum() == 32
    per_model = dict(con.execute("SELECT gpu_model, count(*) FROM gpus GROUP BY 1").fetchall())
    assert dict(zip(snap.by_model_state["gpu_model"], snap.by_model_state["total"], strict=True)) == per_model


def test_xids_match_the_events_table(con):
    first, last = store_range(con)
    snap = load_snapshot(con, first, last)
    rows = con.execute("SELECT code, sum(count) FROM events WHERE kind = 'xid' GROUP BY 1").fetchall()
    assert dict(zip(snap.xids["code"], snap.xids["events"], strict=True)) == {int(c): n for c, n in rows}


def test_gpu_that_fell_off_the_bus_is_lost_while_it_is_down(con):
    first, last = store_range(con)
    ts, uuid = con.execute("SELECT ts, gpu_uuid FROM events WHERE code = 79 ORDER BY ts LIMIT 1").fetchall()[0]
    down = con.execute("""SELECT min(g.ts) FROM gauges g JOIN series s USING (series_id)
                          WHERE s.metric = 'gpufleet_gpu_up' AND g.value = 0 AND s.labels->>'gpu_uuid' = ?""",
                       [uuid]).fetchall()[0][0]
    snap = load_snapshot(con, first, down)
    assert snap.lost["gpu_uuid"].to_list() == [uuid]
    assert snap.state_counts["lost"] == 1
    before = load_snapshot(con, first, ts - timedelta(minutes=30))
    assert uuid not in before.lost["gpu_uuid"].to_list()


def test_filters_narrow_the_fleet(con):
    first, last = store_range(con)
    cluster = con.execute("SELECT cluster FROM gpus GROUP BY 1 ORDER BY 1 LIMIT 1").fetchall()[0][0]
    n = con.execute("SELECT count(*) FROM gpus WHERE cluster = ?", [cluster]).fetchall()[0][0]
    snap = load_snapshot(con, first, last, cluster=cluster)
    assert snap.gpus.height == n
    assert set(snap.gpus["cluster"]) == {cluster}
    assert set(snap.events["cluster"]) <= {cluster}
    held = load_snapshot(con, first, last, team="research")
    assert held.gpus.height > 0
    assert all("research" in t.split(", ") for t in held.gpus["team"])
    assert load_snapshot(con, first, last, gpu_model="no such GPU").gpus.height == 0


def test_end_before_start_is_an_error(con):
    first, last = store_range(con)
    with pytest.raises(ValueError, match="before start"):
        load_snapshot(con, last, first)
