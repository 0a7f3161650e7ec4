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

    def hourly_frame(self, query: str, w: Window, labels: tuple[str, ...]) -> pl.DataFrame:
        """:meth:`hourly` as a frame: the ``labels`` columns (missing or empty: null), ``ts`` and ``value``."""
        res = self._api("query_range", {"query": query, "start": f"{_epoch(w.start + HOUR):.3f}",
                                        "end": f"{_epoch(w.end):.3f}", "step": "3600"})
        idx: list[int] = []
        stamps: list[float] = []
        values: list[str] = []
        for i, r in enumerate(res):
            vs = r["values"]
            idx.extend([i] * len(vs))
            stamps.extend(x[0] for x in vs)
            values.extend(x[1] for x in vs)
        lab = pl.DataFrame([tuple(r["metric"].get(k) or None for k in labels) for r in res],
                           schema=dict.fromkeys(labels, pl.String), orient="row").with_row_index("_i")
        pts = pl.DataFrame({"_i": idx, "_t": stamps, "value": values},
                           schema={"_i": pl.UInt32, "_t": pl.Float64, "value": pl.String})
        return (pts.join(lab, on="_i", how="left")
                .with_columns(ts=pl.from_epoch((pl.col("_t") * 1e6).round().cast(pl.Int64), time_unit="us")
                              - pl.duration(hours=1), value=pl.col("value").cast(pl.Float64))
                .select(*labels, "ts", "value"))

    def allocations(self, w: Window) -> pl.DataFrame:
        """GPU-seconds per hour, GPU and holder (no namespace: free), with node pricing facts and team."""
        gpu = {"gpu_uuid": "!="}  # as the collector: a GPU series without a UUID names no GPU
        mig = ("mig_instance", "mig_profile")
        up = self.hourly_frame(q.by((*_GPU, "gpu_model"), q.hourly_count(q.selector("gpufleet_gpu_up", gpu))), w,
                               (*_GPU, "gpu_model"))
        held = self.hourly_frame(q.by((*_GPU, *_HOLDER), q.hourly_sum(
            q.selector("gpufleet_gpu_pod_allocation", gpu))), w, (*_GPU, *_HOLDER))
        inst = self.hourly_frame(q.by((*_GPU, *mig), q.hourly_count(
            q.selector("gpufleet_gpu_memory_used_bytes", {**gpu, "mig_instance": "!="}))), w, (*_GPU, *mig))
        iv = self.interval
        profiles = pl.concat([held["mig_profile"], inst["mig_profile"]]).drop_nulls().unique().to_list()
        share = {p: mig_share(p) for p in profiles}

        def slice_share() -> pl.Expr:
            return (pl.when(pl.col("mig_instance").is_null()).then(1.0)
                    .otherwise(pl.col("mig_profile").replace_strict(share, default=1.0, return_dtype=pl.Float64)))

        out_cols = ["ts", "gpu_uuid", "cluster", "node", "namespace", "pod", "container", "gpu_seconds"]
        holders = held.with_columns(gpu_seconds=pl.col("value") * iv * slice_share()).select(out_cols)
        keys = ["gpu_uuid", "ts"]
        inst_held = (held.filter(pl.col("mig_instance").is_not_null())
                     .group_by(*keys, "mig_instance").agg(held=pl.col("value").sum()))
        free_slices = (inst.join(inst_held, on=[*keys, "mig_instance"], how="left")
                       .with_columns(left=pl.col("value") - pl.col("held").fill_null(0.0))
                       .filter(pl.col("left") > 1e-9)
                       .with_columns(gpu_seconds=pl.col("left") * iv * slice_share(), namespace=pl.lit(None, pl.String),
                                     pod=pl.lit(None, pl.String), container=pl.lit(None, pl.String))
                       .select(out_cols))
        whole_held = (held.filter(pl.col("mig_instance").is_null()).group_by(keys)
                      .agg(whole=pl.col("value").sum()))
        mig_scrapes = inst.group_by(keys).agg(migs=pl.col("value").max())
        free_whole = (up.group_by(keys).agg(pl.col("cluster").first(), pl.col("node").first(), n=pl.col("value").sum())
                      .join(mig_scrapes, on=keys, how="left").join(whole_held, on=keys, how="left")
                      .with_columns(left=pl.col("n") - pl.col("migs").fill_null(0.0) - pl.col("whole").fill_null(0.0))
                      .filter(pl.col("left") > 1e-9)
                      .with_columns(gpu_seconds=pl.col("left") * iv, namespace=pl.lit(None, pl.String),
                                    pod=pl.lit(None, pl.String), container=pl.lit(None, pl.String))
                      .select(out_cols))
        df = pl.concat([holders, free_slices, free_whole])
        if df.height == 0:
            return empty("allocations")
        gpus = (up.group_by("gpu_uuid").agg(pl.col("gpu_model").drop_nulls().first())
                .join(pl.concat([inst.select("gpu_uuid", "mig_profile"), held.select("gpu_uuid", "mig_profile")])
                      .drop_nulls().unique().sort("mig_profile").group_by("gpu_uuid")
                      .agg(pl.col("mig_profile").str.join(",")), on="gpu_uuid", how="left"))
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
            sums = self.hourly_frame(q.by(keys, q.hourly_sum(metric)), w, keys).rename({"value": "sum"})
            counts = self.hourly_frame(q.by(keys, q.hourly_count(metric)), w, keys).rename({"value": "count"})
            frames.append(sums.join(counts, on=[*keys, "ts"], how="left", nulls_equal=True)
                          .with_columns(metric=pl.lit(metric), count=pl.col("count").fill_null(0.0).round()))
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
