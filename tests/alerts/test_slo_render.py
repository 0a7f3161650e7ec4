"""``gpufleet alerts render``: burn tables, and generated rules that pass promtool check and promtool test."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpufleet.alerts.burnrate import burn_table
from gpufleet.main import main

SPEC = """\
version: gpufleet/v1
window: 30d
services:
  - service: chat
    tier: interactive
    min_request_rate: 1
    objectives:
      - name: availability
        sli: availability
        target: 99
      - name: ttft-1s
        sli: latency
        metric: ttft
        threshold: 1s
        target: 90
  - service: quiet
    min_request_rate: 1
    objectives:
      - name: availability
        sli: availability
        target: 99
  - service: healthy
    min_request_rate: 1
    objectives:
      - name: availability
        sli: availability
        target: 99
  - service: gone
    objectives:
      - name: availability
        sli: availability
        target: 99
"""


@pytest.mark.parametrize(
    ("period_days", "factors"),
    [(30, [14.4, 6.0, 3.0, 1.0]), (28, [13.44, 5.6, 2.8, 0.9333]), (7, [3.36, 1.4, 0.7, 0.2333])],
)
def test_burn_table(period_days: int, factors: list[float]) -> None:
    table = burn_table(period_days * 86400)
    assert [b.factor for b in table] == factors
    assert [(b.tier, b.long_s, b.short_s) for b in table] == [
        ("page", 3600, 300), ("page", 21600, 1800), ("ticket", 86400, 7200), ("ticket", 259200, 21600)]


def test_burn_table_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="positive"):
        burn_table(0)
    with pytest.raises(ValueError, match="not 'page' or 'ticket'"):
        burn_table(86400, (("sms", 3600, 0.02),))


def _render(tmp_path: Path, *extra: str) -> Path:
    spec = tmp_path / "chat.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "rules"
    assert main(["alerts", "render", "--spec", str(spec), "--out", str(out), *extra]) == 0
    return out / "slo-chat.rules.yaml"


def _alert(doc: dict[str, Any], service: str, slo: str, tier: str) -> dict[str, Any]:
    for group in doc["groups"]:
        for rule in group["rules"]:
            labels = rule.get("labels", {})
            if rule.get("alert") == "SloBurnRate" and (labels["service"], labels["slo"], labels["slo_tier"]) == (service, slo, tier):
                return rule
    raise AssertionError(f"no SloBurnRate for {service}/{slo} {tier}")


def test_render_28d_table_and_guard(tmp_path: Path) -> None:
    doc = yaml.safe_load(_render(tmp_path, "--period", "28d").read_text())
    page = _alert(doc, "chat", "availability", "page")
    assert "> (13.44 * 0.01)" in page["expr"] and "> (5.6 * 0.01)" in page["expr"]
    assert 'slo:sli_total:rate1h{service="chat",slo="availability"} >= 1' in page["expr"]
    assert page["labels"]["severity"] == "critical" and page["labels"]["service_tier"] == "interactive"
    assert page["annotations"]["runbook_url"] == "docs/runbooks/SloBurnRate.md"
    gone = _alert(doc, "gone", "availability", "ticket")
    assert "slo:sli_total" not in gone["expr"]  # no traffic guard without a minimum rate
    records = {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}
    assert {"slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate3d", "slo:sli_error:ratio_rate28d",
            "slo:period_error_budget_remaining:ratio"} <= records


def test_render_rejects_bad_spec(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: gpufleet/v1\nservices:\n  - service: x\n    objectives: []\n")
    assert main(["alerts", "render", "--spec", str(bad), "--out", str(tmp_path / "o")]) == 2


def test_generated_rules_pass_promtool(tmp_path: Path) -> None:
    rules = _render(tmp_path)
    check = subprocess.run(["promtool", "check", "rules", "--lint-fatal", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    doc = yaml.safe_load(rules.read_text())

    def expected(service: str, tier: str, value: str) -> dict[str, Any]:
        rule = _alert(doc, service, "availability", tier)
        ann = {k: v.replace("{{ $value | humanizePercentage }}", value) for k, v in rule["annotations"].items()}
        return {"exp_labels": rule["labels"], "exp_annotations": ann}

    nodata = next(r for g in doc["groups"] for r in g["rules"]
                  if r.get("alert") == "SloNoData" and r["labels"]["service"] == "gone")
    req = "gpufleet_serving_requests_total"
    ttft = "gpufleet_serving_time_to_first_token_seconds"
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                # chat: 10 req/s, 20% errors: burns 20x a 1% budget (25 h of data so the 1d window is full)
                {"series": f'{req}{{service="chat",outcome="ok"}}', "values": "0+480x1500"},
                {"series": f'{req}{{service="chat",outcome="error"}}', "values": "0+120x1500"},
                # quiet: 50% errors but 0.1 req/s, under the 1 req/s guard
                {"series": f'{req}{{service="quiet",outcome="ok"}}', "values": "0+3x1500"},
                {"series": f'{req}{{service="quiet",outcome="error"}}', "values": "0+3x1500"},
                # healthy: 0.5% errors, inside its budget
                {"series": f'{req}{{service="healthy",outcome="ok"}}', "values": "0+597x1500"},
                {"series": f'{req}{{service="healthy",outcome="error"}}', "values": "0+3x1500"},
                # TTFT as Prometheus 3 writes whole-number bounds: le="1.0"; 10% of requests slower than 1 s
                {"series": f'{ttft}_bucket{{service="chat",le="0.5"}}', "values": "0+300x1500"},
                {"series": f'{ttft}_bucket{{service="chat",le="1.0"}}', "values": "0+540x1500"},
                {"series": f'{ttft}_bucket{{service="chat",le="+Inf"}}', "values": "0+600x1500"},
                {"series": f'{ttft}_count{{service="chat"}}', "values": "0+600x1500"},
            ],
            "promql_expr_test": [
                {"expr": 'slo:sli_error:ratio_rate5m{slo="ttft-1s"}', "eval_time": "30m",
                 "exp_samples": [{"labels": 'slo:sli_error:ratio_rate5m{service="chat",slo="ttft-1s"}', "value": 0.1}]},
                {"expr": 'slo:sli_error:ratio_rate1h{service="chat",slo="availability"}', "eval_time": "30m",
                 "exp_samples": [{"labels": 'slo:sli_error:ratio_rate1h{service="chat",slo="availability"}', "value": 0.2}]},
            ],
            "alert_rule_test": [
                {"eval_time": "25h", "alertname": "SloBurnRate",
                 "exp_alerts": [expected("chat", "page", "20%"), expected("chat", "ticket", "20%")]},
                {"eval_time": "10m", "alertname": "SloNoData", "exp_alerts": []},
                {"eval_time": "30m", "alertname": "SloNoData", "exp_alerts": [{
                    "exp_labels": nodata["labels"],
                    "exp_annotations": {k: v.replace("{{ $value }}", "1") for k, v in nodata["annotations"].items()}}]},
            ],
        }],
    }
    test_file = tmp_path / "slo_test.yaml"
    test_file.write_text(yaml.safe_dump(test, sort_keys=False))
    out = subprocess.run(["promtool", "test", "rules", str(test_file)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
