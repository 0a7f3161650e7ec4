"""The price catalog: a YAML file of instance prices, discounts and energy facts, validated by pydantic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gpufleet.core.store.prices import PriceRow

__all__ = ["Catalog", "CatalogError", "Energy", "Instance", "DEFAULT_CATALOG", "load_catalog", "price_rows",
           "OPENCOST_DEFAULT_RATES", "split_node_price", "split_node_price_parts"]

DEFAULT_CATALOG = Path(__file__).parent / "catalog" / "prices.yaml"

# OpenCost's default custom-pricing rates ($/vCPU-h, $/GiB-h, $/GPU-h): the fixed ratios it uses to split
# a node's price between CPU, RAM and GPU when no component price is known.
OPENCOST_DEFAULT_RATES = {"cpu": 0.031611, "ram": 0.004237, "gpu": 0.95}


class CatalogError(ValueError):
    """The catalog file is missing or invalid; the message names the file, the key and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Discounts(_Strict):
    """Fractions off the on-demand price."""

    spot: float = Field(0.45, ge=0, lt=1)
    reserved: float = Field(0.57, ge=0, lt=1)


class Energy(_Strict):
    """Electricity price, data-centre overhead and grid carbon intensity."""

    usd_per_kwh: float = Field(0.10, ge=0)
    pue: float = Field(1.2, ge=1, le=3)
    grid_gco2_per_kwh: float = Field(475.0, ge=0)


class Instance(_Strict):
    """One instance type in the regions where it is sold at this price."""

    provider: str = Field(min_length=1)
    instance_type: str = Field(min_length=1)
    gpu_model: str = Field(min_length=1, description="GPU model as NVML reports it")
    gpus: int = Field(ge=1, le=64)
    vcpus: int = Field(ge=1)
    memory_gib: float = Field(gt=0)
    on_demand_usd_per_hour: float = Field(gt=0)
    usd_per_gpu_hour: float | None = Field(None, gt=0)
    gpu_share: Literal["all", "ratio"] = "all"
    regions: list[str] = Field(min_length=1)
    source: str = Field(min_length=1)

    def on_demand_gpu_hour(self) -> float:
        """On-demand $/GPU-hour: the explicit price, else the instance price split over its GPUs."""
        if self.usd_per_gpu_hour is not None:
            return self.usd_per_gpu_hour
        if self.gpu_share == "ratio":
            return split_node_price(self.on_demand_usd_per_hour, self.vcpus, self.memory_gib, self.gpus)
        return self.on_demand_usd_per_hour / self.gpus


class Catalog(_Strict):
    """The whole catalog file."""

    version: Literal[1] = 1
    as_of: dt.date
    currency: Literal["USD"] = "USD"
    discounts: Discounts = Discounts()
    energy: Energy = Energy()
    instances: list[Instance] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        seen: set[tuple[str, str, str]] = set()
        for inst in self.instances:
            for region in inst.regions:
                key = (inst.provider, region, inst.gpu_model)
                if key in seen:
                    raise ValueError(f"GPU model {inst.gpu_model!r} is priced twice in {inst.provider}/{region}; "
                                     "keep one instance entry per GPU model and region")
                seen.add(key)
        return self

    def instance_for(self, provider: str | None, instance_type: str | None) -> Instance | None:
        """The catalog entry for a node's instance type, if any."""
        return next((i for i in self.instances if i.provider == provider and i.instance_type == instance_type),
                    None)


def split_node_price_parts(node_price: float, vcpus: float, memory_gib: float, gpus: int,
                           rates: dict[str, float] | None = None) -> dict[str, float]:
    """A node's price split into its CPU, RAM and GPU parts by fixed per-unit rates (OpenCost's fallback).

    The rates keep their ratios and are scaled together so that the parts sum to ``node_price``.
    """
    r = rates or OPENCOST_DEFAULT_RATES
    base = {"cpu": vcpus * r["cpu"], "ram": memory_gib * r["ram"], "gpu": gpus * r["gpu"]}
    total = sum(base.values())
    if total <= 0:
        raise ValueError(f"cannot split a node price over vcpus={vcpus} memory_gib={memory_gib} gpus={gpus} "
                         "at zero rates")
    return {k: node_price * v / total for k, v in base.items()}


def split_node_price(node_usd_per_hour: float, vcpus: float, memory_gib: float, gpus: int,
                     rates: dict[str, float] | None = None) -> float:
    """$/GPU-hour from a node's total price, split by fixed CPU:RAM:GPU ratios (OpenCost's fallback)."""
    return split_node_price_parts(node_usd_per_hour, vcpus, memory_gib, gpus, rates)["gpu"] / gpus


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog; errors name the file, the key and what to change."""
    file = Path(path) if path is not None else DEFAULT_CATALOG
    try:
        data = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise CatalogError(f"{file}: no such catalog file (pass --catalog with an existing YAML file)") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{file}: not valid YAML ({exc}); fix the syntax at the line shown") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{file}: the top level must be a mapping with as_of and instances")
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise CatalogError(f"{file}: key {_where(err['loc'])}: {err['msg']}; got {err.get('input')!r}{more}. "
                           "Fix that value (see docs/cost.md for the catalog keys)") from None


def price_rows(catalog: Catalog) -> list[PriceRow]:
    """The catalog as $/GPU-hour rows for the store: every instance x region x pricing category."""
    rows: list[PriceRow] = []
    off = {"on_demand": 0.0, "reserved": catalog.discounts.reserved, "spot": catalog.discounts.spot}
    for inst in catalog.instances:
        base = inst.on_demand_gpu_hour()
        for region in inst.regions:
            for category, discount in off.items():
                rows.append(PriceRow(inst.provider, region, inst.gpu_model, category,
                                     round(base * (1 - discount), 6), catalog.as_of,
                                     f"{inst.instance_type}: {inst.source}"))
    return rows
