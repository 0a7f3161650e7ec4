"""The exporter-side probe source: families from a results file, cached, degrading on a bad file."""

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from gpufleet.core.simfleet import FleetConfig
from gpufleet.probes.collector import ProbeResultsSource
from gpufleet.probes.prices import price_lookup
from gpufleet.probes.results import dump_results
from gpufleet.probes.simulated import simulated_run
from gpufleet.probes.verdict import judge


class _Mounted:
    def __init__(self, source: ProbeResultsSource) -> None:
        self.source = source

    def collect(self):  # noqa: ANN201
        return self.source()


def test_source_serves_results_and_survives_a_broken_file(tmp_path: Path) -> None:
    run = simulated_run(FleetConfig(nodes=2, seed=7))
    run.verdicts = judge(run.gpus, price_lookup())
    path = tmp_path / "latest.json"
    source = ProbeResultsSource(path)
    names = {f.name for f in source()}
    assert names == {"gpufleet_probe_results_errors"} and source.errors == 1  # not there yet

    dump_results(run, path)
    families = {f.name: f for f in source()}
    assert len(families["gpufleet_probe_matmul_flops"].samples) == 32  # 16 GPUs x (bf16, fp8)
    states = [s for s in families["gpufleet_probe_verdict"].samples if s.value == 1.0]
    assert sorted(s.labels["verdict"] for s in states) == ["degraded"] + ["healthy"] * 15  # the straggler
    registry = CollectorRegistry()
    registry.register(_Mounted(source))
    text = generate_latest(registry).decode()
    assert "gpufleet_probe_results_errors_total 1.0" in text
    assert 'gpufleet_probe_hbm_bandwidth_bytes_per_second{' in text

    path.write_text("{broken")
    assert {f.name for f in source()} == {"gpufleet_probe_results_errors"}
    assert source.errors == 2 and "is not JSON" in (source.last_error or "")
