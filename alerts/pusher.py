"""Post analytics-side alerts to Alertmanager's v2 API, resend them while firing, resolve them when cleared.

The set of alerts that fired on the previous run is kept in a small JSON state file, so that an alert
missing from this run is sent once more with ``endsAt`` = now (resolved) instead of waiting to expire.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gpufleet.alerts.analytics_alerts import Alert

__all__ = ["PushResult", "post_alerts", "push"]

PushResult = dict[str, int]


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def post_alerts(url: str, payload: list[dict[str, Any]], timeout: float = 10.0) -> None:
    """POST ``payload`` to ``<url>/api/v2/alerts``; raise ``RuntimeError`` naming the URL on failure."""
    target = url.rstrip("/") + "/api/v2/alerts"
    req = urllib.request.Request(target, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{target}: HTTP {resp.status}")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{target}: HTTP {exc.code}: {exc.read().decode(errors='replace')[:200]}") from exc
    except urllib.error.URLError as exc:
        raise RuntimeError(f"{target}: cannot reach Alertmanager ({exc.reason})") from exc


def push(alerts: list[Alert], url: str, state_path: Path, *, resend_s: float = 300.0,
         now: Callable[[], datetime] = lambda: datetime.now(UTC),
         send: Callable[[str, list[dict[str, Any]]], None] = post_alerts) -> PushResult:
    """Send firing alerts (``endsAt`` = now + 3 x ``resend_s``) and resolve those that fired last time only.

    Call it at least every ``resend_s`` seconds while conditions last, as Alertmanager expects.
    """
    t = now()
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.is_file() else {}
    firing = {a.key: a for a in alerts}
    payload = []
    for key, alert in firing.items():
        started = state.get(key, {}).get("startsAt", _iso(t))
        payload.append(alert.payload(started, _iso(t + timedelta(seconds=3 * resend_s))))
    resolved = [v for k, v in state.items() if k not in firing]
    for old in resolved:
        payload.append({"labels": old["labels"], "annotations": old.get("annotations", {}),
                        "startsAt": old["startsAt"], "endsAt": _iso(t)})
    if payload:
        send(url, payload)
    new_state = {k: {"labels": a.labels, "annotations": a.annotations,
                     "startsAt": state.get(k, {}).get("startsAt", _iso(t))} for k, a in firing.items()}
    state_path.write_text(json.dumps(new_state, indent=1, sort_keys=True))
    return {"firing": len(firing), "resolved": len(resolved)}
