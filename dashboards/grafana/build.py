"""Write the dashboards and Grafana provisioning files: ``python -m gpufleet.dashboards.grafana.build [DIR]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from gpufleet.dashboards.grafana.fleet import fleet_dashboard
from gpufleet.dashboards.grafana.serving import serving_dashboard

__all__ = ["FILES", "render_all", "write_all", "HERE"]

HERE = Path(__file__).resolve().parent
DATASOURCE = """\
# Grafana data source provisioning: a Prometheus that scrapes gpufleet exporters and inference engines.
apiVersion: 1
datasources:
  - name: Prometheus
    type: prometheus
    uid: gpufleet-prometheus
    access: proxy
    url: ${PROMETHEUS_URL:-http://prometheus:9090}
    isDefault: true
    jsonData:
      timeInterval: 15s
"""
PROVIDER = """\
# Grafana dashboard provider: loads the gpufleet dashboards from the folder they are mounted at.
apiVersion: 1
providers:
  - name: gpufleet
    folder: gpufleet
    type: file
    disableDeletion: false
    allowUiUpdates: true
    updateIntervalSeconds: 60
    options:
      path: /var/lib/grafana/dashboards/gpufleet
      foldersFromFilesStructure: false
"""
FILES = {"gpu-fleet.json": fleet_dashboard, "serving-slo.json": serving_dashboard}


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def render_all() -> dict[str, str]:
    """Relative path -> file text for every generated file."""
    out = {name: _text(make()) for name, make in FILES.items()}
    out["provisioning/datasources/gpufleet.yaml"] = DATASOURCE
    out["provisioning/dashboards/gpufleet.yaml"] = PROVIDER
    return out


def write_all(root: Path = HERE) -> list[Path]:
    """Write every file under ``root``; returns the paths written."""
    written = []
    for rel, text in render_all().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(p)
