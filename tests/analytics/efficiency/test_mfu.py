"""MFU/HFU against published configurations and per-job figures from a real DuckDB store."""

import json
import math

import duckdb
import pytest
from typer.testing import CliRunner

from gpufleet.analytics.efficiency.jobs import job_efficiency, team_efficiency
from gpufleet.analytics.efficiency.mfu import ModelShape, flops_per_token, hfu, mfu
from gpufleet.core.store.schema import DDL
from gpufleet.main import app

PALM_540B = ModelShape(params=540.35e9, layers=118, heads=48, head_dim=256, seq_len=2048)


@pytest.mark.parametrize(("shape", "tokens_per_s", "peak", "expected"), [
    # PaLM 540B: 238.3k tokens/s on 6144 TPU v4 chips at 275 TFLOP/s -> 46.2% MFU (PaLM, table 3)
    (PALM_540B, 238.3e3, 6144 * 275e12, 0.462),
    # attention term alone: 1 layer, 1 head, Q 1, T 1 -> 12 FLOPs; N 0 is not allowed, so N 1 -> 18 FLOPs
    (ModelShape(1, 1, 1, 1, 1), 1.0, 18.0, 1.0),
    # 8B dense on 8 H100 SXM (989 TFLOP/s each): tokens/s chosen to give exactly 40%
    (ModelShape(8e9, 32, 32, 128, 8192), 0.4 * 8 * 989e12 / (6 * 8e9 + 12 * 32 * 32 * 128 * 8192), 8 * 989e12, 0.4),
])
def test_mfu_known_configurations(shape, tokens_per_s, peak, expected) -> None:
    assert mfu(tokens_per_s, shape, peak) == pytest.approx(expected, abs=5e-4)


def test_flops_per_token_is_6n_plus_12lhqt() -> None:
    assert flops_per_token(PALM_540B) == 6 * 540.35e9 + 12 * 118 * 48 * 256 * 2048


def test_hfu_counts_recomputed_forward() -> None:
    m = mfu(1000.0, PALM_540B, 1e18)
    assert hfu(1000.0, PALM_540B, 1e18, recompute=True) == pytest.approx(m * 4 / 3)
    assert hfu(1000.0, PALM_540B, 1e18, recompute=False) == pytest.approx(m)


@pytest.mark.parametrize(("shape", "needle"), [
    (ModelShape(0, 1, 1, 1, 1), "params"),
    (ModelShape(1, 1, 0, 1, 1), "heads"),
])
def test_bad_shape_names_field(shape, needle) -> None:
    with pytest.raises(ValueError, match=needle):
        mfu(1.0, shape, 1.0)


def _store(path, jobs: list[dict[str, str]], tokens_per_s: float, probe_tflops: float | None) -> None:
    con = duckdb.connect(str(path))
    con.execute(DDL)
    con.execute("INSERT INTO namespaces VALUES ('train', 'research', TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-02')")
    for i, labels in enumerate(jobs):
        labels = {"namespace": "train", **labels}
        con.execute("INSERT INTO series VALUES (?, 'gpufleet_training_job_info', 'gauge', 't', ?, 'x', "
                    "TIMESTAMP '2026-01-01')", [100 + i, json.dumps(labels)])
        con.execute("INSERT INTO series VALUES (?, 'gpufleet_training_tokens_total', 'counter', 't', ?, 'x', "
                    "TIMESTAMP '2026-01-01')", [200 + i, json.dumps({"job": labels["job"], "namespace": "train"})])
        for k in range(13):  # one sample every 5 minutes over an hour
            con.execute("INSERT INTO counters VALUES (?, TIMESTAMP '2026-01-01 10:00:00' + INTERVAL (?) MINUTE, "
                        "?, ?)", [200 + i, 5 * k, tokens_per_s * 300 * k, 0.0 if k == 0 else tokens_per_s * 300])
    if probe_tflops is not None:
        con.execute("INSERT INTO probe_results VALUES (TIMESTAMP '2026-01-01', 't', 'c', 'n', 'u', "
                    "'NVIDIA H100 80GB HBM3', 'matmul_bf16', ?, 'TFLOP/s')", [probe_tflops])
    con.close()


SHAPE = {"params": "8000000000", "layers": "32", "heads": "32", "head_dim": "128", "seq_len": "8192"}


def test_job_efficiency_from_store_with_errors_per_job(tmp_path) -> None:
    per_token = 6 * 8e9 + 12 * 32 * 32 * 128 * 8192
    tps = 0.4 * 8 * 989e12 / per_token
    db = tmp_path / "s.duckdb"
    _store(db, [{"job": "good", "gpu_model": "NVIDIA H100 80GB HBM3", "gpus": "8", **SHAPE},
                {"job": "alien", "gpu_model": "Acme X1", "gpus": "8", **SHAPE},
                {"job": "shapeless", "gpu_model": "NVIDIA H100 80GB HBM3", "gpus": "8"}], tps, 791.2)
    con = duckdb.connect(str(db), read_only=True)
    rows = {r.job: r for r in job_efficiency(con, "hour", recompute=True)}
    good = rows["good"]
    assert good.error == "" and good.team == "research"
    assert good.tokens_per_s == pytest.approx(tps)
    assert good.mfu == pytest.approx(0.4)
    assert good.hfu == pytest.approx(0.4 * 4 / 3)
    assert good.mfu_vs_probe == pytest.approx(0.4 * 989 / 791.2)
    assert rows["alien"].mfu is None and "unknown GPU model 'Acme X1'" in rows["alien"].error
    assert rows["shapeless"].mfu is None and "missing params, layers" in rows["shapeless"].error
    teams = team_efficiency(list(rows.values()))
    assert list(teams.values()) == [pytest.approx(0.4)]
    con.close()

    res = CliRunner().invoke(app, ["report", "efficiency", "--db", str(db), "--period", "hour", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {j["job"] for j in data["jobs"]} == {"good", "alien", "shapeless"}
    assert math.isclose(data["teams"][0]["mfu"], 0.4, rel_tol=1e-6)
