"""Read-only access to the store for the app: opening, the facts the filters offer, and clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from gpufleet.analytics.fleet import store_range
from gpufleet.core.store import StoreError, open_readonly

__all__ = ["StoreInfo", "EmptyStore", "reading", "store_info", "StoreError"]


class EmptyStore(Exception):
    """The store exists but holds no scrapes yet."""


@dataclass(frozen=True)
class StoreInfo:
    """What a store holds: its time range and the values the filters can take."""

    path: str
    first: datetime
    last: datetime
    gpus: int
    clusters: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    gpu_models: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


@contextmanager
def reading(db: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed on exit so a writer is never kept waiting on this app.

    Raises :class:`StoreError` (missing file, store locked by a writer, not a DuckDB file) with one clear line.
    """
    try:
        con = open_readonly(db)
    except duckdb.Error as exc:  # e.g. a file that is not a DuckDB database
        raise StoreError(f"cannot open store {db}: {exc}") from exc
    try:
        yield con
    finally:
        con.close()


def _column(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    return [r[0] for r in con.execute(sql).fetchall() if r[0]]


def store_info(con: duckdb.DuckDBPyConnection, path: str | Path) -> StoreInfo:
    """Facts for the filters; raises :class:`EmptyStore` when nothing has landed yet."""
    try:
        rng = store_range(con)
    except duckdb.CatalogException as exc:
        raise StoreError(f"{path} is not a gpufleet store (no batches table)") from exc
    if rng is None:
        raise EmptyStore(f"store {path} holds no data yet")
    gpus = con.execute("SELECT count(*) FROM gpus").fetchall()[0][0]
    return StoreInfo(
        path=str(path), first=rng[0], last=rng[1], gpus=int(gpus),
        clusters=_column(con, "SELECT DISTINCT cluster FROM nodes ORDER BY 1"),
        teams=_column(con, "SELECT DISTINCT team FROM namespaces ORDER BY 1"),
        gpu_models=_column(con, "SELECT DISTINCT gpu_model FROM gpus ORDER BY 1"),
        models=_column(con, "SELECT DISTINCT labels->>'model' FROM series "
                            "WHERE metric LIKE 'gpufleet_serving_%' ORDER BY 1"),
    )
