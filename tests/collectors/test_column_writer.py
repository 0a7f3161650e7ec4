"""Replayed scrapes through ColumnWriter land exactly what full parses through StoreWriter land.

Two simulated targets (a GPU node and a vLLM engine) plus a small hand-made target whose
counter resets, whose histogram resets, whose XID counter moves, which grows a series for a
while and comes back, and which re-sends a landed scrape and an out-of-order one. One store is
written the plain way (parse, normalise, :class:`StoreWriter`), the other the engine's way
(replay from the target's plan where it fits, else parse and build a plan; :class:`ColumnWriter`),
in flushes of varying size, some holding two scrapes of one target; every table must match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from gpufleet.collectors.column_writer import ColumnWriter
from gpufleet.collectors.exposition import parse
from gpufleet.collectors.normalize import Trace, normalize
from gpufleet.collectors.repeat import Plan, ReplayBatch, build_plan, replay
from gpufleet.collectors.target import Target
from gpufleet.core.simfleet import FleetConfig, SimulatedFleet
from gpufleet.core.store import Batch, StoreWriter

from .conftest import STORE_TABLES, dump_store

_Stores = tuple[dict[str, Any], dict[str, Any], "_Engine", Path, float]

TABLES = {**STORE_TABLES, "gpus": "SELECT gpu_uuid, node, epoch_us(first_ts), epoch_us(last_ts) FROM gpus"}

# (requests counter, xid counter, histogram buckets le=0.1/1/+Inf, extra series?) per scrape
HAND = [(10, 0, (1, 2, 3), False), (15, 0, (2, 4, 5), False), (4, 1, (3, 5, 6), False),  # counter reset
        (9, 1, (1, 6, 7), False), (12, 3, (2, 7, 9), True), (20, 3, (3, 8, 10), True),  # histogram reset, grows
        (25, 4, (4, 9, 11), False), (30, 4, (5, 10, 12), False)]


def _hand(step: int) -> str:
    req, xid, (b1, b2, b3), extra = HAND[step]
    return ("# TYPE demo_requests_total counter\n"
            f'demo_requests_total{{code="200"}} {req}\n'
            + (f'demo_requests_total{{code="500"}} {step}\n' if extra else "")
            + "# TYPE gpufleet_gpu_xid_errors_total counter\n"
            f'gpufleet_gpu_xid_errors_total{{gpu_uuid="GPU-h1",node="h1",xid="79"}} {xid}\n'
            "# TYPE demo_latency_seconds histogram\n"
            f'demo_latency_seconds_bucket{{le="0.1"}} {b1}\ndemo_latency_seconds_bucket{{le="1"}} {b2}\n'
            f'demo_latency_seconds_bucket{{le="+Inf"}} {b3}\ndemo_latency_seconds_sum {b3 * 0.5}\n'
            f"demo_latency_seconds_count {b3}\n# TYPE demo_temp_celsius gauge\ndemo_temp_celsius {40 + step}\n")


def _scrapes() -> list[list[tuple[Target, float, str]]]:
    """Flushes of (target, time, body); the last flushes re-send a landed scrape and an old one."""
    fleet = SimulatedFleet(FleetConfig(nodes=2, seed=5))
    sims = [next(t for t in fleet.targets() if t.kind == kind) for kind in ("node", "engine")]
    hand = Target("hand:9100", {"job": "hand"})
    t0 = fleet.cfg.start + 10 * 3600
    flushes: list[list[tuple[Target, float, str]]] = []
    sizes = [1, 2, 1, 2, 1, 1]  # scrape rounds per flush: some flushes hold two scrapes of a target
    step = 0
    for size in sizes:
        flush = []
        for _ in range(size):
            t = t0 + 15 * step
            fleet.advance(t)
            flush += [(Target(s.name, {"job": s.kind}), t, fleet.render(s)) for s in sims]
            flush.append((hand, t + 0.5, _hand(step)))
            step += 1
        flushes.append(flush)
    flushes.append([flushes[-1][0], (hand, t0 + 15 * 2 + 0.25, _hand(7))])  # landed again; out of order
    return flushes


def _plain(target: Target, ts: float, text: str) -> Batch:
    return normalize(parse(text), target, ts, interval_hint_s=15.0)


class _Engine:
    """The engine's road from body to batch: replay from the plan, else parse and build one."""

    def __init__(self) -> None:
        self.plans: dict[str, Plan] = {}
        self.replayed = 0

    def batch(self, target: Target, ts: float, text: str) -> Batch:
        plan = self.plans.get(target.name)
        if plan is not None:
            replayed = replay(plan, text, target.name, ts, 15.0)
            if replayed is not None:
                self.replayed += 1
                if self.replayed % 4 == 0:  # rows read: the writer must take the per-sample road for it
                    assert len(replayed.counters) == len(plan.counter_sids) and not replayed.untouched
                return replayed
        result = parse(text)
        trace = Trace()
        batch = normalize(result, target, ts, interval_hint_s=15.0, trace=trace)
        new_plan = build_plan(text, result, batch, trace)
        if new_plan is not None:
            self.plans[target.name] = new_plan
        else:
            self.plans.pop(target.name, None)
        return batch


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], _Engine, Path]:
    tmp = tmp_path_factory.mktemp("column_writer")
    flushes = _scrapes()
    with StoreWriter(tmp / "plain.duckdb") as plain:
        for flush in flushes:
            plain.write([_plain(*s) for s in flush])
    engine = _Engine()
    column_rows = 0
    with ColumnWriter(tmp / "column.duckdb") as writer:
        for flush in flushes:
            batches = [engine.batch(*s) for s in flush]
            column_rows += sum(len(b.state_values) for b in batches if isinstance(b, ReplayBatch) and b.untouched)
            writer.write(batches)
        assert writer._columns, "no target kept its state as columns"
    assert column_rows > 500
    t0 = min(ts for flush in flushes for _, ts, _ in flush)
    return dump_store(tmp / "plain.duckdb", TABLES), dump_store(tmp / "column.duckdb", TABLES), engine, tmp / "column.duckdb", t0


def test_the_replayed_road_was_taken(stores: _Stores) -> None:
    engine = stores[2]
    # node and engine replay every scrape after their first; the hand target re-parses when its shape changes
    assert engine.replayed >= 2 * 9


@pytest.mark.parametrize("table", list(TABLES))
def test_every_table_matches_the_plain_road(stores: _Stores, table: str) -> None:
    plain, column = stores[0], stores[1]
    assert column[table] == plain[table]
    assert plain[table], f"{table} is empty: the comparison would prove nothing"


def _column(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_resets_and_xid_events_follow_the_rules(stores: _Stores) -> None:
    db = stores[3]
    requests = _column(db, """SELECT c.value, c.delta FROM counters c JOIN series s USING (series_id)
                              WHERE s.source_metric = 'demo_requests_total' AND s.labels->>'code' = '200'
                              ORDER BY c.ts""")
    # the first scrape of a target is its baseline; 15 -> 4 is a reset; the out-of-order re-send is rejected
    assert requests == [(10, 0), (15, 5), (4, 4), (9, 5), (12, 3), (20, 8), (25, 5), (30, 5)]
    inf_bucket = _column(db, """SELECT h.value, h.delta FROM histogram_buckets h JOIN series s USING (series_id)
                                WHERE s.source_metric = 'demo_latency_seconds' AND h.le = 'inf'::DOUBLE
                                ORDER BY h.ts""")
    # at step 3 the 0.1 bucket went 3 -> 1: the whole histogram reset, so +Inf's delta is its value
    assert inf_bucket == [(3, 0), (5, 2), (6, 1), (7, 7), (9, 2), (10, 1), (11, 1), (12, 1)]
    events = _column(db, "SELECT code, count FROM events WHERE target = 'hand:9100' ORDER BY ts")
    assert events == [(79, 1.0), (79, 2.0), (79, 1.0)]
    # the out-of-order re-send: its two counters, the histogram's _sum and _count and the histogram itself
    rejected = _column(db, "SELECT epoch_us(scrape_ts), rejected FROM batches WHERE rejected > 0")
    assert rejected == [(round((stores[4] + 30.25) * 1e6), 5)]
