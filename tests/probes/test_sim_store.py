"""The simulated fleet's probe results end to end: CLI run, verdicts, exposition, the store, the report."""

import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from gpufleet.core.simfleet import FleetConfig, SimulatedFleet
from gpufleet.main import main
from gpufleet.probes.exposition import FAMILIES, render_results
from gpufleet.probes.prices import price_lookup
from gpufleet.probes.simulated import simulated_run
from gpufleet.probes.verdict import judge


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().out


def straggler_uuid(nodes: int = 4, seed: int = 7) -> str:
    fleet = SimulatedFleet(FleetConfig(nodes=nodes, seed=seed))
    slow = [g for n in fleet.topo.nodes for g in n.gpus if g.speed < 1]
    assert len(slow) == 1
    return slow[0].uuid


def test_straggler_is_the_only_degraded_gpu() -> None:
    run = simulated_run(FleetConfig(nodes=4, seed=7))
    verdicts = {v.gpu_uuid: v for v in judge(run.gpus, price_lookup())}
    slow = verdicts[straggler_uuid()]
    assert slow.verdict == "degraded"
    assert slow.reasons == ["matmul_bf16 18% below node peers (264 TFLOP/s)"]
    assert slow.lost_ratio == pytest.approx(0.18, abs=0.01)
    assert slow.lost_usd_per_day == pytest.approx(slow.lost_ratio * 2.745 * 24, abs=0.01)
    assert slow.price_source == "default"
    others = [v for u, v in verdicts.items() if u != slow.gpu_uuid]
    assert len(others) == 31 and all(v.verdict == "healthy" for v in others)


def test_exposition_families_and_promtool_lint() -> None:
    run = simulated_run(FleetConfig(nodes=2, seed=7))
    run.verdicts = judge(run.gpus, price_lookup())
    text = render_results(run)
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert families <= set(FAMILIES)
    assert {"gpufleet_probe_matmul_flops", "gpufleet_probe_hbm_bandwidth_bytes_per_second",
            "gpufleet_probe_verdict", "gpufleet_probe_nccl_busbw_bytes_per_second"} <= families
    uuid = run.gpus[0].gpu_uuid
    assert f'gpufleet_probe_verdict{{gpu_uuid="{uuid}",gpu="0"' in text
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian prometheus package) is needed"
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_cli_run_ingest_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "sim.json"
    code, out = cli(["probe", "run", "--backend", "sim", "--nodes", "4", "--out", str(results), "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "gpufleet.probe/v1" and doc["backend"] == "sim" and len(doc["gpus"]) == 32
    assert json.loads(results.read_text()) == doc
    slow = straggler_uuid()
    assert [v["gpu_uuid"] for v in doc["verdicts"] if v["verdict"] != "healthy"] == [slow]

    db = tmp_path / "store.duckdb"
    code, out = cli(["probe", "ingest", "--db", str(db), "--results", str(results), "--json"], capsys)
    assert code == 0
    landed = json.loads(out)
    assert landed["landed"] == 1 and landed["samples"] > 32 * 5
    code, out = cli(["probe", "ingest", "--db", str(db), "--results", str(results), "--json"], capsys)
    assert json.loads(out)["skipped"] == 1  # idempotent: the same run lands once

    con = duckdb.connect(str(db), read_only=True)
    rows = dict(con.execute("SELECT probe, value FROM probe_results WHERE gpu_uuid = ?", [slow]).fetchall())
    con.close()
    assert rows["verdict_degraded"] == 1.0 and rows["verdict_healthy"] == 0.0
    assert rows["matmul_bf16"] == pytest.approx(next(
        m["value"] for g in doc["gpus"] if g["gpu_uuid"] == slow for m in g["measurements"] if m["key"] == "matmul_bf16"))

    code, out = cli(["report", "probes", "--db", str(db), "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert len(report["gpus"]) == 32
    first = report["gpus"][0]
    assert (first["gpu_uuid"], first["verdict"]) == (slow, "degraded")
    assert first["lost_usd_per_day"] == pytest.approx(report["lost_usd_per_day"])
    assert report["lost_usd_per_day"] > 0


def test_cli_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in ((["--suite", "huge"], "--suite 'huge'"), (["--gpus", "a,b"], "--gpus 'a,b'"),
                          (["--backend", "rocm"], "--backend 'rocm'")):
        assert main(["probe", "run", *args]) != 0
        assert message in capsys.readouterr().err


def test_fail_on_degraded_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "run", "--backend", "sim", "--nodes", "4", "--fail-on", "degraded", "--json"]) == 1
    assert main(["probe", "run", "--backend", "sim", "--nodes", "4", "--fail-on", "failed", "--json"]) == 0
    capsys.readouterr()


def test_bare_probe_command_runs_the_suite(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(["probe", "--backend", "sim", "--suite", "full", "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["suite"] == "full" and doc["schema"] == "gpufleet.probe/v1"
    assert [v["verdict"] for v in doc["verdicts"]].count("degraded") == 1
    dtypes = {m["labels"].get("dtype") for m in doc["gpus"][0]["measurements"] if m["probe"] == "matmul"}
    assert dtypes >= {"bf16", "fp16", "tf32"}
