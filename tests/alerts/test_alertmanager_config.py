"""The example Alertmanager config passes amtool and routes each kind of alert to the receiver it names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

CONFIG = Path(__file__).resolve().parents[2] / "alerts" / "alertmanager" / "alertmanager.yml"


def _routes(receiver: str, *labels: str) -> subprocess.CompletedProcess[str]:
    cmd = ["amtool", "config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={receiver}", *labels]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_check_config() -> None:
    out = subprocess.run(["amtool", "check-config", str(CONFIG)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
    assert "7 receivers" in out.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("alertname=GpuLost", "severity=critical", "gpu_uuid=GPU-0"), "gpu-oncall-page"),
        (("alertname=GpuThermalThrottling", "severity=warning"), "gpu-tickets"),
        (("alertname=GpuAllocatedIdle", "severity=info", "team=search"), "finops"),
        (("alertname=GpuAllocatedIdle", "severity=info", "team=research"), "research-finops"),
        (("alertname=SloBurnRate", "slo=ttft", "team=search", "severity=critical", "slo_tier=page"), "search-page"),
        (("alertname=SloBurnRate", "slo=ttft", "team=search", "severity=warning", "slo_tier=ticket"), "search-ticket"),
        (("alertname=SloBurnRate", "slo=ttft", "team=other", "severity=critical"), "gpu-oncall-page"),
        (("alertname=Unknown",), "default"),
    ],
)
def test_routes(labels: tuple[str, ...], receiver: str) -> None:
    out = _routes(receiver, *labels)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == receiver


def test_wrong_receiver_is_reported() -> None:
    out = _routes("finops", "alertname=GpuLost", "severity=critical")
    assert out.returncode != 0
    assert "gpu-oncall-page" in out.stdout + out.stderr


def test_inhibition_rules() -> None:
    cfg = yaml.safe_load(CONFIG.read_text())
    rules = {tuple(r["source_matchers"]): r for r in cfg["inhibit_rules"]}
    lost = rules[('alertname="GpuLost"',)]
    assert lost["equal"] == ["gpu_uuid"]
    assert 'alertname!="GpuLost"' in lost["target_matchers"]
    burn = rules[('slo_tier="page"',)]
    assert burn["target_matchers"] == ['slo_tier="ticket"']
    assert burn["equal"] == ["slo", "service"]
