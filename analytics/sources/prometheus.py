"""``PrometheusSource``: the report frames from a Prometheus-compatible HTTP API, computed by PromQL.

Works with Prometheus, VictoriaMetrics, Thanos and Mimir.

It reads what the gpufleet exporter and the engines expose, with the target labels (``cluster``,
``namespace``, ``pod``, ``service``, ``node``) a scrape config sets, as the collector would:

- GPU time from ``gpufleet_gpu_up`` (a GPU exists), ``gpufleet_gpu_pod_allocation`` (who holds it, and
  which share) and ``gpufleet_gpu_memory_used_bytes{mig_instance!=""}`` (a MIG instance exists): each
  sample stands for one scrape interval, the store's ``interval x share`` rule.
- Node pricing facts from ``gpufleet_node_info``; teams from ``kube_namespace_labels``.
- Activity gauges, the energy counter, engine counters (through the collector's engine adapters) and
  kube-state-metrics GPU requests.

Hourly sums, counts and counter deltas are computed by the server (``sum_over_time`` and friends with
``sum by``); only one point per GPU, holder and hour comes back. Probe results and stored prices live
in the store only: here they are empty, and reports price from the catalog.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from typing import Any

import httpx
import polars as pl

from gpufleet.analytics.cost.query import SERVING_METRICS, UTILIZATION_METRICS, Window
from gpufleet.analytics.sources import promql as q
from gpufleet.analytics.sources.base import conform, empty
from gpufleet.collectors.adapters.engines import FAMILIES, LABELS
from gpufleet.collectors.dimensions import mig_share

__all__ = ["PrometheusSource", "PrometheusError"]

HOUR = dt.timedelta(hours=1)
_EPOCH = dt.datetime(1970, 1, 1)
_GPU = ("cluster", "node", "gpu_uuid")
_HOLDER = ("mig_instance", "mig_profile", "namespace", "pod", "container")
_TARGET = ("service", "namespace", "pod", "node")
# How far back window() looks for the newest hour of data, shortest first.
_LOOKBACK_DAYS = (2, 8, 35, 400)


class PrometheusError(ValueError):
    """The API cannot be reached or answered an error; the message names the URL and the query.

    A ValueError because it is bad input to a report: the ``--source`` it was given.
    """


def _epoch(t: dt.datetime) -> float:
    return (t - _EPOCH).total_seconds()


def _from_epoch(s: float) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=round(s))


class PrometheusSource:
    """Answers the :class:`~gpufleet.analytics.sources.base.Source` frames from ``url``'s ``/api/v1``.

    ``scrape_interval_s`` is the interval the GPU series are scraped at (one sample = that many GPU
    seconds). ``end`` pins the end of windows (default: the hour after the newest data).
    """

    def __init__(self, url: str, *, scrape_interval_s: float = 60.0, end: dt.datetime | None = None,
                 client: httpx.Client | None = None, timeout_s: float = 300.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"prometheus URL {url!r}: use http://HOST:PORT or https://HOST:PORT")
        if scrape_interval_s <= 0:
            raise ValueError(f"scrape interval {scrape_interval_s}: must be positive seconds")
        self.url = url.rstrip("/")
        self.interval = float(scrape_interval_s)
        self.end = end
        self.client = client or httpx.Client(timeout=timeout_s)

    # -- HTTP ------------------------------------------------------------------------------------

    def _api(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/{path}"
        try:
            resp = self.client.post(url, data=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{url}: {exc}") from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or body.get("status") != "success":
            why = body.get("error") or resp.text[:300]
            raise PrometheusError(f"{url} answered {resp.status_code} for {params.get('query')!r}: {why}")
        return list(body["data"]["result"])

    def instant(self, query: str, at: dt.datetime) -> list[dict[str, Any]]:
        """An instant vector at ``at``."""
        return self._api("query", {"query": query, "time": f"{_epoch(at):.3f}"})

    def hourly(self, query: str, w: Window) -> list[tuple[dict[str, str], dt.datetime, float]]:
        """``query`` at every whole hour end ``T`` in the window, as (labels, hour start ``T - 1h``, value)."""
        res = self._api("query_range", {"query": query, "start": f"{_epoch(w.start + HOUR):.3f}",
                                        "end": f"{_epoch(w.end):.3f}", "step": "3600"})
        out = []
        for r in res:
            labels = {k: v for k, v in r["metric"].items() if k != "__name__"}
            for t, v in r["values"]:
                out.append((labels, _from_epoch(float(t)) - HOUR, float(v)))
        return out

    # -- the Source frames -----------------------------------------------------------------------

    def window(self, length: dt.timedelta) -> Window:
        """The window of ``length`` ending after the newest hour holding a GPU sample (or at ``end``)."""
        if self.end is not None:
            return Window(self.end - length, self.end)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        ceil = now.replace(minute=0, second=0, microsecond=0) + HOUR
        expr = f"count({q.hourly_count(q.selector('gpufleet_gpu_up', {'gpu_uuid': '!='}))})"
        for days in _LOOKBACK_DAYS:
            points = self.hourly(expr, Window(ceil - dt.timedelta(days=days) - HOUR, ceil))
            hours = [ts for _, ts, v in points if v > 0]
            if hours:
                end = max(hours) + HOUR
                return Window(end - length, end)
        raise ValueError(f"{self.url} holds no gpufleet_gpu_up samples in the last {_LOOKBACK_DAYS[-1]} days "
                         "(nothing to cost)")

    def _facts(self, w: Window) -> tuple[pl.DataFrame, pl.DataFrame]:
        span = q.duration((w.end - w.start).total_seconds())
        at = w.end - dt.timedelta(milliseconds=1)
        node_cols = ("node", "cluster", "provider", "region", "instance_type", "pricing_category", "gpu_model")
        nodes = self.instant(q.by(node_cols, f"last_over_time(gpufleet_node_info[{span}])", "max"), at)
        nrows = {r["metric"]["node"]: {c: r["metric"].get(c) for c in node_cols} for r in nodes
                 if r["metric"].get("node")}
        teams = self.instant(q.by(("namespace", "label_team"), f"last_over_time(kube_namespace_labels[{span}])",
                                  "max"), at)
        trows = {r["metric"]["namespace"]: r["metric"].get("label_team") for r in teams
                 if r["metric"].get("namespace")}
        n = pl.DataFrame(list(nrows.values()), schema=dict.fromkeys(node_cols, pl.String))
        t = pl.DataFrame({"namespace": list(trows), "team": list(trows.values())},
                         schema={"namespace": pl.String, "team": pl.String})
        return n.rename({"cluster": "node_cluster", "gpu_model": "node_gpu_model"}), t

    def allocations(self, w: Window) -> pl.DataFrame:
        """GPU-seconds per hour, GPU and holder (no namespace: free), with node pricing facts and team."""
        gpu = {"gpu_uuid": "!="}  # as the collector: a GPU series without a UUID names no GPU
        up = self.hourly(q.by((*_GPU, "gpu_model"), q.hourly_count(q.selector("gpufleet_gpu_up", gpu))), w)
        held = self.hourly(q.by((*_GPU, *_HOLDER), q.hourly_sum(q.selector("gpufleet_gpu_pod_allocation", gpu))), w)
        inst = self.hourly(q.by((*_GPU, "mig_instance", "mig_profile"), q.hourly_count(
            q.selector("gpufleet_gpu_memory_used_bytes", {**gpu, "mig_instance": "!="}))), w)
        iv = self.interval
        model: dict[str, str | None] = {}
        where: dict[tuple[str, dt.datetime], tuple[str | None, str | None, float]] = {}
        for lab, ts, v in up:
            uuid = lab.get("gpu_uuid", "")
            model[uuid] = model.get(uuid) or lab.get("gpu_model")
            c, nd, n = where.get((uuid, ts), (lab.get("cluster"), lab.get("node"), 0.0))
            where[(uuid, ts)] = (c, nd, n + v)
        profiles: dict[str, set[str]] = defaultdict(set)
        mig_scrapes: dict[tuple[str, dt.datetime], float] = defaultdict(float)
        inst_free: dict[tuple[str, dt.datetime, str], list[Any]] = {}
        for lab, ts, v in inst:
            uuid, gi, prof = lab.get("gpu_uuid", ""), lab.get("mig_instance", ""), lab.get("mig_profile", "")
            profiles[uuid].add(prof)
            mig_scrapes[(uuid, ts)] = max(mig_scrapes[(uuid, ts)], v)
            inst_free[(uuid, ts, gi)] = [lab.get("cluster"), lab.get("node"), prof, v]
        whole_held: dict[tuple[str, dt.datetime], float] = defaultdict(float)
        rows: list[tuple[Any, ...]] = []
        for lab, ts, v in held:
            uuid, gi = lab.get("gpu_uuid", ""), lab.get("mig_instance", "")
            share = mig_share(lab.get("mig_profile")) if gi else 1.0
            if gi:
                if (uuid, ts, gi) in inst_free:
                    inst_free[(uuid, ts, gi)][3] -= v
            else:
                whole_held[(uuid, ts)] += v
            rows.append((ts, uuid, lab.get("cluster"), lab.get("node"), lab.get("namespace") or None,
                         lab.get("pod"), lab.get("container") or None, v * iv * share))
        for (uuid, ts, _gi), (c, nd, prof, left) in inst_free.items():
            if left > 1e-9:
                rows.append((ts, uuid, c, nd, None, None, None, left * iv * mig_share(prof)))
        for (uuid, ts), (c, nd, n) in where.items():
            left = n - mig_scrapes.get((uuid, ts), 0.0) - whole_held.get((uuid, ts), 0.0)
            if left > 1e-9:
                rows.append((ts, uuid, c, nd, None, None, None, left * iv))
        if not rows:
            return empty("allocations")
        df = pl.DataFrame(rows, schema={"ts": pl.Datetime("us"), "gpu_uuid": pl.String, "cluster": pl.String,
                                        "node": pl.String, "namespace": pl.String, "pod": pl.String,
                                        "container": pl.String, "gpu_seconds": pl.Float64}, orient="row")
        gpus = pl.DataFrame({"gpu_uuid": list(model), "gpu_model": list(model.values()),
                             "mig_profile": [",".join(sorted(profiles[u])) or None for u in model]},
                            schema={"gpu_uuid": pl.String, "gpu_model": pl.String, "mig_profile": pl.String})
        nodes, teams = self._facts(w)
        df = (df.group_by("ts", "gpu_uuid", "cluster", "node", "namespace", "pod", "container")
              .agg(pl.col("gpu_seconds").sum())
              .join(gpus, on="gpu_uuid", how="left").join(nodes, on="node", how="left")
              .join(teams, on="namespace", how="left")
              .with_columns(cluster=pl.coalesce("cluster", "node_cluster"),
                            gpu_model=pl.coalesce("gpu_model", "node_gpu_model")))
        return conform("allocations", df)

    def utilization(self, w: Window) -> pl.DataFrame:
        """Hourly sum and count of the three activity gauges per GPU (or MIG instance) and holder."""
        keys = ("gpu_uuid", "mig_instance", "namespace", "pod")
        frames = []
        for metric in UTILIZATION_METRICS:
            sums = self.hourly(q.by(keys, q.hourly_sum(metric)), w)
            counts = {(tuple(lab.get(k, "") for k in keys), ts): v
                      for lab, ts, v in self.hourly(q.by(keys, q.hourly_count(metric)), w)}
            rows = [(ts, metric, *(lab.get(k) or None for k in keys), v,
                     round(counts.get((tuple(lab.get(k, "") for k in keys), ts), 0.0))) for lab, ts, v in sums]
            frames.append(pl.DataFrame(rows, schema=list(empty("utilization").schema.items()), orient="row"))
        return conform("utilization", pl.concat(frames))

    def energy(self, w: Window) -> pl.DataFrame:
        """Joules per hour and GPU from the energy counter (whole GPUs only)."""
        sel = q.selector("gpufleet_gpu_energy_joules_total", {"mig_instance": ""})
        rows = [(ts, lab.get("gpu_uuid"), v) for lab, ts, v in self.hourly(q.by(("gpu_uuid",), q.hourly_delta(sel)), w)]
        return pl.DataFrame(rows, schema=list(empty("energy").schema.items()), orient="row")

    def serving(self, w: Window) -> pl.DataFrame:
        """Engine counters summed over the window per model, service, namespace, pod, node and outcome."""
        wanted = set(SERVING_METRICS)
        rows: list[tuple[Any, ...]] = []
        for src, dst, scale, engine, extra in FAMILIES:
            canon = {m for m in (dst, dst + "_sum") if m in wanted}
            if not canon or engine not in LABELS:
                continue
            metric = canon.pop()
            family = src + ("_sum" if metric == dst + "_sum" else "")
            renames = {k: v for k, v in LABELS[engine].items() if v in ("model", "outcome")}
            labels = (*renames, *_TARGET)
            totals: dict[tuple[str | None, ...], float] = defaultdict(float)
            for lab, _ts, v in self.hourly(q.by(labels, q.hourly_delta(family)), w):
                named = {renames.get(k, k): val for k, val in lab.items()}
                named.update(extra)
                key = tuple(named.get(c) or None for c in ("model", "service", "namespace", "pod", "node", "outcome"))
                totals[key] += v * scale
            rows += [(metric, *k, v) for k, v in totals.items()]
        return pl.DataFrame(rows, schema=list(empty("serving").schema.items()), orient="row")

    def requests(self, w: Window) -> pl.DataFrame:
        """The largest GPU request per pod and container over the window (kube-state-metrics)."""
        sel = q.selector("kube_pod_container_resource_requests", {"resource": "nvidia_com_gpu"})
        span = q.duration((w.end - w.start).total_seconds())
        res = self.instant(q.by(("namespace", "pod", "container"), f"max_over_time({sel}[{span}])", "max"),
                           w.end - dt.timedelta(milliseconds=1))
        rows = [(r["metric"].get("namespace"), r["metric"].get("pod"), r["metric"].get("container"),
                 float(r["value"][1])) for r in res]
        return pl.DataFrame(rows, schema=list(empty("requests").schema.items()), orient="row")

    def probes(self) -> pl.DataFrame:
        """Probe results are kept in the store only: empty here."""
        return empty("probes")

    def prices(self) -> pl.DataFrame:
        """Stored prices are kept in the store only: empty here (the catalog prices everything)."""
        return empty("prices")

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Block until the server answers a query (for freshly started servers)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.instant("1", dt.datetime.now(dt.UTC).replace(tzinfo=None))
                return
            except PrometheusError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
