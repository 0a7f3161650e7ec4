"""The ``gpufleet.probe/v1`` JSON document: shape, round trip, NaN as null, bad files named."""

import json
import math
from pathlib import Path

import pytest

from gpufleet.probes.results import SCHEMA, GpuResult, Measurement, ProbeRun, dump_results, load_results
from gpufleet.probes.simulated import simulated_run


def run_of(*ms: Measurement) -> ProbeRun:
    return ProbeRun("quick", "cuda", 100.0, 112.5, [GpuResult("GPU-1", "n1", "NVIDIA H100 80GB HBM3", 0, None,
                                                               "H100-SXM", [], 12.5, list(ms))])


@pytest.mark.parametrize(("m", "key", "ok"), [
    (Measurement("matmul", 790e12, "flops", {"dtype": "bf16"}, 989e12), "matmul_bf16", True),
    (Measurement("hbm_bandwidth", 3e12, "bytes_per_second", {"kernel": "triad"}), "hbm_bandwidth_triad", True),
    (Measurement("pcie_bandwidth", 55e9, "bytes_per_second", {"direction": "h2d"}), "pcie_bandwidth_h2d", True),
    (Measurement("matmul", math.nan, "flops", {"dtype": "fp8"}), "matmul_fp8", False),
    (Measurement("matmul", 1e12, "flops", {"dtype": "fp8"}, correct=False), "matmul_fp8", False),
    (Measurement("matmul", 1e12, "flops", {"dtype": "fp8"}, error="boom"), "matmul_fp8", False),
])
def test_measurement_key_and_ok(m: Measurement, key: str, ok: bool) -> None:
    assert m.key == key
    assert m.ok is ok


def test_json_shape(tmp_path: Path) -> None:
    m = Measurement("matmul", 790e12, "flops", {"dtype": "bf16"}, 989e12, repeats=20, spread_ratio=0.004)
    doc = run_of(m, Measurement("matmul", math.nan, "flops", {"dtype": "fp8"}, correct=False)).to_dict()
    assert set(doc) == {"schema", "suite", "backend", "started_at", "finished_at", "gpus", "collectives",
                        "verdicts", "host"}
    assert doc["schema"] == SCHEMA == "gpufleet.probe/v1"
    g = doc["gpus"][0]
    assert set(g) == {"gpu_uuid", "node", "gpu_model", "index", "cluster", "spec_key", "other_processes",
                      "duration_s", "measurements"}
    first, nan = g["measurements"]
    assert set(first) == {"probe", "value", "unit", "labels", "peak", "repeats", "spread_ratio", "correct", "error",
                          "detail", "key", "peak_ratio"}
    assert first["key"] == "matmul_bf16"
    assert first["peak_ratio"] == pytest.approx(790 / 989)
    assert nan["value"] is None  # NaN is not JSON: null
    json.dumps(doc, allow_nan=False)
    path = tmp_path / "r.json"
    dump_results(run_of(m), path)
    back = load_results(path)
    assert back.gpus[0].measurements[0] == m


def test_nan_round_trips_as_nan(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    dump_results(run_of(Measurement("matmul", math.nan, "flops", {"dtype": "bf16"})), path)
    m = load_results(path).gpus[0].measurements[0]
    assert math.isnan(m.value) and not m.ok


def test_simulated_run_round_trips(tmp_path: Path) -> None:
    run = simulated_run()
    path = tmp_path / "sim.json"
    dump_results(run, path)
    back = load_results(path)
    assert back.to_dict() == run.to_dict()


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "is not JSON"),
    ("[]", "expected a JSON object, got list"),
    ('{"schema": "other/v9"}', "schema is 'other/v9', expected 'gpufleet.probe/v1'"),
    ('{"schema": "gpufleet.probe/v1", "suite": "quick"}', "missing field 'backend'"),
])
def test_bad_results_file_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        load_results(path)
    assert str(path) in str(err.value)


def test_missing_results_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read probe results"):
        load_results(tmp_path / "absent.json")
