"""The single writer of the store: idempotent, transactional batch appends.

Counters become deltas here (the only place that remembers each series' last value), with
Prometheus' reset rule: a value below the previous one means the counter restarted from 0.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from gpufleet.core.naming import xid_info
from gpufleet.core.store.batch import Batch, SeriesDef
from gpufleet.core.store.schema import DDL, SCHEMA_VERSION

__all__ = ["StoreWriter", "WriteReport", "StoreError", "SCALAR"]

SCALAR = -math.inf  # the ``le`` key of a plain counter in series_state
MAX_INTERVAL_S = 300.0  # Prometheus' staleness window: a longer gap is not GPU time


class StoreError(RuntimeError):
    """The store cannot be opened or written."""


@dataclass
class WriteReport:
    """What a call to :meth:`StoreWriter.write` did."""

    landed: int = 0
    skipped: int = 0
    samples: int = 0
    rejected: list[str] = field(default_factory=list)

    def merge(self, other: WriteReport) -> None:
        self.landed += other.landed
        self.skipped += other.skipped
        self.samples += other.samples
        self.rejected.extend(other.rejected)


def _ts(values: Sequence[float]) -> pa.Array:
    micros = (np.asarray(values, dtype=np.float64) * 1e6).round().astype(np.int64)
    return pa.array(micros, type=pa.timestamp("us"))


def connect(path: str | Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the store, turning DuckDB's lock and version errors into one clear message."""
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise StoreError(f"cannot open store {path}: {exc}") from exc


class StoreWriter:
    """Owns the read-write connection. Use one per store file, from one thread."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self.con = connect(self.path, read_only=False)
        self.con.execute(DDL)
        self._check_version()
        self._state: dict[tuple[int, float], tuple[float, float]] = {
            (sid, le): (ts, value)
            for sid, le, ts, value in self.con.execute(
                "SELECT series_id, le, epoch_us(ts) / 1e6, value FROM series_state").fetchall()
        }
        self._known_series: set[int] = {r[0] for r in self.con.execute("SELECT series_id FROM series").fetchall()}
        # Definitions seen by this writer: a batch may omit a series it already sent.
        self._defs: dict[int, SeriesDef] = {}
        self._target_last: dict[str, float] = dict(self.con.execute(
            "SELECT target, epoch_us(max(scrape_ts)) / 1e6 FROM batches GROUP BY target").fetchall())

    def _check_version(self) -> None:
        row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            self.con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreError(f"store {self.path} has schema version {row[0]}; this gpufleet reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the write path ---------------------------------------------------------------------------

    def write(self, batches: Iterable[Batch]) -> WriteReport:
        """Append batches in one transaction. A batch already landed (same target and scrape time) is skipped."""
        batches = list(batches)
        report = WriteReport()
        if not batches:
            return report
        landed_keys = self._landed_keys(batches)
        todo: list[Batch] = []
        seen: set[tuple[str, int]] = set()
        for b in batches:
            key = (b.target, round(b.scrape_ts * 1e6))
            if key in landed_keys or key in seen:
                report.skipped += 1
                continue
            seen.add(key)
            todo.append(b)
        if not todo:
            return report
        todo.sort(key=lambda b: b.scrape_ts)
        rows = self._new_rows()
        new_state = self._new_state()
        target_last = dict(self._target_last)
        new_series: dict[int, SeriesDef] = {}
        for b in todo:
            known_target = b.target in target_last
            if not self._defs.keys() >= b.series.keys():  # a repeat scrape sends the same series again
                self._defs.update(b.series)
            if not self._known_series.issuperset(b.series):
                for sid, sdef in b.series.items():
                    if sid not in self._known_series and sid not in new_series:
                        new_series[sid] = sdef
            accepted = self._deltas(b, known_target, new_state, rows, report)
            prev = target_last.get(b.target)
            # A gap longer than the staleness window (or twice the target's own interval) is a gap.
            cap = max(MAX_INTERVAL_S, 2 * b.interval_hint_s)
            interval = min(b.scrape_ts - prev, cap) if prev is not None else b.interval_hint_s
            target_last[b.target] = max(b.scrape_ts, prev or b.scrape_ts)
            rows.add_dimensions(b, max(interval, 0.0))
            rows.batches.append((b.target, b.scrape_ts, accepted, len(b.rejected) + rows.rejected_in_batch))
            report.rejected.extend(f"{b.target}: {r}" for r in b.rejected)
            report.samples += accepted
            report.landed += 1
        self._before_insert(new_state)
        try:
            self.con.begin()
            self._insert(rows, new_series, new_state)
            self.con.commit()
        except Exception:
            self.con.rollback()
            raise
        self._committed(new_state)
        self._known_series.update(new_series)
        self._target_last = target_last
        return report

    # -- hooks for a writer that keeps some state in another form (see collectors.column_writer) --

    def _new_rows(self) -> _Rows:
        """An empty row set for one transaction."""
        return _Rows()

    def _new_state(self) -> dict[tuple[int, float], tuple[float, float]]:
        """An empty map of the series state one transaction changes."""
        return {}

    def _before_insert(self, new_state: dict[tuple[int, float], tuple[float, float]]) -> None:
        """Last look at the transaction's state changes before they are written."""

    def _committed(self, new_state: dict[tuple[int, float], tuple[float, float]]) -> None:
        """Make a committed transaction's state changes this writer's own."""
        self._state.update(new_state)

    def _landed_keys(self, batches: list[Batch]) -> set[tuple[str, int]]:
        lo = min(b.scrape_ts for b in batches)
        hi = max(b.scrape_ts for b in batches)
        rows = self.con.execute(
            "SELECT target, epoch_us(scrape_ts) FROM batches "
            "WHERE scrape_ts BETWEEN make_timestamp(?) AND make_timestamp(?)",
            [int((lo - 1) * 1e6), int((hi + 1) * 1e6)]).fetchall()
        return {(t, int(us)) for t, us in rows}

    def _deltas(self, b: Batch, known_target: bool, new_state: dict[tuple[int, float], tuple[float, float]],
                rows: _Rows, report: WriteReport) -> int:
        """Turn counter and bucket values into deltas; returns how many samples were accepted."""
        rows.rejected_in_batch = 0
        accepted = len(b.gauges)
        rows.gauges.extend(b.gauges)

        def prev_of(key: tuple[int, float]) -> tuple[float, float] | None:
            return new_state.get(key) or self._state.get(key)

        def reject(sid: int, ts: float, why: str) -> None:
            s = self._defs[sid]
            report.rejected.append(f"{b.target}: {s.source_metric}{_fmt_labels(s.labels)} @{ts:.3f}: {why}")
            rows.rejected_in_batch += 1

        for sid, ts, value in b.counters:
            key = (sid, SCALAR)
            prev = prev_of(key)
            if prev is None:
                # A series born on a target we already knew started from zero in between.
                delta = value if known_target and sid not in self._known_series else 0.0
            elif ts <= prev[0]:
                reject(sid, ts, "out-of-order or duplicate sample")
                continue
            else:
                delta = value if value < prev[1] else value - prev[1]
            new_state[key] = (ts, value)
            rows.counters.append((sid, ts, value, delta))
            if delta > 0:
                rows.maybe_event(b.target, self._defs[sid], ts, delta)
            accepted += 1

        by_series: dict[tuple[int, float], list[tuple[float, float]]] = {}
        for sid, ts, le, value in b.buckets:
            by_series.setdefault((sid, ts), []).append((le, value))
        for (sid, ts), buckets in by_series.items():
            prevs = [prev_of((sid, le)) for le, _ in buckets]
            if any(p is not None and ts <= p[0] for p in prevs):
                reject(sid, ts, "out-of-order or duplicate histogram")
                continue
            reset = any(p is not None and v < p[1] for p, (_, v) in zip(prevs, buckets, strict=True))
            fresh = known_target and sid not in self._known_series
            for p, (le, value) in zip(prevs, buckets, strict=True):
                if p is None:
                    delta = value if fresh else 0.0
                else:
                    delta = value if reset else value - p[1]
                new_state[(sid, le)] = (ts, value)
                rows.buckets.append((sid, ts, le, value, delta))
            accepted += len(buckets)
        return accepted

    def _insert(self, rows: _Rows, new_series: dict[int, SeriesDef],
                new_state: dict[tuple[int, float], tuple[float, float]]) -> None:
        con = self.con
        now = self._clock()
        if new_series:
            first_ts = rows.first_ts_by_series()
            s = list(new_series.values())
            tbl = pa.table({
                "series_id": pa.array([x.series_id for x in s], pa.int64()),
                "metric": [x.metric for x in s],
                "kind": [x.kind for x in s],
                "target": [x.target for x in s],
                "labels": [json.dumps(x.labels, sort_keys=True) for x in s],
                "source_metric": [x.source_metric for x in s],
                "first_ts": _ts([first_ts.get(x.series_id, now) for x in s]),
            })
            _append(con, "series", tbl, "ON CONFLICT DO NOTHING")
        if rows.gauges:
            g = rows.gauges
            tbl = pa.table({"series_id": pa.array([r[0] for r in g], pa.int64()),
                            "ts": _ts([r[1] for r in g]), "value": pa.array([r[2] for r in g], pa.float64())})
            _append(con, "gauges", tbl)
        if rows.counters:
            c = rows.counters
            tbl = pa.table({"series_id": pa.array([r[0] for r in c], pa.int64()), "ts": _ts([r[1] for r in c]),
                            "value": pa.array([r[2] for r in c], pa.float64()),
                            "delta": pa.array([r[3] for r in c], pa.float64())})
            _append(con, "counters", tbl)
        if rows.buckets:
            h = rows.buckets
            tbl = pa.table({"series_id": pa.array([r[0] for r in h], pa.int64()), "ts": _ts([r[1] for r in h]),
                            "le": pa.array([r[2] for r in h], pa.float64()),
                            "value": pa.array([r[3] for r in h], pa.float64()),
                            "delta": pa.array([r[4] for r in h], pa.float64())})
            _append(con, "histogram_buckets", tbl)
        if new_state:
            keys = list(new_state)
            tbl = pa.table({"series_id": pa.array([k[0] for k in keys], pa.int64()),
                            "le": pa.array([k[1] for k in keys], pa.float64()),
                            "ts": _ts([new_state[k][0] for k in keys]),
                            "value": pa.array([new_state[k][1] for k in keys], pa.float64())})
            _append(con, "series_state", tbl, verb="INSERT OR REPLACE")
        rows.insert_dimensions(con)
        b = rows.batches
        tbl = pa.table({"target": [r[0] for r in b], "scrape_ts": _ts([r[1] for r in b]),
                        "samples": pa.array([r[2] for r in b], pa.int32()),
                        "rejected": pa.array([r[3] for r in b], pa.int32()),
                        "committed_at": _ts([now] * len(b))})
        _append(con, "batches", tbl)
        lo = min(r[1] for r in b)
        con.execute("""INSERT INTO meta VALUES ('dirty_from', CAST(? AS VARCHAR))
                       ON CONFLICT (key) DO UPDATE SET value = CAST(least(CAST(meta.value AS DOUBLE),
                       CAST(excluded.value AS DOUBLE)) AS VARCHAR)""", [lo])


def _fmt_labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


class _Rows:
    """Rows gathered for one transaction."""

    def __init__(self) -> None:
        self.gauges: list[tuple[int, float, float]] = []
        self.counters: list[tuple[int, float, float, float]] = []
        self.buckets: list[tuple[int, float, float, float, float]] = []
        self.events: list[tuple] = []
        self.gpus: dict[str, tuple] = {}
        self.nodes: dict[str, tuple] = {}
        self.namespaces: dict[str, tuple] = {}
        self.allocations: list[tuple] = []
        self.probes: list[tuple] = []
        self.batches: list[tuple[str, float, int, int]] = []
        self.rejected_in_batch = 0
        self._series_ref: dict[int, SeriesDef] = {}

    def first_ts_by_series(self) -> dict[int, float]:
        first: dict[int, float] = {}
        for rows in (self.gauges, self.counters, self.buckets):
            for r in rows:
                if r[0] not in first or r[1] < first[r[0]]:
                    first[r[0]] = r[1]
        return first

    def maybe_event(self, target: str, s: SeriesDef, ts: float, delta: float) -> None:
        """An XID counter that moved is an event: the reliability models read events, not counters."""
        if s.metric != "gpufleet_gpu_xid_errors_total":
            return
        try:
            xid = int(float(s.labels.get("xid", "")))
        except ValueError:
            return
        info = xid_info(xid)
        self.events.append((ts, target, "xid", s.labels.get("cluster"), s.labels.get("node"),
                            s.labels.get("gpu_uuid"), xid, info.severity, info.failure_class, delta,
                            f"XID {xid}: {info.meaning}"))

    def add_dimensions(self, b: Batch, interval_s: float) -> None:
        ts = b.scrape_ts
        for g in b.gpus:
            self.gpus[g.gpu_uuid] = (g.gpu_uuid, g.cluster, g.node, g.gpu_index, g.gpu_model, g.mig_profile, ts)
        for n in b.nodes:
            self.nodes[n.node] = (n.node, n.cluster, n.provider, n.region, n.instance_type, n.pricing_category,
                                  n.gpu_model, n.gpu_count, ts)
        for ns, team in b.namespaces.items():
            self.namespaces[ns] = (ns, team, ts)
        for a in b.allocations:
            self.allocations.append((ts, a.gpu_uuid, a.cluster, a.node, a.namespace, a.pod, a.container,
                                     a.share, interval_s))
        for p in b.probes:
            self.probes.append((ts, b.target, p.cluster, p.node, p.gpu_uuid, p.gpu_model, p.probe, p.value, p.unit))

    def insert_dimensions(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.events:
            _insert_rows(con, "events", self.events, ts_cols=(0,))
        if self.gpus:
            rows = [r + (r[-1],) for r in self.gpus.values()]
            _insert_rows(con, "gpus", rows, ts_cols=(6, 7), conflict="""ON CONFLICT (gpu_uuid) DO UPDATE SET
                cluster = excluded.cluster, node = excluded.node, gpu_index = excluded.gpu_index,
                gpu_model = excluded.gpu_model, mig_profile = excluded.mig_profile,
                first_ts = least(gpus.first_ts, excluded.first_ts),
                last_ts = greatest(gpus.last_ts, excluded.last_ts)""")
        if self.nodes:
            rows = [r + (r[-1],) for r in self.nodes.values()]
            _insert_rows(con, "nodes", rows, ts_cols=(8, 9), conflict="""ON CONFLICT (node) DO UPDATE SET
                cluster = excluded.cluster, provider = excluded.provider, region = excluded.region,
                instance_type = excluded.instance_type, pricing_category = excluded.pricing_category,
                gpu_model = excluded.gpu_model, gpu_count = excluded.gpu_count,
                first_ts = least(nodes.first_ts, excluded.first_ts),
                last_ts = greatest(nodes.last_ts, excluded.last_ts)""")
        if self.namespaces:
            rows = [r + (r[-1],) for r in self.namespaces.values()]
            _insert_rows(con, "namespaces", rows, ts_cols=(2, 3), conflict="""ON CONFLICT (namespace) DO UPDATE SET
                team = excluded.team, first_ts = least(namespaces.first_ts, excluded.first_ts),
                last_ts = greatest(namespaces.last_ts, excluded.last_ts)""")
        if self.allocations:
            _insert_rows(con, "gpu_allocations", self.allocations, ts_cols=(0,))
        if self.probes:
            _insert_rows(con, "probe_results", self.probes, ts_cols=(0,))


def _insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple], *, ts_cols: tuple[int, ...],
                 conflict: str = "") -> None:
    names = [c[0] for c in con.execute(f"DESCRIBE {table}").fetchall()]
    columns = list(zip(*rows, strict=True))
    arrays = {}
    for i, name in enumerate(names):
        arrays[name] = _ts(columns[i]) if i in ts_cols else pa.array(list(columns[i]))
    _append(con, table, pa.table(arrays), conflict)


def _append(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table, suffix: str = "", *,
            verb: str = "INSERT") -> None:
    """Insert an Arrow table into ``table`` (columns in table order)."""
    con.register("incoming_rows", rows)
    try:
        con.execute(f"{verb} INTO {table} SELECT * FROM incoming_rows {suffix}")
    finally:
        con.unregister("incoming_rows")
