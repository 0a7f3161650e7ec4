"""Every rule file passes promtool's lint and its unit tests, and every alert is fully annotated and tested."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "alerts" / "rules").glob("*.yaml"))
TESTS = ROOT / "tests" / "alerts" / "rules"


def _alerts(path: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_rule_files_found() -> None:
    names = {p.name for p in RULES}
    assert {"gpu-health.yaml", "gpu-health-dcgm.yaml", "exporter.yaml", "finops.yaml", "serving.yaml"} <= names


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_promtool_check_lint_fatal(path: Path) -> None:
    out = subprocess.run(["promtool", "check", "rules", "--lint-fatal", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_alerts_have_severity_summary_description_runbook(path: Path) -> None:
    for rule in _alerts(path):
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        ann = rule["annotations"]
        assert ann["summary"].strip(), name
        assert "{{" in ann["description"], f"{name}: description carries no values"
        runbook = ann["runbook_url"]
        assert runbook.startswith("docs/runbooks/") and runbook.endswith(".md"), name
        assert (ROOT / runbook).is_file(), f"{name}: {runbook} missing"


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_promtool_unit_tests_cover_every_alert(path: Path) -> None:
    test_file = TESTS / f"{path.stem}_test.yaml"
    assert test_file.is_file(), f"no promtool test for {path.name}"
    out = subprocess.run(["promtool", "test", "rules", test_file.name], cwd=TESTS, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    doc = yaml.safe_load(test_file.read_text())
    positive: set[str] = set()
    negative: set[str] = set()
    for case in doc["tests"]:
        for check in case.get("alert_rule_test", []):
            (positive if check.get("exp_alerts") else negative).add(check["alertname"])
    names = {r["alert"] for r in _alerts(path)}
    assert names <= positive, f"no positive case: {sorted(names - positive)}"
    assert names <= negative, f"no negative twin: {sorted(names - negative)}"
