"""The Helm chart: lint, render with Helm's own engine, validate every object, rules pass promtool."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from gpufleet.collectors.config import load_config
from gpufleet.deploy_cli import snapshot_path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "gpufleet"
SCHEMAS = ROOT / "deploy" / "schemas"
K8S_VERSIONS = ("1.26.0", kubernetes_validate.latest_version())  # the chart's kubeVersion floor, and the newest

_spec = importlib.util.spec_from_file_location("gpufleet_deploy_render", ROOT / "deploy" / "render.py")
assert _spec is not None and _spec.loader is not None
render_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_mod)


def _helm(values: dict[str, Any] | None = None, *, lint: bool = False, kube: str | None = None,
          chart: Path = CHART) -> dict[str, Any]:
    """Helm's answer, from a subprocess: Helm's Go runtime never loads into the test process."""
    cmd = [sys.executable, str(ROOT / "deploy" / "render.py"), "--json", "--values", json.dumps(values or {}),
           "--chart", str(chart)]
    if lint:
        cmd.append("--lint")
    if kube:
        cmd += ["--kube-version", kube]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)


def _render(values: dict[str, Any] | None = None) -> dict[str, str]:
    out = _helm(values)
    assert "error" not in out, out["error"]
    return render_mod.templates(out["files"])


def _docs(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return render_mod.documents(_render(values))


def _one(docs: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


def _crd_schema(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{kind.lower()}.json").read_text())


def validate(doc: dict[str, Any]) -> None:
    """CRDs against the vendored schemas, everything else against the Kubernetes API schemas (strict)."""
    if doc["apiVersion"].startswith("monitoring.coreos.com/"):
        schema = _crd_schema(doc["kind"])
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
        return
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return _docs()


@pytest.mark.parametrize("values, kube", [
    (None, None),
    ({"exporter": {"processMetrics": True}, "probes": {"enabled": False}}, "1.26.0"),
])
def test_chart_lints_strictly_without_warnings(values: dict[str, Any] | None, kube: str | None) -> None:
    result = _helm(values, lint=True, kube=kube)["lint"]
    assert result["errors"] == []
    assert result["total_charts_linted"] == 1
    # Helm severities: 1 info, 2 warning, 3 error; only the "icon is recommended" hint is allowed
    assert [m for m in result["messages"] if m["severity"] >= 2] == []
    assert [m["error"] for m in result["messages"]] == ["icon is recommended"]


def test_lint_catches_a_broken_template(tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "gpufleet"
    shutil.copytree(CHART, broken)
    path = broken / "templates" / "exporter-service.yaml"
    path.write_text(path.read_text().replace("{{ .Values.exporter.port }}", "{{ .Values.exporter.port"))
    out = _helm(lint=True, chart=broken)
    assert out["lint"]["errors"], out
    assert "error" in out and "exporter-service.yaml" in out["error"]


def test_manifests_and_rule_copies_are_up_to_date() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "deploy" / "render.py"), "--check"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"run: python deploy/render.py\n{result.stdout}{result.stderr}"


def test_committed_manifests_are_the_default_rendering() -> None:
    committed = {p.name: p.read_text() for p in sorted((ROOT / "deploy" / "manifests").glob("*.yaml"))}
    assert committed == render_mod.manifest_files(_render())


def test_every_rendered_object_validates(docs: list[dict[str, Any]]) -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert kinds == sorted([
        "ClusterRole/gpufleet-collector", "ClusterRoleBinding/gpufleet-collector", "ConfigMap/gpufleet-collector",
        "CronJob/gpufleet-probes", "DaemonSet/gpufleet-exporter", "Deployment/gpufleet-collector",
        "Deployment/gpufleet-dashboard", "PersistentVolumeClaim/gpufleet-store", "PrometheusRule/gpufleet-exporter",
        "PrometheusRule/gpufleet-finops", "PrometheusRule/gpufleet-gpu-health",
        "PrometheusRule/gpufleet-gpu-health-dcgm", "PrometheusRule/gpufleet-serving",
        "Service/gpufleet-dashboard", "Service/gpufleet-exporter", "ServiceAccount/gpufleet-collector",
        "ServiceAccount/gpufleet-exporter", "ServiceMonitor/gpufleet-exporter",
    ])
    for doc in docs:
        validate(doc)
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == "gpufleet"


@pytest.mark.parametrize("path", sorted((ROOT / "deploy" / "probes").glob("*.yaml")), ids=lambda p: p.name)
def test_standalone_probe_manifests_validate(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        validate(doc)


def test_validators_reject_mistakes(docs: list[dict[str, Any]]) -> None:
    sm = copy.deepcopy(_one(docs, "ServiceMonitor"))
    sm["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        validate(sm)
    sm = copy.deepcopy(_one(docs, "ServiceMonitor"))
    sm["spec"]["endpoints"][0]["interval"] = "15 seconds"
    with pytest.raises(jsonschema.ValidationError):
        validate(sm)
    rule = copy.deepcopy(_one(docs, "PrometheusRule", "-gpu-health"))
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    with pytest.raises(jsonschema.ValidationError, match="'expr' is a required property"):
        validate(rule)
    ds = copy.deepcopy(_one(docs, "DaemonSet"))
    ds["spec"]["template"]["spec"]["hostPid"] = True  # misspelt hostPID
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(ds)
    ds = copy.deepcopy(_one(docs, "DaemonSet"))
    ds["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = {"MiB": 192}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(ds)


def _exporter_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return _one(docs, "DaemonSet")["spec"]["template"]["spec"]


def test_exporter_daemonset_runs_on_gpu_nodes_with_read_only_pod_resources(docs: list[dict[str, Any]]) -> None:
    pod = _exporter_pod(docs)
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert "hostPID" not in pod  # per-process metrics are off by default
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "gpufleet.exporters"]
    assert "--backend=nvml" in container["args"] and "--process-memory" not in container["args"]
    assert "--pod-resources-socket=/var/lib/kubelet/pod-resources/kubelet.sock" in container["args"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["pod-resources"] == {"name": "pod-resources", "mountPath": "/var/lib/kubelet/pod-resources",
                                       "readOnly": True}
    assert mounts["probe-results"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["pod-resources"]["hostPath"] == {"path": "/var/lib/kubelet/pod-resources", "type": "Directory"}
    # sized from the measured resident memory (67 MiB on an H100 through NVML, 68 MiB on 8 simulated GPUs)
    assert container["resources"] == {"requests": {"cpu": "50m", "memory": "96Mi"},
                                      "limits": {"cpu": "500m", "memory": "192Mi"}}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    annotations = _one(docs, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "9400"


def test_process_metrics_turn_on_host_pid() -> None:
    docs = _docs({"exporter": {"processMetrics": True, "podLabelAllowlist": ["team", "app"],
                               "runtimeClassName": "nvidia"}})
    pod = _exporter_pod(docs)
    assert pod["hostPID"] is True
    assert pod["runtimeClassName"] == "nvidia"
    args = pod["containers"][0]["args"]
    assert "--process-memory" in args
    assert args[-2:] == ["--pod-label-allowlist=team", "--pod-label-allowlist=app"]
    validate(_one(docs, "DaemonSet"))


def test_service_monitor_selects_the_exporter_service(docs: list[dict[str, Any]]) -> None:
    sm = _one(docs, "ServiceMonitor")
    svc = _one(docs, "Service", "-exporter")
    assert svc["spec"]["clusterIP"] == "None"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert svc["spec"]["selector"].items() <= _one(docs, "DaemonSet")["spec"]["template"]["metadata"][
        "labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"] == "metrics"


def test_probe_cronjob_takes_a_whole_idle_node(docs: list[dict[str, Any]]) -> None:
    cron = _one(docs, "CronJob")
    assert cron["spec"]["schedule"] == "17 */6 * * *"
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 8, "memory": "32Gi"}
    assert container["command"][-1] == "/var/lib/gpufleet/probes/latest.json"
    exporter_args = _exporter_pod(docs)["containers"][0]["args"]
    assert f"--probe-results={container['command'][-1]}" in exporter_args


def test_collector_config_loads_and_the_dashboard_reads_its_snapshot(docs: list[dict[str, Any]],
                                                                     tmp_path: Path) -> None:
    text = _one(docs, "ConfigMap")["data"]["collector.yaml"]
    path = tmp_path / "collector.yaml"
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.store == Path("/var/lib/gpufleet/fleet.duckdb")
    assert [j.name for j in cfg.jobs] == ["kubernetes-pods"]
    assert cfg.jobs[0].kubernetes is not None and cfg.jobs[0].kubernetes.namespaces == []
    collector = _one(docs, "Deployment", "-collector")
    assert collector["spec"]["replicas"] == 1 and collector["spec"]["strategy"] == {"type": "Recreate"}
    (ccont,) = collector["spec"]["template"]["spec"]["containers"]
    assert ccont["command"][:2] == ["gpufleet", "up-collector"]
    dash = _one(docs, "Deployment", "-dashboard")["spec"]["template"]["spec"]
    (dcont,) = dash["containers"]
    assert dcont["command"][dcont["command"].index("--db") + 1] == str(snapshot_path(cfg.store))
    assert {m["name"]: m.get("readOnly") for m in dcont["volumeMounts"]}["store"] is True
    assert dash["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0][
        "topologyKey"] == "kubernetes.io/hostname"


def test_values_switch_parts_off() -> None:
    docs = _docs({"exporter": {"serviceMonitor": {"enabled": False}}, "probes": {"enabled": False},
                  "prometheusRules": {"enabled": False},
                  "collector": {"persistence": {"accessMode": "ReadWriteMany", "storageClassName": "nfs"},
                                "extraJobs": [{"name": "vllm", "static": [{"targets": ["vllm.serving:8000"]}]}]}})
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"ServiceMonitor", "CronJob", "PrometheusRule"}
    assert "affinity" not in _one(docs, "Deployment", "-dashboard")["spec"]["template"]["spec"]
    assert _one(docs, "PersistentVolumeClaim")["spec"]["storageClassName"] == "nfs"
    cfg = yaml.safe_load(_one(docs, "ConfigMap")["data"]["collector.yaml"])
    assert [j["name"] for j in cfg["jobs"]] == ["kubernetes-pods", "vllm"]
    for doc in docs:
        validate(doc)


def test_prometheus_rules_are_the_alert_files_and_pass_promtool(docs: list[dict[str, Any]], tmp_path: Path) -> None:
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    sources = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "alerts" / "rules").glob("*.yaml")}
    assert len(rules) == len(sources)
    files = []
    for doc in rules:
        stem = doc["metadata"]["name"].removeprefix("gpufleet-")
        assert doc["spec"] == sources[stem]  # the rules reach Prometheus exactly as alerts/ wrote them
        path = tmp_path / f"{stem}.yaml"
        path.write_text(yaml.safe_dump(doc["spec"], sort_keys=False))
        files.append(str(path))
    result = subprocess.run(["promtool", "check", "rules", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


@pytest.mark.parametrize("values, message", [
    ({"exporter": {"dialect": "prom"}}, "at '/exporter/dialect': value must be one of 'both', 'native', 'dcgm'"),
    ({"collector": {"persistance": {"size": "1Gi"}}}, "additional properties 'persistance' not allowed"),
    ({"collector": {"interval": "15 seconds"}}, "at '/collector/interval'"),
    ({"exporter": {"port": 70000}}, "at '/exporter/port'"),
    ({"collector": {"persistence": {"accessMode": "ReadOnlyMany"}}}, "at '/collector/persistence/accessMode'"),
])
def test_values_schema_names_the_bad_value(values: dict[str, Any], message: str) -> None:
    out = _helm(values)
    assert out["error"].startswith("HelmValuesError: ")
    assert message in out["error"]


def test_notes_tell_how_to_reach_the_dashboard() -> None:
    notes = _helm()["files"]["gpufleet/templates/NOTES.txt"]
    assert "kubectl -n gpufleet port-forward svc/gpufleet-dashboard 8501" in notes
