"""Real Prometheus and ``gpufleet collect`` scrape the same simulated targets and agree sample for sample.

Each target serves numbered versions of its simulated exposition, each body tagged with a
``sim_version`` gauge; the test moves to the next version once both scrapers have fetched the
current one from every target twice (so one timed-out scrape cannot leave a version unseen).
Prometheus' samples (read back through its HTTP API, one scrape at a time by the timestamps of
its ``up`` series) are passed through the collector's adapters and must equal what the store
holds for the same version of the same target, for every version, series and bucket.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpufleet.collectors.importer import fetch_types, matrix_to_scrapes
from gpufleet.collectors.ingest import to_batch
from gpufleet.core.simfleet import FleetConfig, SimulatedFleet
from gpufleet.core.store import Batch, open_readonly

pytestmark = pytest.mark.integration

SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_rejected",
             "scrape_series_stale", "scrape_samples_post_metric_relabeling", "scrape_series_added"}
VERSIONS = 4

Key = tuple[int, str]  # series id, bucket bound ("nan" for a gauge or counter)
Scraped = tuple[int, dict[Key, float]]  # version served, values


def _from_batch(batch: Batch) -> dict[Key, float]:
    drop = {sid for sid, d in batch.series.items() if d.metric in SYNTHETIC}
    out: dict[Key, float] = {}
    for sid, _ts, v in [*batch.gauges, *batch.counters]:
        if sid not in drop:
            out[(sid, "nan")] = v
    for sid, _ts, le, v in batch.buckets:
        out[(sid, repr(float(le)))] = v
    return out


def _tagged(values: dict[Key, float], version_sid: int) -> Scraped | None:
    """Split off the ``sim_version`` gauge; None for a scrape that got no body."""
    version = values.pop((version_sid, "nan"), None)
    return None if version is None else (int(version), values)


def _store_scrapes(db: Path, target: str) -> list[Scraped]:
    """Each collector scrape of ``target``: the version it got and its values, synthetic series left out."""
    con = open_readonly(db)
    try:
        scrapes = [r[0] for r in con.execute(
            "SELECT epoch_us(scrape_ts) FROM batches WHERE target = ? ORDER BY scrape_ts", [target]).fetchall()]
        synthetic = ",".join(f"'{m}'" for m in SYNTHETIC)
        rows = con.execute(f"""
            SELECT epoch_us(g.ts), g.series_id, 'nan', g.value FROM gauges g JOIN series s USING (series_id)
             WHERE s.target = ? AND s.metric NOT IN ({synthetic})
            UNION ALL
            SELECT epoch_us(c.ts), c.series_id, 'nan', c.value FROM counters c JOIN series s USING (series_id)
             WHERE s.target = ?
            UNION ALL
            SELECT epoch_us(h.ts), h.series_id, CAST(h.le AS VARCHAR), h.value
              FROM histogram_buckets h JOIN series s USING (series_id) WHERE s.target = ?""",
                           [target, target, target]).fetchall()
        version_sid = con.execute("SELECT series_id FROM series WHERE target = ? AND metric = 'sim_version'",
                                  [target]).fetchone()
    finally:
        con.close()
    assert version_sid is not None, f"the store has no sim_version series of {target}"
    by_ts: dict[int, dict[Key, float]] = {ts: {} for ts in scrapes}
    for ts, sid, le, v in rows:
        by_ts[ts][(sid, "nan" if le == "nan" else repr(float(le)))] = v
    tagged = [_tagged(by_ts[ts], version_sid[0]) for ts in scrapes]
    return [t for t in tagged if t is not None]


def _prometheus_scrapes(http_json: Callable[..., Any], url: str, instance: str, types: dict[str, str]
                        ) -> list[Scraped]:
    """Each Prometheus scrape of ``instance``, read back and passed through the collector's adapters."""
    body = http_json(f"{url}/api/v1/query", {"query": f'{{instance="{instance}"}}[1h]', "time": repr(time.time())})
    result = body["data"]["result"]
    up = next(r for r in result if r["metric"]["__name__"] == "up")
    scrape_ts = [float(ts) for ts, v in up["values"] if v == "1"]
    merged: dict[float, dict[Key, float]] = {ts: {} for ts in scrape_ts}
    version_sid = None
    for scrape in matrix_to_scrapes(result, types, 0.5):
        assert scrape.target.name == instance
        batch = to_batch(scrape)
        version_sid = next((sid for sid, d in batch.series.items() if d.metric == "sim_version"), version_sid)
        if scrape.scrape_ts in merged:
            merged[scrape.scrape_ts].update(_from_batch(batch))
    assert version_sid is not None, f"Prometheus has no sim_version series of {instance}"
    tagged = [_tagged(merged[ts], version_sid) for ts in scrape_ts]
    return [t for t in tagged if t is not None]


def _by_version(scrapes: list[Scraped], who: str) -> dict[int, dict[Key, float]]:
    """The values of each version; every scrape of one version must have said the same."""
    out: dict[int, dict[Key, float]] = {}
    for v, vals in scrapes:
        if v in out:
            assert vals == out[v], f"{who}: two scrapes of version {v} differ"
        else:
            out[v] = vals
    return out


def test_prometheus_and_collector_agree_sample_for_sample(
        tmp_path: Path, start_prometheus: Any, versioned_targets: Any, http_json: Callable[..., Any],
        poll: Callable[[Callable[[], bool], float, str], None]) -> None:
    fleet = SimulatedFleet(FleetConfig(nodes=2, seed=11))
    t = fleet.cfg.start + 14 * 3600
    fleet.advance(t)
    sims = fleet.targets()
    chosen = [s for s in sims if s.kind == "node"] + [next(s for s in sims if s.kind == "engine")] \
        + [next(s for s in sims if s.kind == "kube")] + [s for s in sims if s.kind == "training"][:1]
    targets = versioned_targets({s.name: fleet.render(s) for s in chosen})
    addrs = [targets.address(s.name) for s in chosen]

    db = tmp_path / "fleet.duckdb"
    cfg = tmp_path / "collect.yaml"
    cfg.write_text(f"store: {db}\ndefaults: {{interval: 500ms, timeout: 500ms}}\nflush_interval: 200ms\n"
                   f"jobs:\n  - name: sim\n    static: [{{targets: {addrs}}}]\n")
    with start_prometheus(tmp_path, [{"job_name": "sim", "honor_labels": True,
                                      "static_configs": [{"targets": addrs}]}]) as url:
        collector = subprocess.Popen(["gpufleet", "collect", "--config", str(cfg)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(VERSIONS - 1):
                v = targets.version
                poll(lambda v=v: targets.seen_by("prometheus", v, 2) and targets.seen_by("gpufleet", v, 2), 60,
                     f"both scrapers to fetch version {v}")
                t += 60
                fleet.advance(t)
                targets.publish({s.name: fleet.render(s) for s in chosen})
            last = targets.version
            poll(lambda: targets.seen_by("prometheus", last, 2) and targets.seen_by("gpufleet", last, 2), 60,
                 f"both scrapers to fetch version {last}")
        finally:
            collector.send_signal(signal.SIGTERM)
            out, err = collector.communicate(timeout=60)
        assert collector.returncode == 0, err
        time.sleep(1.0)  # let Prometheus commit its in-flight scrape
        with httpx.Client() as client:
            types = fetch_types(client, url)
        compared = 0
        for sim, addr in zip(chosen, addrs, strict=True):
            prom = _by_version(_prometheus_scrapes(http_json, url, addr, types), f"prometheus {sim.name}")
            ours = _by_version(_store_scrapes(db, addr), f"collector {sim.name}")
            assert set(range(VERSIONS)) <= set(prom) & set(ours), sim.name
            for v in range(VERSIONS):
                assert prom[v], f"{sim.name} version {v}: Prometheus has no samples"
                missing = set(prom[v]) ^ set(ours[v])
                assert not missing, f"{sim.name} version {v}: series on one side only: {sorted(missing)[:5]}"
                differ = {k: (prom[v][k], ours[v][k]) for k in prom[v] if prom[v][k] != ours[v][k]}
                assert not differ, f"{sim.name} version {v}: values differ: {list(differ.items())[:5]}"
                compared += len(prom[v])
    # two nodes of GPUs, an engine with histograms, kube-state and a training job, over four versions
    assert compared > 2_000
