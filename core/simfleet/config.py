"""Configuration of a simulated fleet; every default is a realistic production mix."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

__all__ = ["FleetConfig"]


class FleetConfig(BaseModel):
    """What to simulate. Same config and seed: same fleet, same telemetry, byte for byte."""

    model_config = {"extra": "forbid"}

    seed: int = 7
    nodes: int = Field(16, ge=1, le=20_000)
    gpus_per_node: int = Field(8, ge=1, le=16)
    clusters: list[str] = Field(default_factory=lambda: ["us-east-prod", "eu-west-prod"])
    model_mix: dict[str, float] = Field(
        default_factory=lambda: {"H100": 0.5, "H200": 0.25, "A100": 0.15, "L40S": 0.10})
    pricing_mix: dict[str, float] = Field(
        default_factory=lambda: {"on_demand": 0.4, "reserved": 0.45, "spot": 0.15})
    mig_fraction: float = Field(0.5, ge=0, le=1, description="share of A100 nodes partitioned with MIG")
    start: float = Field(1_767_225_600.0, description="epoch seconds of the first sample (2026-01-01)")
    fault_scale: float = Field(1.0, ge=0, description="multiplies every fault rate")

    @field_validator("model_mix", "pricing_mix")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("weights must be non-negative and sum to more than 0")
        return v

    @field_validator("model_mix")
    @classmethod
    def _models(cls, v: dict[str, float]) -> dict[str, float]:
        from gpufleet.core.simfleet.specs import SPECS

        unknown = sorted(set(v) - set(SPECS))
        if unknown:
            raise ValueError(f"unknown GPU models {unknown}; known: {sorted(SPECS)}")
        return v
