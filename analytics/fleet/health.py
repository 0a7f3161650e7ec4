"""Pure rules that turn a GPU inventory, its latest readings and its XIDs into a health state.

States, worst first:

- ``lost``: the GPU's last ``gpufleet_gpu_up`` is 0 (fell off the bus) or it has not reported for
  longer than ``HealthRules.stale_s`` before the end of the window.
- ``critical``: a critical XID (46, 48, 61, 62, 64, 74, 79, 95, 119, 120) within ``recent_s``.
- ``warning``: a warning XID (63, 92, 94, unknown codes) within ``recent_s``, a failed row remap, or a
  temperature at or above ``hot_celsius``.
- ``healthy``: none of the above. Application XIDs (13, 31, 43, ...) never change the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from gpufleet.core.naming import xid_info

__all__ = ["STATES", "HealthRules", "classify", "by_model_state", "lost_gpus", "xid_summary"]

STATES = ("lost", "critical", "warning", "healthy")


@dataclass(frozen=True)
class HealthRules:
    """Thresholds of the health states."""

    stale_s: float = 1800.0
    recent_s: float = 86400.0
    hot_celsius: float = 87.0


def classify(inventory: pl.DataFrame, latest: pl.DataFrame, events: pl.DataFrame, end: datetime,
             rules: HealthRules = HealthRules()) -> pl.DataFrame:
    """One row per GPU of ``inventory`` with its ``state`` and the ``reason`` for it.

    ``inventory``: gpu_uuid, cluster, node, gpu_index, gpu_model, last_ts.
    ``latest``: gpu_uuid and the latest reading per metric as columns (``up``, ``temperature_celsius``,
    ``row_remap_failure``, ...; missing columns count as unknown).
    ``events``: XID events with ts, gpu_uuid, code, severity.
    """
    frame = inventory.join(latest, on="gpu_uuid", how="left") if latest.height else inventory
    for col in ("up", "temperature_celsius", "row_remap_failure"):
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    recent = events.filter(pl.col("ts") > end - timedelta(seconds=rules.recent_s)) if events.height else events
    worst: dict[str, tuple[str, int]] = {}
    for uuid, code, severity in recent.select("gpu_uuid", "code", "severity").iter_rows() if recent.height else ():
        if uuid is None or severity not in ("critical", "warning"):
            continue
        if uuid not in worst or (severity == "critical" and worst[uuid][0] != "critical"):
            worst[uuid] = (severity, int(code))
    stale_before = end - timedelta(seconds=rules.stale_s)
    states: list[str] = []
    reasons: list[str] = []
    for row in frame.select("gpu_uuid", "last_ts", "up", "temperature_celsius", "row_remap_failure").iter_rows():
        uuid, last_ts, up, temp, remap = row
        state, reason = "healthy", ""
        xid = worst.get(uuid)
        if up is not None and up < 0.5:
            state, reason = "lost", "gpu_up is 0 (not answering)"
        elif last_ts is not None and last_ts < stale_before:
            state, reason = "lost", f"no report since {last_ts:%Y-%m-%d %H:%M} UTC"
        elif xid and xid[0] == "critical":
            state, reason = "critical", f"XID {xid[1]}: {xid_info(xid[1]).meaning}"
        elif xid:
            state, reason = "warning", f"XID {xid[1]}: {xid_info(xid[1]).meaning}"
        elif remap is not None and remap >= 1:
            state, reason = "warning", "row remap failed"
        elif temp is not None and temp >= rules.hot_celsius:
            state, reason = "warning", f"temperature {temp:.0f} C"
        states.append(state)
        reasons.append(reason)
    return frame.with_columns(pl.Series("state", states, dtype=pl.Utf8), pl.Series("reason", reasons, dtype=pl.Utf8))


def by_model_state(classified: pl.DataFrame) -> pl.DataFrame:
    """GPU counts per ``gpu_model`` x ``state`` (every state a column, zeros included) plus ``total``."""
    if classified.height == 0:
        return pl.DataFrame(schema={"gpu_model": pl.Utf8, **{s: pl.Int64 for s in STATES}, "total": pl.Int64})
    counts = classified.group_by("gpu_model", "state").agg(pl.len().cast(pl.Int64).alias("n"))
    models = sorted(counts["gpu_model"].unique().to_list(), key=lambda m: (m is None, m or ""))
    rows = []
    for m in models:
        sub = {s: n for _, s, n in counts.filter(pl.col("gpu_model").eq_missing(m)).iter_rows()}
        rows.append({"gpu_model": m, **{s: int(sub.get(s, 0)) for s in STATES}, "total": int(sum(sub.values()))})
    return pl.DataFrame(rows, schema={"gpu_model": pl.Utf8, **{s: pl.Int64 for s in STATES}, "total": pl.Int64})


def lost_gpus(classified: pl.DataFrame) -> pl.DataFrame:
    """GPUs in state ``lost``, by node."""
    cols = [c for c in ("cluster", "node", "gpu_index", "gpu_model", "gpu_uuid", "last_ts", "reason")
            if c in classified.columns]
    return classified.filter(pl.col("state") == "lost").select(cols).sort("node", "gpu_index")


def xid_summary(events: pl.DataFrame) -> pl.DataFrame:
    """XIDs per code with count, GPUs hit, meaning, severity and the operator action."""
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "code": pl.Int64, "events": pl.Float64, "gpus": pl.Int64, "meaning": pl.Utf8, "severity": pl.Utf8,
        "action": pl.Utf8, "last_ts": pl.Datetime("us")}
    if events.height == 0:
        return pl.DataFrame(schema=schema)
    agg = (events.group_by("code")
           .agg(pl.col("count").sum().alias("events"), pl.col("gpu_uuid").n_unique().cast(pl.Int64).alias("gpus"),
                pl.col("ts").max().alias("last_ts"))
           .with_columns(pl.col("code").cast(pl.Int64)))
    info = [xid_info(int(c)) for c in agg["code"]]
    agg = agg.with_columns(pl.Series("meaning", [i.meaning for i in info]),
                           pl.Series("severity", [i.severity for i in info]),
                           pl.Series("action", [i.action for i in info]))
    rank = {"critical": 0, "warning": 1, "application": 2}
    agg = agg.with_columns(pl.col("severity").replace_strict(rank, default=3).alias("_rank"))
    return agg.sort("_rank", "events", descending=[False, True]).select(list(schema)).cast(
        {"last_ts": pl.Datetime("us")})
