"""``gpufleet report slo``: JSON and table output, per-SLO errors, and clear messages for bad input."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from gpufleet.analytics.slo.cli import parse_end
from gpufleet.main import main

SPEC = """
version: gpufleet/v1
window: 1h
services:
  - service: chat
    objectives:
      - {name: availability, sli: availability, target: 99}
      - {name: ttft-500ms, sli: latency, metric: ttft, threshold: 500ms, target: 90}
      - {name: slow, sli: latency, metric: ttfb, threshold: 1s, target: 90}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1767225840", datetime(2026, 1, 1, 0, 4)),
        ("2026-01-01T00:04:00Z", datetime(2026, 1, 1, 0, 4)),
        ("2026-01-01T01:04:00+01:00", datetime(2026, 1, 1, 0, 4)),
        ("2026-01-01 00:04", datetime(2026, 1, 1, 0, 4)),
    ],
)
def test_parse_end(text: str, expected: datetime) -> None:
    """Epoch seconds or ISO 8601, returned as naive UTC."""
    assert parse_end(text) == expected


def test_json_report_with_spec(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A spec with one unusable objective: that row is an error, the others are computed."""
    spec = tmp_path / "slo.yaml"
    spec.write_text(SPEC)
    code = main(["report", "slo", "--db", str(db), "--spec", str(spec), "--end", "2026-01-01T00:04:00Z", "--json"])
    assert code == 0
    rows = {r["slo"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"chat/availability", "chat/ttft-500ms", "chat/slow"}
    assert rows["chat/slow"]["status"] == "error" and "unknown latency metric 'ttfb'" in rows["chat/slow"]["message"]
    avail = rows["chat/availability"]
    assert (avail["events"], avail["bad_events"]) == (79, 4)
    assert avail["burn_rate"] == pytest.approx(4 / 79 / 0.01)
    assert avail["window_s"] == 3600 and avail["start"] == "2025-12-31T23:04:00Z"
    assert [w["factor"] for w in avail["burn_windows"]] == pytest.approx([0.02, 0.0083, 0.0042, 0.0014])
    assert rows["chat/ttft-500ms"]["sli_value"] == pytest.approx(45 / 70)


def test_default_specs_and_window(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --spec every service gets availability 99.5 % and TTFT <= 2 s at 99 %; --window overrides."""
    assert main(["report", "slo", "--db", str(db), "--window", "7d", "--json"]) == 0
    rows = {r["slo"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"chat/availability", "chat/ttft-2s", "other/availability", "other/ttft-2s"}
    assert {r["window_s"] for r in rows.values()} == {7 * 86400}
    assert rows["chat/ttft-2s"]["status"] == "error"  # 2 s is above this histogram's top bucket (1 s)
    assert rows["other/availability"]["sli_value"] == pytest.approx(1 - 40 / 50)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "{missing}"], "does not exist"),
        (["--window", "3 fortnights"], "--window: '3 fortnights' is not a duration"),
        (["--window", "1m"], "at least 5m"),
        (["--end", "yesterday"], "--end 'yesterday' is not epoch seconds or an ISO 8601 time"),
        (["--spec", "{bad_spec}"], "version 'v9' is not a known SLO format"),
        (["--spec", "{missing}"], "no such file"),
    ],
)
def test_bad_input_is_named(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                            message: str) -> None:
    """Bad flags and files stop with exit code 2 and a message naming the input."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: v9\n")
    subs = {"{missing}": str(tmp_path / "nope"), "{bad_spec}": str(bad)}
    argv = ["report", "slo", "--db", str(db), *[subs.get(a, a) for a in args]]
    assert main(argv) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")


def test_low_traffic_holds_alerts(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Under ``min_request_rate`` the SLO is reported as low traffic, burning but not alerting."""
    spec = tmp_path / "low.yaml"
    spec.write_text("""
version: gpufleet/v1
window: 1h
services:
  - service: chat
    min_request_rate: 1      # requests/s; chat had 79 in the hour
    objectives:
      - {name: availability, sli: availability, target: 99}
""")
    assert main(["report", "slo", "--db", str(db), "--spec", str(spec), "--end", "1767225840", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "low traffic" and "under the minimum 1/s" in row["message"]
    assert row["burn_rate"] == pytest.approx(4 / 79 / 0.01)
    assert [w["firing"] for w in row["burn_windows"]] == [False] * 4
