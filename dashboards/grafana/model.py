"""Grafana dashboard JSON building blocks (pure): panels, template variables, the dashboard frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Panel", "Query", "dashboard", "datasource_var", "query_var", "custom_var", "DS"]

DS = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel; ``main`` marks queries that must return data on the simulated fleet."""

    expr: str
    legend: str = ""
    instant: bool = False
    main: bool = True


@dataclass(frozen=True)
class Panel:
    """A panel: its kind (timeseries, stat, table, bargauge), title, unit and queries."""

    title: str
    kind: str
    queries: tuple[Query, ...]
    unit: str = "short"
    width: int = 12
    height: int = 8
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _target(q: Query, ref: str) -> dict[str, Any]:
    return {"datasource": DS, "refId": ref, "expr": q.expr, "legendFormat": q.legend or "__auto",
            "instant": q.instant, "range": not q.instant, "editorMode": "code"}


def _panel(p: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": pid, "type": p.kind, "title": p.title, "description": p.description, "datasource": DS,
        "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
        "options": {}, "targets": [_target(q, chr(ord("A") + i)) for i, q in enumerate(p.queries)],
    }
    if p.kind == "table":
        out["transformations"] = [{"id": "merge", "options": {}}]
    out.update(p.extra)
    return out


def _row(title: str, pid: int, y: int) -> dict[str, Any]:
    return {"id": pid, "type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}


def datasource_var() -> dict[str, Any]:
    """The Prometheus data source picker."""
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []}


def query_var(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    """A variable filled from ``label_values(...)``; "All" selects every value (regex ``.*``)."""
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "definition": query, "query": {"query": query, "refId": f"{name}-var"},
            "refresh": 2, "sort": 1, "multi": multi, "includeAll": True, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0, "options": []}


def custom_var(name: str, label: str, values: list[str], default: str) -> dict[str, Any]:
    """A fixed list of values (e.g. an SLO threshold that is a histogram bucket bound)."""
    return {"name": name, "label": label, "type": "custom", "query": ",".join(values), "multi": False,
            "includeAll": False, "current": {"selected": True, "text": default, "value": default}, "hide": 0,
            "options": [{"selected": v == default, "text": v, "value": v} for v in values]}


def dashboard(uid: str, title: str, rows: list[tuple[str, list[Panel]]], variables: list[dict[str, Any]],
              *, tags: list[str], description: str) -> dict[str, Any]:
    """The dashboard document: rows of panels laid out left to right on Grafana's 24-column grid."""
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for title_, row in rows:
        panels.append(_row(title_, pid, y))
        pid, y = pid + 1, y + 1
        x, row_h = 0, 0
        for p in row:
            if x + p.width > 24:
                x, y, row_h = 0, y + row_h, 0
            panels.append(_panel(p, pid, x, y))
            pid, x, row_h = pid + 1, x + p.width, max(row_h, p.height)
        y += row_h
    return {"uid": uid, "title": title, "description": description, "tags": tags, "editable": True,
            "schemaVersion": 39, "version": 1, "time": {"from": "now-6h", "to": "now"}, "refresh": "1m",
            "timezone": "utc", "graphTooltip": 1, "annotations": {"list": []}, "links": [],
            "templating": {"list": variables}, "panels": panels}
