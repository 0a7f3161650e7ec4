"""Every source answers the same frames and reports as the DuckDB store, on one small fleet loaded into
real Prometheus and VictoriaMetrics (Debian packages) and exported as Parquet to an S3 server (moto)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import polars as pl
import pytest
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from gpufleet.analytics.cost import report as rep
from gpufleet.analytics.cost.pricing import load_catalog
from gpufleet.analytics.cost.query import DuckDBSource
from gpufleet.analytics.sources import Source
from gpufleet.analytics.sources.export import export_parquet
from gpufleet.analytics.sources.parquet import ParquetSource
from gpufleet.analytics.sources.prometheus import PrometheusSource
from gpufleet.core.store.reader import open_readonly
from gpufleet.main import app

from .sourcedata import build_store, prometheus_with, victoria_with

pytestmark = pytest.mark.integration

SCRAPES = 300  # 5 hours at 60 s
HOURS = dt.timedelta(hours=5)
VALUES = {"gpu_seconds", "sum", "count", "joules", "value", "gpus_requested"}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sources")
    build_store(path / "store.duckdb", SCRAPES)
    return path


@pytest.fixture(scope="module")
def duck(work: Path) -> DuckDBSource:
    return DuckDBSource(open_readonly(work / "store.duckdb"))


@pytest.fixture(scope="module")
def prom_url(work: Path) -> Iterator[str]:
    with prometheus_with(work / "prom", SCRAPES) as url:
        yield url


@pytest.fixture(scope="module")
def vm_url(work: Path) -> Iterator[str]:
    with victoria_with(work / "vm", SCRAPES) as url:
        yield url


@pytest.fixture(scope="module")
def s3(work: Path, duck: DuckDBSource) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1").create_bucket(
            Bucket="fleet-rollups")
        export_parquet(duck.con, "s3://fleet-rollups/gpufleet")
        yield "s3://fleet-rollups/gpufleet"
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def _norm(df: pl.DataFrame) -> pl.DataFrame:
    df = df.with_columns(pl.col(c).cast(pl.Float64) for c in df.columns if c in VALUES)
    return df.sort([c for c in df.columns if c not in VALUES], nulls_last=True)


def assert_same_frames(ref: Source, other: Source) -> None:
    w = ref.window(HOURS)
    assert other.window(HOURS) == w
    for frame in ("allocations", "utilization", "energy", "serving", "requests"):
        a, b = _norm(getattr(ref, frame)(w)), _norm(getattr(other, frame)(w))
        assert a.height > 0, frame
        assert a.columns == b.columns, frame
        keys = [c for c in a.columns if c not in VALUES]
        assert a.select(keys).equals(b.select(keys)), frame
        for c in a.columns:
            if c in VALUES:
                assert a[c].to_list() == pytest.approx(b[c].to_list(), rel=1e-9, abs=1e-6), (frame, c)


def assert_close(a: pl.DataFrame, b: pl.DataFrame, key: str) -> None:
    """Same rows by ``key``: text equal, floats within 1e-9 relative, integer cents within one cent
    (float sums in another order may move a rounding cent between two equal lines), totals exact."""
    a, b = a.sort(key), b.sort(key)
    assert a.columns == b.columns and a.height == b.height and a.height > 0
    for c in a.columns:
        if a[c].dtype == pl.String:
            assert a[c].to_list() == b[c].to_list(), c
        elif a[c].dtype == pl.Int64:
            assert max(abs(x - y) for x, y in zip(a[c], b[c], strict=True)) <= 1, c
            assert a[c].sum() == b[c].sum(), c
        else:
            assert a[c].to_list() == pytest.approx(b[c].to_list(), rel=1e-9, abs=1e-9), c


def assert_same_reports(ref: Source, other: Source) -> None:
    cat = load_catalog()
    for by in ("namespace", "team", "cluster", "model"):
        assert_close(rep.cost_report(ref, cat, HOURS, by), rep.cost_report(other, cat, HOURS, by), by)
    for by in ("namespace", "team", "node"):
        assert_close(rep.utilization_report(ref, HOURS, by), rep.utilization_report(other, HOURS, by), by)
    recs = rep.recommendations(ref, cat, HOURS)
    assert recs, "the dataset has idle holders to recommend on"
    other_recs = rep.recommendations(other, cat, HOURS)
    assert sorted((r.pod, r.action) for r in recs) == sorted((r.pod, r.action) for r in other_recs)
    assert sum(r.monthly_savings_usd for r in recs) == pytest.approx(sum(r.monthly_savings_usd for r in other_recs))


def test_store_holds_the_expected_gpu_time(duck: DuckDBSource) -> None:
    w = duck.window(HOURS)
    a = duck.allocations(w)
    per = dict(a.group_by("namespace").agg(pl.col("gpu_seconds").sum()).iter_rows())
    # chat, notebooks (two pods time-slicing one GPU) and kube-system hold a GPU for 5 h; the trainer 2.5 h;
    # the 3g.40gb slice of the MIG GPU 3/7 of it; free time is the rest (the 1g.10gb slice at 1/7).
    assert per["chat-serving"] == pytest.approx(5 * 3600)
    assert per["notebooks"] == pytest.approx(5 * 3600)
    assert per["research-train"] == pytest.approx(2.5 * 3600)
    assert per["search-serving"] == pytest.approx(5 * 3600 * 3 / 7)
    assert per[None] == pytest.approx(2.5 * 3600 + 5 * 3600 + 5 * 3600 / 7)


def test_prometheus_source_matches_store(duck: DuckDBSource, prom_url: str) -> None:
    src = PrometheusSource(prom_url)
    assert_same_frames(duck, src)
    assert_same_reports(duck, src)


def test_victoriametrics_source_matches_store(duck: DuckDBSource, vm_url: str) -> None:
    src = PrometheusSource(vm_url)
    assert_same_frames(duck, src)
    assert_same_reports(duck, src)


def test_parquet_on_s3_matches_store(duck: DuckDBSource, s3: str) -> None:
    src = ParquetSource(s3)
    assert_same_frames(duck, src)
    assert_same_reports(duck, src)
    assert src.prices().height == duck.prices().height


def test_report_cli_agrees_across_sources(work: Path, prom_url: str, vm_url: str, s3: str) -> None:
    runner = CliRunner()
    out = {}
    for spec in (f"duckdb:{work / 'store.duckdb'}", f"prometheus:{prom_url}", f"prometheus:{vm_url}#scrape_interval=60s",
                 f"parquet:{s3}"):
        res = runner.invoke(app, ["report", "cost", "--source", spec, "--window", "5h", "--by", "team", "--json"])
        assert res.exit_code == 0, res.output
        out[spec] = sorted(json.loads(res.output), key=lambda r: r["team"])
    ref = out.pop(f"duckdb:{work / 'store.duckdb'}")
    assert [r["team"] for r in ref] == ["chat", "research", "search"]  # kube-system (platform) is shared cost
    for rows in out.values():
        assert [r["team"] for r in rows] == [r["team"] for r in ref]
        assert [r["total_usd"] for r in rows] == [r["total_usd"] for r in ref]
        assert [r["gpu_hours"] for r in rows] == pytest.approx([r["gpu_hours"] for r in ref])


def test_window_end_found_without_a_pinned_end(prom_url: str) -> None:
    w = PrometheusSource(prom_url).window(dt.timedelta(hours=2))
    assert (w.start, w.end) == (dt.datetime(2026, 1, 1, 3), dt.datetime(2026, 1, 1, 5))
