"""GPU-hour prices for turning lost throughput into $/day: a flag, the store's ``prices`` table, or a default."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from gpufleet.probes.specs import DEFAULT_USD_PER_GPU_HOUR, find_spec
from gpufleet.probes.stats import median
from gpufleet.probes.verdict import PriceLookup

__all__ = ["price_lookup", "store_prices"]


def store_prices(con: Any) -> dict[str, float]:
    """Median $/GPU-hour per model family over the latest price of each offer in a store's ``prices`` table.

    ``con`` is a DuckDB connection; a store without the table, or with no rows, gives an empty map.
    """
    try:
        rows = con.execute(
            "SELECT gpu_model, usd_per_gpu_hour FROM prices p WHERE effective_from = ("
            " SELECT max(effective_from) FROM prices q WHERE q.provider = p.provider AND q.region = p.region"
            " AND q.gpu_model = p.gpu_model AND q.pricing_category = p.pricing_category"
            " AND q.effective_from <= current_date)").fetchall()
    except Exception:  # noqa: BLE001 - no table or no store: no prices from it
        return {}
    per: dict[str, list[float]] = defaultdict(list)
    for model, usd in rows:
        spec = find_spec(str(model))
        per[spec.family if spec else str(model)].append(float(usd))
    return {fam: median(v) for fam, v in per.items()}


def price_lookup(price: float | None = None, stored: dict[str, float] | None = None,
                 defaults: dict[str, float] = DEFAULT_USD_PER_GPU_HOUR) -> PriceLookup:
    """A lookup that prefers ``price`` (every model), then ``stored`` per family, then the defaults."""
    if price is not None and price < 0:
        raise ValueError(f"price {price} $/GPU-hour must not be negative")
    stored = stored or {}

    def lookup(family: str) -> tuple[float | None, str | None]:
        if price is not None:
            return price, "flag"
        if family in stored:
            return stored[family], "store"
        if family in defaults:
            return defaults[family], "default"
        return None, None

    return lookup
