"""Ingest throughput: exposition text to committed rows, beside the bare Arrow-insert ceiling.

Both run in one process on the same data: the simulated fleet's scrapes (node exporters and
inference engines) rendered once up front, then
  1. the full path: parse -> normalize -> StoreWriter.write (transaction committed), and
  2. the ceiling: the same rows, already as Arrow tables, appended to a fresh DuckDB file.
Prints samples/s for each stage and the ratio of the full path to the ceiling.

    python benchmarks/ingest_bench.py [--nodes 16] [--hours 6] [--step 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from gpufleet.collectors.exposition import parse
from gpufleet.collectors.ingest import Scrape, to_batch
from gpufleet.collectors.normalize import normalize
from gpufleet.collectors.target import Target
from gpufleet.core.simfleet import FleetConfig, SimulatedFleet
from gpufleet.core.store import StoreWriter
from gpufleet.core.store.schema import DDL


def render_scrapes(nodes: int, hours: float, step: float) -> list[Scrape]:
    cfg = FleetConfig(nodes=nodes, start=1_767_225_600.0)
    fleet = SimulatedFleet(cfg)
    targets = [(t, Target(t.name, t.labels)) for t in fleet.targets()]
    out = []
    for i in range(1, int(hours * 3600 // step) + 1):
        t = cfg.start + i * step
        fleet.advance(t, default_dt=step)
        out += [Scrape(target, t, fleet.render(sim), step) for sim, target in targets]
    return out


def arrow_ceiling(db: Path, gauges: int, counters: int, buckets: int, chunks: int) -> float:
    """Seconds to append the same row counts as ready Arrow tables, in ``chunks`` transactions."""
    con = duckdb.connect(str(db))
    con.execute(DDL)
    rng = np.random.default_rng(0)

    def table(n: int, cols: dict[str, str]) -> pa.Table:
        data = {}
        for name, kind in cols.items():
            if kind == "id":
                data[name] = pa.array(rng.integers(0, 2**62, n), pa.int64())
            elif kind == "ts":
                data[name] = pa.array(np.arange(n, dtype=np.int64) * 1000, pa.timestamp("us"))
            else:
                data[name] = pa.array(rng.random(n))
        return pa.table(data)

    parts = [
        ("gauges", table(gauges, {"series_id": "id", "ts": "ts", "value": "f"})),
        ("counters", table(counters, {"series_id": "id", "ts": "ts", "value": "f", "delta": "f"})),
        ("histogram_buckets", table(buckets, {"series_id": "id", "ts": "ts", "le": "f", "value": "f", "delta": "f"})),
    ]
    start = time.perf_counter()
    for c in range(chunks):
        con.begin()
        for name, tbl in parts:
            n = tbl.num_rows
            piece = tbl.slice(c * n // chunks, (c + 1) * n // chunks - c * n // chunks)
            con.register("piece", piece)
            con.execute(f"INSERT INTO {name} SELECT * FROM piece")
            con.unregister("piece")
        con.commit()
    took = time.perf_counter() - start
    con.close()
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--step", type=float, default=300.0)
    ap.add_argument("--flush-every", type=int, default=600, help="scrapes per transaction")
    args = ap.parse_args()

    scrapes = render_scrapes(args.nodes, args.hours, args.step)
    with tempfile.TemporaryDirectory() as tmp:
        # Stage timings on a throwaway pass (parse alone, then normalize alone).
        t0 = time.perf_counter()
        parsed = [parse(s.text) for s in scrapes]
        t_parse = time.perf_counter() - t0
        t0 = time.perf_counter()
        batches = [normalize(p, s.target, s.scrape_ts, interval_hint_s=s.interval_hint_s)
                   for p, s in zip(parsed, scrapes, strict=True)]
        t_norm = time.perf_counter() - t0
        del parsed, batches

        # The full path runs with the parser's label cache warm, as in a running collector that
        # scrapes the same series again; the stage timings above are the cold pass.
        writer = StoreWriter(Path(tmp) / "full.duckdb")
        t0 = time.perf_counter()
        samples = 0
        for i in range(0, len(scrapes), args.flush_every):
            report = writer.write([to_batch(s) for s in scrapes[i:i + args.flush_every]])
            samples += report.samples
        t_full = time.perf_counter() - t0
        counts = {t: writer.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                  for t in ("gauges", "counters", "histogram_buckets")}
        writer.close()

        chunks = max(1, -(-len(scrapes) // args.flush_every))
        t_arrow = arrow_ceiling(Path(tmp) / "arrow.duckdb", counts["gauges"], counts["counters"],
                                counts["histogram_buckets"], chunks)

    total = sum(counts.values())
    print(f"workload: {len(scrapes):,} scrapes, {total:,} samples "
          f"({args.nodes} nodes, {args.hours:g} h every {args.step:g} s)")
    print(f"{'stage':<34}{'seconds':>10}{'samples/s':>14}")
    for name, secs in [("parse (cold label cache)", t_parse), ("normalize", t_norm),
                       ("full path: text -> committed rows", t_full), ("bare Arrow insert (ceiling)", t_arrow)]:
        print(f"{name:<34}{secs:>10.2f}{total / secs:>14,.0f}")
    print(f"full path / ceiling = {t_arrow / t_full:.3f}  (ceiling is {t_full / t_arrow:.1f}x faster)")


if __name__ == "__main__":
    main()
