"""Per-job and per-team MFU over time from a store: training tokens, job shapes, datasheet and probe ceilings."""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from gpufleet.analytics.capacity.specs import resolve_peak
from gpufleet.analytics.efficiency.mfu import ModelShape, hfu, mfu

__all__ = ["JobEfficiency", "job_efficiency", "team_efficiency"]


@dataclass(frozen=True)
class JobEfficiency:
    """One job's throughput and utilisation in one period; ``error`` says why figures are missing."""

    job: str
    team: str
    period: str
    gpu_model: str
    gpus: int
    tokens_per_s: float
    mfu: float | None
    hfu: float | None
    mfu_vs_probe: float | None
    error: str = ""


def _shape(labels: dict[str, str]) -> ModelShape:
    missing = [k for k in ("params", "layers", "heads", "head_dim", "seq_len") if not labels.get(k)]
    if missing:
        raise ValueError(f"model shape is missing {', '.join(missing)}")
    try:
        return ModelShape(float(labels["params"]), int(labels["layers"]), int(labels["heads"]),
                          int(labels["head_dim"]), int(labels["seq_len"]))
    except ValueError as exc:
        raise ValueError(f"model shape is not numeric: {exc}") from None


def _probe_ceiling(con: duckdb.DuckDBPyConnection, gpu_model: str) -> float | None:
    row = con.execute("SELECT median(value), min(unit) FROM probe_results WHERE probe IN ('matmul_bf16', "
                      "'matmul_bf16_flops') AND gpu_model = ?", [gpu_model]).fetchone()
    if row is None or row[0] is None:
        return None
    value, unit = float(row[0]), str(row[1] or "")
    return value * 1e12 if "TFLOP" in unit.upper() else value


def job_efficiency(con: duckdb.DuckDBPyConnection, period: str = "day", recompute: bool = False
                   ) -> list[JobEfficiency]:
    """MFU per training job and ``period`` (hour|day|week); a job with an unknown GPU or shape gets an error."""
    if period not in ("hour", "day", "week"):
        raise ValueError(f"period must be hour, day or week, got {period!r}")
    info = con.execute("SELECT s.labels FROM series s WHERE s.metric = 'gpufleet_training_job_info'").fetchall()
    jobs: dict[str, dict[str, str]] = {}
    for (labels,) in info:
        d = json.loads(labels)
        jobs.setdefault(d.get("job", ""), d)
    teams = dict(con.execute("SELECT namespace, team FROM namespaces").fetchall())
    rows = con.execute(
        "WITH d AS (SELECT json_extract_string(s.labels, '$.job') AS job, c.ts, c.delta, "
        "epoch(c.ts) - epoch(lag(c.ts) OVER (PARTITION BY c.series_id ORDER BY c.ts)) AS dt "
        "FROM counters c JOIN series s USING (series_id) WHERE s.metric = 'gpufleet_training_tokens_total') "
        f"SELECT job, date_trunc('{period}', ts) AS p, sum(delta) / sum(dt) AS tps, count(*) AS n "
        "FROM d WHERE dt > 0 GROUP BY ALL ORDER BY job, p").fetchall()
    out: list[JobEfficiency] = []
    for job, p, tps, _n in rows:
        labels = jobs.get(job, {})
        team = str(teams.get(labels.get("namespace"), labels.get("namespace", "")))
        model = labels.get("gpu_model", "")
        gpus = int(labels.get("gpus") or 0)
        base = dict(job=job, team=team, period=str(p), gpu_model=model, gpus=gpus, tokens_per_s=float(tps))
        try:
            if not labels:
                raise ValueError("no gpufleet_training_job_info series for this job")
            shape = _shape(labels)
            peak = resolve_peak(model)
            if peak is None:
                raise ValueError(f"unknown GPU model {model!r}: no datasheet peak")
            if gpus < 1:
                raise ValueError("GPU count of the job is missing")
            m = mfu(float(tps), shape, peak.bf16_flops * gpus)
            h = hfu(float(tps), shape, peak.bf16_flops * gpus, recompute) if recompute else m
            ceiling = _probe_ceiling(con, model)
            mp = mfu(float(tps), shape, ceiling * gpus) if ceiling else None
            out.append(JobEfficiency(**base, mfu=m, hfu=h, mfu_vs_probe=mp))
        except ValueError as exc:
            out.append(JobEfficiency(**base, mfu=None, hfu=None, mfu_vs_probe=None,
                                     error=f"job {job}: {exc}"))
    return out


def team_efficiency(rows: list[JobEfficiency]) -> dict[tuple[str, str], float]:
    """GPU-weighted mean MFU per (team, period), over jobs that have one."""
    acc: dict[tuple[str, str], tuple[float, int]] = {}
    for r in rows:
        if r.mfu is None:
            continue
        s, g = acc.get((r.team, r.period), (0.0, 0))
        acc[(r.team, r.period)] = (s + r.mfu * r.gpus, g + r.gpus)
    return {k: s / g for k, (s, g) in acc.items() if g}
