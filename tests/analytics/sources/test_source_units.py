"""The pure parts of the sources: ``--source`` strings, PromQL builders, Parquet layout and options."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpufleet.analytics.cost.query import DuckDBSource
from gpufleet.analytics.sources import FRAMES, empty, open_source
from gpufleet.analytics.sources import promql as q
from gpufleet.analytics.sources.layout import part_path, storage_options, table_glob
from gpufleet.analytics.sources.parquet import ParquetSource
from gpufleet.analytics.sources.prometheus import PrometheusError, PrometheusSource
from gpufleet.main import app

from .sourcedata import build_store


@pytest.mark.parametrize(("spec", "message"), [
    ("", "use duckdb:PATH, prometheus:URL or parquet:URI"),
    ("mysql:db", "use duckdb:PATH, prometheus:URL or parquet:URI"),
    ("duckdb:", "use duckdb:PATH"),
    ("duckdb:/no/such/file.duckdb", "no such store file /no/such/file.duckdb"),
    ("prometheus:localhost:9090", "use http://HOST:PORT"),
    ("prometheus:http://127.0.0.1:9#step=5s", "unknown option(s) step"),
    ("prometheus:http://127.0.0.1:9#scrape_interval=fast", "scrape_interval 'fast' must be a positive duration"),
])
def test_bad_source_specs_name_the_input(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=None) as exc:
        open_source(spec)
    assert message in str(exc.value)


@pytest.mark.parametrize(("frag", "seconds"), [("", 60.0), ("#scrape_interval=15s", 15.0),
                                               ("#scrape_interval=2m", 120.0), ("#scrape_interval=30", 30.0),
                                               ("#scrape_interval=500ms", 0.5)])
def test_prometheus_spec_scrape_interval(frag: str, seconds: float) -> None:
    src = open_source("prometheus:http://127.0.0.1:9/" + frag)
    assert isinstance(src, PrometheusSource)
    assert (src.url, src.interval) == ("http://127.0.0.1:9", seconds)


@pytest.mark.parametrize(("metric", "matchers", "expected"), [
    ("up", None, "up"),
    ("m", {"mig_instance": ""}, 'm{mig_instance=""}'),
    ("m", {"mig_instance": "!=", "a": '"x"'}, 'm{a="\\"x\\"",mig_instance!=""}'),
    ("vllm:prompt_tokens_total", {"model_name": "=~llama.*"}, 'vllm:prompt_tokens_total{model_name=~"llama.*"}'),
])
def test_selector(metric: str, matchers: dict[str, str] | None, expected: str) -> None:
    assert q.selector(metric, matchers) == expected


def test_hourly_expressions_cover_the_hour_before_each_point() -> None:
    assert q.hourly_sum("m") == "sum_over_time(m[1h] offset 1ms)"
    assert q.hourly_count("m") == "count_over_time(m[1h] offset 1ms)"
    assert q.by(("a", "b"), "x") == "sum by (a, b) (x)"
    assert q.duration(30 * 86400) == "2592000000ms"
    d = q.hourly_delta("c")
    assert "last_over_time(c[1h] offset 1ms) - last_over_time(c[1h] offset 3600001ms)" in d
    assert "increase(c[1h] offset 1ms)" in d and "max_over_time(c[1h] offset 1ms)" in d


def test_unreachable_prometheus_is_a_clear_error() -> None:
    src = PrometheusSource("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(PrometheusError, match="http://127.0.0.1:9/api/v1/query_range"):
        src.window(dt.timedelta(hours=1))


def test_layout_and_storage_options() -> None:
    day = dt.date(2026, 1, 31)
    assert part_path("s3://b/p/", "gpu_allocations_1h", day) == \
        "s3://b/p/table=gpu_allocations_1h/date=2026-01-31/part-0.parquet"
    assert part_path("/data", "prices", None) == "/data/table=prices/part-0.parquet"
    assert table_glob("file:///data", "serving_1h") == "/data/table=serving_1h/**/*.parquet"
    assert storage_options("/data", {}) is None
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
           "AWS_DEFAULT_REGION": "eu-west-1"}
    assert storage_options("s3://b", env) == {"aws_endpoint_url": "http://127.0.0.1:9000", "aws_allow_http": "true",
                                              "aws_access_key_id": "k", "aws_secret_access_key": "s",
                                              "aws_region": "eu-west-1"}


def test_empty_frames_have_the_store_columns() -> None:
    assert list(empty("allocations").columns)[:2] == ["ts", "gpu_uuid"]
    assert set(FRAMES) == {"allocations", "utilization", "energy", "serving", "requests", "probes", "prices"}


def test_export_parquet_cli_round_trip(tmp_path: Path) -> None:
    build_store(tmp_path / "s.duckdb", 120)
    runner = CliRunner()
    res = runner.invoke(app, ["export", "parquet", "--db", str(tmp_path / "s.duckdb"), "--to", str(tmp_path / "pq"),
                              "--json"])
    assert res.exit_code == 0, res.output
    assert '"days": 1' in res.output
    assert (tmp_path / "pq/table=gpu_allocations_1h/date=2026-01-01/part-0.parquet").exists()
    from gpufleet.core.store.reader import open_readonly

    duck, pq = DuckDBSource(open_readonly(tmp_path / "s.duckdb")), ParquetSource(str(tmp_path / "pq"))
    w = duck.window(dt.timedelta(hours=2))
    assert pq.window(dt.timedelta(hours=2)) == w
    assert pq.allocations(w)["gpu_seconds"].sum() == pytest.approx(duck.allocations(w)["gpu_seconds"].sum())
    res = runner.invoke(app, ["report", "utilization", "--source", f"parquet:{tmp_path / 'pq'}", "--window", "2h",
                              "--json"])
    assert res.exit_code == 0, res.output
    assert '"namespace": "chat-serving"' in res.output


@pytest.mark.parametrize(("args", "message"), [
    (["report", "cost", "--window", "1h"], "--db PATH or --source"),
    (["report", "cost", "--db", "x.duckdb", "--source", "duckdb:x.duckdb"], "give one of them"),
    (["report", "cost", "--source", "parquet:/no/such/dir"], "holds no gpu_allocations_1h rollups"),
    (["export", "parquet", "--db", "/no/such.duckdb", "--to", "/tmp/x"], "no such store file"),
    (["export", "parquet", "--db", "{db}", "--to", "/tmp/x", "--since", "yesterday"], "use a date like"),
])
def test_cli_errors_name_the_input(tmp_path: Path, args: list[str], message: str) -> None:
    db = tmp_path / "e.duckdb"
    db.write_bytes(b"")
    res = CliRunner().invoke(app, [a.replace("{db}", str(db)) for a in args])
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
