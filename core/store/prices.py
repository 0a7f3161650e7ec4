"""Load a price list into the store's ``prices`` table, through the writer's connection, in one transaction."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from gpufleet.core.store.writer import StoreError, StoreWriter

__all__ = ["PriceRow", "PRICING_CATEGORIES", "load_prices", "read_prices"]

PRICING_CATEGORIES = ("on_demand", "reserved", "spot")


@dataclass(frozen=True)
class PriceRow:
    """One GPU-hour price: what a GPU model costs per hour under one pricing category from a date on."""

    provider: str
    region: str
    gpu_model: str
    pricing_category: str
    usd_per_gpu_hour: float
    effective_from: dt.date
    source: str

    def check(self) -> None:
        """Raise :class:`StoreError` naming the row and the field when a value cannot be stored."""
        where = f"price {self.provider}/{self.region}/{self.gpu_model}/{self.pricing_category}"
        if self.pricing_category not in PRICING_CATEGORIES:
            raise StoreError(f"{where}: pricing_category must be one of {', '.join(PRICING_CATEGORIES)}")
        if not math.isfinite(self.usd_per_gpu_hour) or self.usd_per_gpu_hour < 0:
            raise StoreError(f"{where}: usd_per_gpu_hour must be a finite number >= 0, got {self.usd_per_gpu_hour}")
        if not (self.provider and self.region and self.gpu_model):
            raise StoreError(f"{where}: provider, region and gpu_model must not be empty")


def load_prices(writer: StoreWriter, rows: Iterable[PriceRow], *, replace: bool = False) -> int:
    """Upsert ``rows`` (``replace``: first delete every price) in one transaction; returns the rows written.

    A row with the same provider, region, GPU model, category and effective date replaces the stored one,
    so loading the same catalog twice leaves the table unchanged.
    """
    rows = list(rows)
    for r in rows:
        r.check()
    con = writer.con
    try:
        con.begin()
        if replace:
            con.execute("DELETE FROM prices")
        if rows:
            con.executemany(
                "INSERT INTO prices VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                "(provider, region, gpu_model, pricing_category, effective_from) DO UPDATE SET "
                "usd_per_gpu_hour = excluded.usd_per_gpu_hour, source = excluded.source",
                [(r.provider, r.region, r.gpu_model, r.pricing_category, r.usd_per_gpu_hour, r.effective_from,
                  r.source) for r in rows])
        con.commit()
    except Exception:
        con.rollback()
        raise
    return len(rows)


def read_prices(con: duckdb.DuckDBPyConnection) -> list[PriceRow]:
    """Every stored price, oldest first (``con``: a DuckDB connection, read-only is fine)."""
    result = con.execute(
        "SELECT provider, region, gpu_model, pricing_category, usd_per_gpu_hour, effective_from, source "
        "FROM prices ORDER BY effective_from, provider, region, gpu_model, pricing_category").fetchall()
    return [PriceRow(*r) for r in result]
