"""The probe Job and CronJob manifests: valid YAML that runs the suite on whole, idle GPU nodes."""

from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "probes"


@pytest.mark.parametrize(("name", "kind", "suite"), [("cronjob.yaml", "CronJob", "quick"), ("job.yaml", "Job", "full")])
def test_manifest(name: str, kind: str, suite: str) -> None:
    doc = yaml.safe_load((DEPLOY / name).read_text())
    assert doc["kind"] == kind and doc["apiVersion"] == "batch/v1"
    job = doc["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else doc["spec"]
    pod = job["template"]["spec"]
    assert job["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    (c,) = pod["containers"]
    assert c["command"][:5] == ["gpufleet", "probe", "run", "--suite", suite]
    assert "--force" not in c["command"]  # busy GPUs are refused
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 8  # the whole node: only idle nodes fit
    assert {"name": "NCCL_NVLS_ENABLE", "value": "0"} in c["env"]
    assert c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    out = c["command"][c["command"].index("--out") + 1]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert out.startswith(mounts["results"] + "/")
    if kind == "CronJob":
        assert doc["spec"]["concurrencyPolicy"] == "Forbid"
