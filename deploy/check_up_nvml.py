"""Check ``gpufleet up``'s NVML path on a machine with NVIDIA GPUs: exporter on real GPUs + collector.

Run where NVML works: ``python deploy/check_up_nvml.py [--seconds 30]``. It builds the plan ``up`` builds
(backend ``auto`` must pick ``nvml``), runs the exporter and collector children under the same supervisor,
prints the exporter's resident memory and a power reading, stops everything and checks the store. The
collector child calls the function ``gpufleet up-collector`` calls, so it also runs where only the core
dependencies are installed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import yaml

from gpufleet.deploy_cli import Supervisor, _ready, build_plan, children, collector_config


def main() -> int:
    """Run the check; 0 when the exporter served real GPUs into the store and everything stopped cleanly."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="How long to collect.")
    parser.add_argument("--listen", default="127.0.0.1:9400")
    args = parser.parse_args()
    db = Path(tempfile.mkdtemp()) / "fleet.duckdb"
    plan, why = build_plan(db, "auto", args.listen, 1, 7, 1.0, 2.0, None)
    print(f"backend {plan.backend}: {why}")
    if plan.backend != "nvml":
        return 1
    procs = children(plan)
    procs[1].argv = [sys.executable, "-c", "from pathlib import Path; from gpufleet.deploy_cli import _run_collector; "
                     f"_run_collector(Path({str(plan.runtime / 'collector.yaml')!r}), 2.0)"]
    plan.runtime.mkdir(exist_ok=True)
    (plan.runtime / "collector.yaml").write_text(yaml.safe_dump(collector_config(plan)))
    said: list[str] = []
    sup = Supervisor(procs, ready=_ready(plan), say=lambda s: (said.append(s), print(s, flush=True)))
    runner = threading.Thread(target=lambda: said.append(f"code {sup.run()}"))
    runner.start()
    time.sleep(args.seconds)
    exporter = procs[0].proc
    if exporter is not None:
        status = Path(f"/proc/{exporter.pid}/status").read_text()
        print("exporter memory:", ", ".join(x.replace("\t", " ") for x in status.splitlines()
                                             if x.startswith(("VmRSS", "VmHWM"))))
    with urllib.request.urlopen(f"http://{args.listen}/metrics", timeout=10) as resp:
        body = resp.read().decode()
    print("power:", [x for x in body.splitlines() if x.startswith("gpufleet_gpu_power_watts")][:1])
    started = time.perf_counter()
    sup.request_stop()
    runner.join(120)
    print(f"stopped in {time.perf_counter() - started:.1f} s: {said[-1]}")
    with duckdb.connect(str(db), read_only=True) as con:
        batches = con.execute("SELECT count(*) FROM batches").fetchone()
        gpus = con.execute("SELECT gpu_model, count(*) FROM gpus GROUP BY 1").fetchall()
    wal = Path(f"{db}.wal").exists()
    print(f"batches {batches}, gpus {gpus}, write-ahead log left: {wal}")
    return 0 if said[-1] == "code 0" and batches and batches[0] > 0 and gpus and not wal else 1


if __name__ == "__main__":
    sys.exit(main())
