"""``gpufleet import prometheus`` against a real Prometheus on loopback holding known history.

The history is backfilled with ``promtool tsdb create-blocks-from openmetrics`` before
Prometheus starts, so every value the importer reads back is known: a dcgm-exporter gauge, a
vLLM counter that resets halfway, and a vLLM histogram. They must land under their canonical
names (the same adapters as a live scrape), and an interrupted import, run again, must finish
the job without writing a window twice.
"""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gpufleet.collectors.importer import ProgressWriter, import_range
from gpufleet.core.store import open_readonly

pytestmark = pytest.mark.integration

STEP = 60
POINTS = 121  # two hours at one minute
TEMP = 'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-0a1b",Hostname="node-1",instance="node-1:9400",job="dcgm"}'
TOKENS = 'vllm:prompt_tokens_total{model_name="llama-8b",instance="llm-0:8000",job="vllm"}'
TTFT = "vllm:time_to_first_token_seconds"
TTFT_LABELS = 'model_name="llama-8b",instance="llm-0:8000",job="vllm"'
BOUNDS = ("0.1", "1.0", "+Inf")


def temp(i: int) -> float:
    return 40.0 + i % 7


def tokens(i: int) -> float:
    return 1000.0 * i if i < 60 else 5.0 + 1000.0 * (i - 60)  # the engine restarted at minute 60


def ttft(i: int) -> tuple[int, int, int]:
    return i, 2 * i, 3 * i


def _openmetrics(t0: int) -> str:
    lines = ["# TYPE DCGM_FI_DEV_GPU_TEMP gauge"]
    lines += [f"{TEMP} {temp(i):g} {t0 + STEP * i}" for i in range(POINTS)]
    lines.append("# TYPE vllm:prompt_tokens counter")
    lines += [f"{TOKENS} {tokens(i):g} {t0 + STEP * i}" for i in range(POINTS)]
    lines.append(f"# TYPE {TTFT} histogram")
    for b, le in enumerate(BOUNDS):
        lines += [f'{TTFT}_bucket{{{TTFT_LABELS},le="{le}"}} {ttft(i)[b]} {t0 + STEP * i}' for i in range(POINTS)]
    lines += [f"{TTFT}_sum{{{TTFT_LABELS}}} {0.5 * i:g} {t0 + STEP * i}" for i in range(POINTS)]
    lines += [f"{TTFT}_count{{{TTFT_LABELS}}} {3 * i} {t0 + STEP * i}" for i in range(POINTS)]
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture()
def backfilled(tmp_path: Path, start_prometheus: Any) -> Any:
    t0 = int(time.time() // 3600 * 3600) - 4 * 3600
    src = tmp_path / "history.om"
    src.write_text(_openmetrics(t0))
    data = tmp_path / "prom-data"
    data.mkdir()
    proc = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(src), str(data)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with start_prometheus(tmp_path, []) as url:
        yield url, t0


def _store(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = open_readonly(db)
    try:
        return {
            "gauges": con.execute("SELECT s.metric, s.labels->>'gpu_uuid', epoch(g.ts), g.value FROM gauges g "
                                  "JOIN series s USING (series_id) ORDER BY g.ts").fetchall(),
            "counters": con.execute("SELECT s.metric, s.labels->>'model', epoch(c.ts), c.value, c.delta "
                                    "FROM counters c JOIN series s USING (series_id) "
                                    "WHERE s.kind = 'counter' AND s.metric LIKE '%prompt_tokens%' "
                                    "ORDER BY c.ts").fetchall(),
            "buckets": con.execute("SELECT s.metric, epoch(h.ts), h.le, h.value, h.delta FROM histogram_buckets h "
                                   "JOIN series s USING (series_id) ORDER BY h.ts, h.le").fetchall(),
            "batches": con.execute("SELECT target, count(*), count(DISTINCT scrape_ts) FROM batches "
                                   "GROUP BY target ORDER BY target").fetchall(),
        }
    finally:
        con.close()


def test_import_lands_known_history_under_canonical_names(tmp_path: Path, backfilled: Any) -> None:
    url, t0 = backfilled
    db = tmp_path / "fleet.duckdb"
    proc = subprocess.run(
        ["gpufleet", "import", "prometheus", "--db", str(db), "--url", url,
         "--match", "DCGM_FI_DEV_GPU_TEMP", "--match", '{__name__=~"vllm:.*",job="vllm"}',
         "--start", str(t0), "--end", str(t0 + STEP * (POINTS - 1)), "--step", str(STEP), "--window", "20"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "DCGM_FI_DEV_GPU_TEMP: 6 windows imported (0 already done), 121 scrapes, 121 samples" in proc.stderr
    got = _store(db)
    assert got["gauges"] == [("gpufleet_gpu_temperature_celsius", "GPU-0a1b", float(t0 + STEP * i), temp(i))
                             for i in range(POINTS)]
    counters = got["counters"]
    assert [(m, model, ts, v) for m, model, ts, v, _ in counters] == [
        ("gpufleet_serving_prompt_tokens_total", "llama-8b", float(t0 + STEP * i), tokens(i)) for i in range(POINTS)]
    # Prometheus' reset rule: after the restart the delta is the new value itself
    assert [d for *_, d in counters][1:] == [1000.0] * 59 + [5.0] + [1000.0] * 60
    buckets = [b for b in got["buckets"] if b[0] == "gpufleet_serving_time_to_first_token_seconds"]
    assert len(buckets) == POINTS * 3
    assert {(ts, le): v for _, ts, le, v, _ in buckets} == {
        (float(t0 + STEP * i), le, ): float(ttft(i)[b]) for i in range(POINTS)
        for b, le in enumerate((0.1, 1.0, math.inf))}
    assert all(d == b + 1 for _, _, le, _, d in buckets[3:] for b in [0 if le == 0.1 else 1 if le == 1.0 else 2])
    # one scrape per instance and minute, none twice
    assert got["batches"] == [("llm-0:8000", POINTS, POINTS), ("node-1:9400", POINTS, POINTS)]


def test_interrupted_import_resumes_without_duplicates(tmp_path: Path, backfilled: Any) -> None:
    url, t0 = backfilled
    db = tmp_path / "fleet.duckdb"
    end = float(t0 + STEP * (POINTS - 1))
    selector = '{__name__=~"vllm:.*",job="vllm"}'

    class Interrupted(Exception):
        pass

    def stop_after_third(i: int, n: int) -> None:
        if i == 3:
            raise Interrupted

    writer = ProgressWriter(db)
    with pytest.raises(Interrupted):
        import_range(writer, url, selector, float(t0), end, STEP, window_points=20, on_progress=stop_after_third)
    writer.close()
    half = _store(db)
    assert half["batches"] == [("llm-0:8000", 3 * 21, 3 * 21)]  # three windows of 21 points landed

    seen: list[tuple[int, int]] = []
    writer = ProgressWriter(db)
    report = import_range(writer, url, selector, float(t0), end, STEP, window_points=20,
                          on_progress=lambda i, n: seen.append((i, n)))
    writer.close()
    assert (report.windows, report.skipped_windows) == (3, 3)
    assert seen == [(i, 6) for i in range(1, 7)]
    full = _store(db)
    assert full["batches"] == [("llm-0:8000", POINTS, POINTS)]
    assert len(full["counters"]) == POINTS
    assert sum(d for *_, d in full["counters"]) == sum(
        tokens(i) - tokens(i - 1) if tokens(i) >= tokens(i - 1) else tokens(i) for i in range(1, POINTS))

    # a third run finds everything done and changes nothing
    writer = ProgressWriter(db)
    again = import_range(writer, url, selector, float(t0), end, STEP, window_points=20)
    writer.close()
    assert (again.windows, again.skipped_windows) == (0, 6)
    assert _store(db) == full
