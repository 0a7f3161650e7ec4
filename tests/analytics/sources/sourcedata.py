"""A small fleet as scrapes at fixed times, loaded identically into a gpufleet store, Prometheus (promtool
backfill) and VictoriaMetrics (text import), plus the loopback servers the source tests need."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gpufleet.collectors.ingest import Scrape, to_batch
from gpufleet.collectors.target import Target
from gpufleet.core.simfleet.render import label_str
from gpufleet.core.store.maintenance import Retention, maintain
from gpufleet.core.store.writer import StoreWriter

START = 1_767_225_600  # 2026-01-01 00:00 UTC, on an hour boundary (samples land exactly on it)
STEP = 60
H100 = "NVIDIA H100 80GB HBM3"
H200 = "NVIDIA H200"

# GPUs: (uuid, node, index, model, holders by time: list of (namespace, pod, container, mig instance or ""))
NODES = {"node-a": ("c1", "aws", "us-east-1", "p5.48xlarge", "on_demand", H100, 4),
         "node-b": ("c2", "aws", "eu-west-1", "p5en.48xlarge", "reserved", H200, 2)}
TEAMS = {"chat-serving": "chat", "notebooks": "research", "research-train": "research",
         "search-serving": "search", "kube-system": "platform"}
MIG = {"1": "3g.40gb", "2": "1g.10gb"}


@dataclass(frozen=True)
class Sample:
    """One sample of one series (final labels, target labels merged)."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


def _holders(uuid: str, i: int) -> list[tuple[str, str, str, str]]:
    minute = i * STEP // 60
    if uuid == "GPU-a0":
        return [("chat-serving", "chat-0", "vllm", "")]
    if uuid == "GPU-a1":
        return [("notebooks", "nb-1", "jupyter", ""), ("notebooks", "nb-2", "jupyter", "")]
    if uuid == "GPU-a2":
        return [("research-train", "train-0", "trainer", "")] if minute < 150 else []
    if uuid == "GPU-b0":
        return [("search-serving", "search-0", "sglang", "1")]
    if uuid == "GPU-b1":
        return [("kube-system", "dcgm-0", "dcgm", "")]
    return []


def _gpus() -> list[tuple[str, str, int, str]]:
    out = []
    for node, (*_rest, model, n) in NODES.items():
        out += [(f"GPU-{node[-1]}{k}", node, k, model) for k in range(n)]
    return out


def node_text(node: str, i: int) -> str:
    """What the gpufleet exporter (native names) serves for ``node`` at scrape ``i``."""
    fams: dict[str, list[str]] = {}

    def add(name: str, labels: list[tuple[str, str]], value: float) -> None:
        fams.setdefault(name, []).append(f"{name}{label_str(labels)} {value!r}")

    cluster, prov, region, itype, pricing, model, n = NODES[node]
    minute = i * STEP // 60
    for uuid, nd, k, gmodel in _gpus():
        if nd != node:
            continue
        ident = [("gpu", str(k)), ("gpu_model", gmodel), ("gpu_uuid", uuid), ("node", node)]
        lost = uuid == "GPU-a3" and 130 <= minute < 150
        add("gpufleet_gpu_up", ident, 0.0 if lost else 1.0)
        if lost:
            continue
        holders = _holders(uuid, i)
        whole = [h for h in holders if not h[3]]
        pod = ([("container", whole[0][2]), ("namespace", whole[0][0]), ("pod", whole[0][1])]
               if len(whole) == 1 and uuid != "GPU-b0" else [])
        g = int(uuid[-1]) + (10 if node == "node-b" else 0)
        util = ((i * 7 + g * 13) % 100) / 100
        if uuid == "GPU-a1":  # notebooks: light use (Share)
            util = round(0.1 + util / 10, 6)
        elif uuid == "GPU-b1":  # a pod that never uses its GPU (Remove)
            util = 0.01
        add("gpufleet_gpu_utilization_ratio", ident + pod, util)
        add("gpufleet_gpu_sm_active_ratio", ident + pod, round(util * 0.8, 6))
        add("gpufleet_gpu_energy_joules_total", ident, float(1000 * g + 350 * STEP * (i + 1)))
        for ns, p, c, inst in holders:
            mig = [("mig_instance", inst), ("mig_profile", MIG[inst])] if inst else []
            add("gpufleet_gpu_pod_allocation", ident + mig + [("container", c), ("namespace", ns), ("pod", p)],
                1.0 / len(holders))
        if uuid == "GPU-b0":
            for inst, prof in MIG.items():
                held = [h for h in holders if h[3] == inst]
                ipod = [("container", held[0][2]), ("namespace", held[0][0]), ("pod", held[0][1])] if held else []
                mig = [("mig_instance", inst), ("mig_profile", prof)]
                add("gpufleet_gpu_memory_used_bytes", ident + mig + ipod, 1e9 * int(inst))
                add("gpufleet_gpu_sm_active_ratio", ident + mig + ipod, round(util / int(inst), 6))
    add("gpufleet_node_info", [("gpu_count", str(n)), ("gpu_model", model), ("instance_type", itype), ("node", node),
                               ("pricing_category", pricing), ("provider", prov), ("region", region)], 1.0)
    lines: list[str] = []
    for name, samples in fams.items():
        lines += [f"# TYPE {name} {'counter' if name.endswith('_total') else 'gauge'}", *samples]
    return "\n".join(lines) + "\n"


def kube_text(i: int) -> str:
    """kube-state-metrics: namespace teams and GPU requests."""
    lines = ["# TYPE kube_namespace_labels gauge"]
    lines += [f"kube_namespace_labels{label_str([('label_team', t), ('namespace', ns)])} 1" for ns, t in TEAMS.items()]
    req: set[str] = set()
    for uuid, node, _k, _m in _gpus():
        for ns, pod, c, _inst in _holders(uuid, i):
            lab = [("container", c), ("namespace", ns), ("node", node), ("pod", pod), ("resource", "nvidia_com_gpu"),
                   ("unit", "integer")]
            req.add(f"kube_pod_container_resource_requests{label_str(lab)} 1")
    return "\n".join([*lines, "# TYPE kube_pod_container_resource_requests gauge", *sorted(req)]) + "\n"


def engine_text(i: int) -> str:
    """The vLLM engine of chat-0."""
    lab = [("engine", "0"), ("model_name", "llama-3.1-8b")]
    ls = label_str(lab)
    n = i + 1
    out = []
    for name, v in (("vllm:prompt_tokens_total", 1200 * n), ("vllm:generation_tokens_total", 300 * n),
                    ("vllm:prefix_cache_hits_total", 200 * n)):
        out += [f"# TYPE {name} counter", f"{name}{ls} {v}"]
    out += ["# TYPE vllm:request_success_total counter",
            f"vllm:request_success_total{label_str([*lab, ('finished_reason', 'stop')])} {4 * n}",
            f"vllm:request_success_total{label_str([*lab, ('finished_reason', 'length')])} {n}"]
    for name, total in (("vllm:time_to_first_token_seconds", 0.75), ("vllm:e2e_request_latency_seconds", 6.5)):
        out.append(f"# TYPE {name} histogram")
        for b, c in (("0.1", 2 * n), ("0.5", 4 * n), ("+Inf", 5 * n)):
            out.append(f"{name}_bucket{label_str([*lab, ('le', b)])} {c}")
        out += [f"{name}_sum{ls} {total * n}", f"{name}_count{ls} {5 * n}"]
    return "\n".join(out) + "\n"


TARGETS = [Target("node-a:9400", {"cluster": "c1"}), Target("node-b:9400", {"cluster": "c2"}),
           Target("kube-state-metrics:8080", {"cluster": "c1"}),
           Target("chat-0:8000", {"cluster": "c1", "namespace": "chat-serving", "pod": "chat-0",
                                  "node": "node-a", "service": "chat-llama"})]


def text_for(target: Target, i: int) -> str:
    """Exposition text ``target`` serves at scrape ``i``."""
    if target.name.startswith("node-"):
        return node_text(target.name.split(":")[0], i)
    if target.name.startswith("kube"):
        return kube_text(i)
    return engine_text(i)


def scrapes(n: int) -> Iterator[Scrape]:
    """Every target's scrape at ``START + i * STEP`` for ``i < n``."""
    for i in range(n):
        for t in TARGETS:
            yield Scrape(t, float(START + i * STEP), text_for(t, i), interval_hint_s=STEP)


def build_store(path: Path, n: int) -> None:
    """Land ``n`` scrapes per target through the collector path, then build rollups."""
    batch = []
    with StoreWriter(path) as w:
        for s in scrapes(n):
            batch.append(to_batch(s))
            if len(batch) >= 200:
                w.write(batch)
                batch = []
        w.write(batch)
        maintain(w.con, Retention(raw_days=10_000))


def samples_text(n: int, *, with_ts_ms: bool) -> str:
    """The same samples as text with timestamps, target labels merged (series labels win) and instance/job."""
    out: list[tuple[str, str]] = []
    for i in range(n):
        ts = START + i * STEP
        for t in TARGETS:
            extra = {**t.labels, "instance": t.name, "job": t.name.split(":")[0].rstrip("-0123456789ab") or "job"}
            for line in text_for(t, i).splitlines():
                if line.startswith("#"):
                    continue
                name_labels, value = line.rsplit(" ", 1)
                name, _, body = name_labels.partition("{")
                pairs = dict(_parse_labels(body.rstrip("}")))
                for k, v in extra.items():
                    pairs.setdefault(k, v)
                stamp = f"{ts * 1000}" if with_ts_ms else f"{ts}"
                out.append((name, f"{name}{label_str(sorted(pairs.items()))} {value} {stamp}"))
    out.sort(key=lambda x: x[0])  # one family at a time (stable: each series stays in time order)
    return "\n".join(line for _, line in out) + "\n"


def _parse_labels(body: str) -> list[tuple[str, str]]:
    out = []
    for part in body.split('",'):
        if not part:
            continue
        k, _, v = part.partition('="')
        out.append((k, v.rstrip('"')))
    return out


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}") from None
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


@contextmanager
def prometheus_with(work: Path, n: int) -> Iterator[str]:
    """Backfill the samples with promtool, start Prometheus on them, yield its URL."""
    work.mkdir(parents=True, exist_ok=True)
    om = work / "data.om"
    om.write_text(samples_text(n, with_ts_ms=False) + "# EOF\n")
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(om), str(work / "tsdb")],
                   check=True, capture_output=True)
    (work / "prom.yml").write_text("global: {}\n")
    port = free_port()
    proc = subprocess.Popen(["prometheus", f"--storage.tsdb.path={work / 'tsdb'}", f"--config.file={work / 'prom.yml'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(f"http://127.0.0.1:{port}/-/ready", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def victoria_with(work: Path, n: int) -> Iterator[str]:
    """Start VictoriaMetrics, import the samples as Prometheus text, yield its URL."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(["victoria-metrics", f"-storageDataPath={work / 'vm'}", f"-httpListenAddr=127.0.0.1:{port}",
                             "-retentionPeriod=100y", "-loggerLevel=ERROR", "-search.disableCache"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url + "/health", proc)
        req = urllib.request.Request(url + "/api/v1/import/prometheus", data=samples_text(n, with_ts_ms=True).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=60):
            pass
        with urllib.request.urlopen(url + "/internal/force_flush", timeout=30):
            pass
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
