from datetime import datetime, timedelta

import polars as pl
import pytest

from gpufleet.analytics.fleet import HealthRules, by_model_state, classify, lost_gpus, xid_summary

END = datetime(2026, 1, 8)


def inventory(rows):
    return pl.DataFrame(
        [{"gpu_uuid": u, "cluster": "c", "node": n, "gpu_index": str(i), "gpu_model": m, "last_ts": t}
         for u, n, i, m, t in rows],
        schema={"gpu_uuid": pl.Utf8, "cluster": pl.Utf8, "node": pl.Utf8, "gpu_index": pl.Utf8, "gpu_model": pl.Utf8,
                "last_ts": pl.Datetime("us")})


def events(rows):
    return pl.DataFrame([{"ts": t, "gpu_uuid": u, "code": c, "severity": s, "count": 1.0} for t, u, c, s in rows],
                        schema={"ts": pl.Datetime("us"), "gpu_uuid": pl.Utf8, "code": pl.Int32, "severity": pl.Utf8,
                                "count": pl.Float64})


@pytest.mark.parametrize(("up", "last_ts", "xids", "temp", "remap", "state", "reason"), [
    (1.0, END, [], 50.0, 0.0, "healthy", ""),
    (0.0, END, [], None, None, "lost", "gpu_up is 0 (not answering)"),
    (1.0, END - timedelta(hours=1), [], 50.0, 0.0, "lost", "no report since 2026-01-07 23:00 UTC"),
    (1.0, END - timedelta(minutes=20), [], 50.0, 0.0, "healthy", ""),
    (1.0, END, [(END - timedelta(hours=2), 79, "critical")], 50.0, 0.0, "critical", "XID 79: GPU fell off the bus"),
    (1.0, END, [(END - timedelta(hours=30), 79, "critical")], 50.0, 0.0, "healthy", ""),
    (1.0, END, [(END - timedelta(hours=2), 94, "warning")], 50.0, 0.0, "warning", "XID 94: contained ECC error"),
    (1.0, END, [(END - timedelta(hours=2), 94, "warning"), (END - timedelta(hours=3), 48, "critical")], 50.0, 0.0,
     "critical", "XID 48: double-bit ECC error"),
    (1.0, END, [(END - timedelta(hours=2), 13, "application")], 50.0, 0.0, "healthy", ""),
    (1.0, END, [], 50.0, 1.0, "warning", "row remap failed"),
    (1.0, END, [], 91.0, 0.0, "warning", "temperature 91 C"),
    (0.0, END, [(END - timedelta(hours=1), 79, "critical")], None, None, "lost", "gpu_up is 0 (not answering)"),
])
def test_classify_states(up, last_ts, xids, temp, remap, state, reason):
    inv = inventory([("GPU-a", "n1", 0, "H100", last_ts)])
    latest = pl.DataFrame({"gpu_uuid": ["GPU-a"], "up": [up], "temperature_celsius": [temp],
                           "row_remap_failure": [remap]}, schema_overrides={"temperature_celsius": pl.Float64,
                                                                              "row_remap_failure": pl.Float64})
    out = classify(inv, latest, events([(t, "GPU-a", c, s) for t, c, s in xids]), END, HealthRules())
    assert out["state"].to_list() == [state]
    assert out["reason"].to_list() == [reason]


def test_classify_without_readings_keeps_every_gpu():
    inv = inventory([("GPU-a", "n1", 0, "H100", END), ("GPU-b", "n1", 1, "H100", END - timedelta(days=1))])
    out = classify(inv, pl.DataFrame(schema={"gpu_uuid": pl.Utf8}), events([]), END)
    assert out["state"].to_list() == ["healthy", "lost"]


def test_by_model_state_counts_every_state_column():
    frame = pl.DataFrame({"gpu_model": ["A100", "H100", "H100", "H100", "H100"],
                          "state": ["lost", "healthy", "healthy", "critical", "warning"]})
    table = by_model_state(frame)
    assert table.to_dicts() == [
        {"gpu_model": "A100", "lost": 1, "critical": 0, "warning": 0, "healthy": 0, "total": 1},
        {"gpu_model": "H100", "lost": 0, "critical": 1, "warning": 1, "healthy": 2, "total": 4},
    ]
    assert by_model_state(frame.clear()).columns == ["gpu_model", "lost", "critical", "warning", "healthy", "total"]


def test_lost_gpus_sorted_by_node_and_index():
    frame = inventory([("GPU-b", "n2", 1, "H100", END), ("GPU-a", "n1", 3, "H100", END),
                       ("GPU-c", "n1", 0, "H100", END)]).with_columns(
        pl.Series("state", ["lost", "lost", "healthy"]), pl.Series("reason", ["x", "y", ""]))
    assert lost_gpus(frame)["gpu_uuid"].to_list() == ["GPU-a", "GPU-b"]


def test_xid_summary_orders_critical_first_and_names_the_action():
    ev = events([(END, "GPU-a", 13, "application"), (END, "GPU-b", 13, "application"),
                 (END - timedelta(hours=1), "GPU-a", 79, "critical"), (END, "GPU-c", 94, "warning")])
    out = xid_summary(ev)
    assert out["code"].to_list() == [79, 94, 13]
    assert out["events"].to_list() == [1.0, 1.0, 2.0]
    assert out["gpus"].to_list() == [1, 1, 2]
    assert out["action"][0] == "drain the node and power-cycle"
    assert xid_summary(ev.clear()).height == 0
