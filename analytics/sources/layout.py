"""Where Parquet rollups live, and how to reach S3-compatible storage.

Layout: ``ROOT/table=NAME/date=YYYY-MM-DD/part-0.parquet`` (hive partitions).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

__all__ = ["TABLES", "DATED", "part_path", "table_glob", "storage_options", "is_remote"]

# Parquet table -> the Source frame it feeds. Hourly tables carry ``ts``; ``prices`` is one undated file.
TABLES = {"gpu_allocations_1h": "allocations", "gpu_utilization_1h": "utilization", "gpu_energy_1h": "energy",
          "serving_1h": "serving", "gpu_requests_1h": "requests", "probe_results": "probes", "prices": "prices"}
DATED = tuple(t for t in TABLES if t != "prices")


def is_remote(root: str) -> bool:
    """True for object-store URIs (``s3://``, ``gs://``, ``az://``...)."""
    return "://" in root and not root.startswith("file://")


def _root(root: str) -> str:
    return root.removeprefix("file://").rstrip("/")


def part_path(root: str, table: str, day: dt.date | None) -> str:
    """The one file of ``table`` for ``day`` (undated tables: ``day=None``)."""
    base = f"{_root(root)}/table={table}"
    return f"{base}/part-0.parquet" if day is None else f"{base}/date={day.isoformat()}/part-0.parquet"


def table_glob(root: str, table: str) -> str:
    """A glob over every file of ``table``."""
    return f"{_root(root)}/table={table}/**/*.parquet"


def storage_options(root: str, env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """Object-store options for ``root`` from the usual AWS variables, or None for local paths.

    ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) points at an S3-compatible server (MinIO, Ceph,
    moto); an ``http://`` endpoint allows plain HTTP.
    """
    if not is_remote(root):
        return None
    e = os.environ if env is None else env
    opts: dict[str, str] = {}
    endpoint = e.get("AWS_ENDPOINT_URL_S3") or e.get("AWS_ENDPOINT_URL")
    if endpoint:
        opts["aws_endpoint_url"] = endpoint
        if endpoint.startswith("http://"):
            opts["aws_allow_http"] = "true"
    for var, key in (("AWS_ACCESS_KEY_ID", "aws_access_key_id"), ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
                     ("AWS_SESSION_TOKEN", "aws_session_token")):
        if e.get(var):
            opts[key] = e[var]
    region = e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION")
    if region:
        opts["aws_region"] = region
    return opts
