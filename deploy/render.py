"""Render the Helm chart into plain manifests: ``python deploy/render.py [--check] [--set-file VALUES]``.

1. Copies the alert rule files ``alerts/rules/*.yaml`` into the chart (``files/rules/``): a chart can only
   read files inside itself, and the PrometheusRule template inserts them as data.
2. Renders ``deploy/helm/gpufleet`` with Helm's own template engine (the Helm v4 Go SDK bundled by the
   ``helm-python-sdk`` wheel, no ``helm`` binary needed) as release ``gpufleet`` in namespace ``gpufleet``.
3. Writes one file per template into ``deploy/manifests/`` (``kubectl apply -f deploy/manifests/``).

``--check`` changes nothing and exits 1 when the copied rules or the manifests are out of date;
``--json [--values JSON] [--lint]`` prints Helm's rendering (and strict lint) as JSON for other programs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "gpufleet"
RULES = ROOT / "alerts" / "rules"
MANIFESTS = ROOT / "deploy" / "manifests"
RELEASE = "gpufleet"
NAMESPACE = "gpufleet"
HEADER = ("# Rendered from deploy/helm/gpufleet (release {release}, namespace {namespace}) by deploy/render.py;\n"
          "# edit the chart and re-run `python deploy/render.py`, not this file.\n")


def rule_files() -> dict[str, str]:
    """The chart's copy of each alert rule file: name -> text."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(RULES.glob("*.yaml"))}


def templates(raw: dict[str, str]) -> dict[str, str]:
    """Helm's ``chart/templates/x.yaml`` -> text map to template name (``x.yaml``) -> YAML, empty ones left out."""
    rendered = {}
    for name, text in sorted(raw.items()):
        if "/templates/" not in name or not name.endswith(".yaml") or not text.strip():
            continue
        rendered[name.rsplit("/", 1)[1]] = text
    return rendered


def render(values: dict[str, Any] | None = None, *, chart: Path = CHART, release: str = RELEASE,
           namespace: str = NAMESPACE) -> dict[str, str]:
    """Template name (``exporter-daemonset.yaml``) -> rendered YAML; empty templates are left out."""
    import helm_python as helm

    with helm.Chart.load(str(chart)) as loaded:
        return templates(loaded.render(values or {}, name=release, namespace=namespace))


def helm_json(values: dict[str, Any] | None, *, lint: bool = False, kube_version: str | None = None,
              chart: Path = CHART) -> dict[str, Any]:
    """Everything Helm says about the chart with ``values``: every rendered file, the strict lint, or the error.

    ``--json`` prints this, so callers (the tests) keep Helm's Go runtime out of their own process.
    """
    import helm_python as helm

    out: dict[str, Any] = {}
    try:
        if lint:
            out["lint"] = helm.lint(str(chart), values or None, strict=True, kube_version=kube_version)
        with helm.Chart.load(str(chart)) as loaded:
            out["files"] = loaded.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    except helm.HelmError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def documents(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object in a rendering."""
    docs: list[dict[str, Any]] = []
    for text in rendered.values():
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def manifest_files(rendered: dict[str, str]) -> dict[str, str]:
    """File name -> content of ``deploy/manifests/``."""
    header = HEADER.format(release=RELEASE, namespace=NAMESPACE)
    return {name: header + text.lstrip("\n").removeprefix("---\n") for name, text in rendered.items()}


def main(argv: list[str] | None = None) -> int:
    """Sync the rules, render, write (or check) the manifests."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 if anything is out of date; write nothing.")
    parser.add_argument("--json", action="store_true", help="Print Helm's rendering (and lint) as JSON; write "
                        "nothing.")
    parser.add_argument("--values", default="{}", help="With --json: values as a JSON object.")
    parser.add_argument("--lint", action="store_true", help="With --json: also lint strictly.")
    parser.add_argument("--kube-version", default=None, help="With --json --lint: the Kubernetes version.")
    parser.add_argument("--chart", type=Path, default=CHART, help="With --json: another chart folder.")
    args = parser.parse_args(argv)
    if args.json:
        print(json.dumps(helm_json(json.loads(args.values), lint=args.lint, kube_version=args.kube_version,
                                   chart=args.chart)))
        return 0
    stale: list[str] = []
    rules_dir = CHART / "files" / "rules"
    wanted_rules = rule_files()
    have_rules = {p.name: p.read_text(encoding="utf-8") for p in sorted(rules_dir.glob("*.yaml"))}
    if wanted_rules != have_rules:
        stale.append(f"{rules_dir.relative_to(ROOT)} differs from alerts/rules")
        if not args.check:
            rules_dir.mkdir(parents=True, exist_ok=True)
            for name in set(have_rules) - set(wanted_rules):
                (rules_dir / name).unlink()
            for name, text in wanted_rules.items():
                (rules_dir / name).write_text(text, encoding="utf-8")
    files = manifest_files(render())
    have = {p.name: p.read_text(encoding="utf-8") for p in sorted(MANIFESTS.glob("*.yaml"))}
    if files != have:
        stale.append(f"{MANIFESTS.relative_to(ROOT)} differs from the chart's rendering")
        if not args.check:
            MANIFESTS.mkdir(exist_ok=True)
            for name in set(have) - set(files):
                (MANIFESTS / name).unlink()
            for name, text in files.items():
                (MANIFESTS / name).write_text(text, encoding="utf-8")
    for line in stale:
        print(("out of date: " if args.check else "updated: ") + line)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
