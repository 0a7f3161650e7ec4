"""Model FLOPs utilisation: PaLM's 6N + 12 L H Q T FLOPs per token against a peak FLOP/s.

MFU counts the FLOPs the model needs (forward and backward); HFU also counts the forward pass
recomputed under activation checkpointing (full recomputation adds one forward: 8N + 16 LHQT).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelShape", "flops_per_token", "hardware_flops_per_token", "mfu", "hfu"]


@dataclass(frozen=True)
class ModelShape:
    """Non-embedding parameters ``params``, ``layers`` L, ``heads`` H, ``head_dim`` Q, ``seq_len`` T."""

    params: float
    layers: int
    heads: int
    head_dim: int
    seq_len: int

    def check(self) -> None:
        """Raise ValueError naming the first field that is not positive."""
        for name in ("params", "layers", "heads", "head_dim", "seq_len"):
            if not getattr(self, name) > 0:
                raise ValueError(f"model shape: {name} must be > 0, got {getattr(self, name)}")


def flops_per_token(shape: ModelShape) -> float:
    """Training FLOPs per token, ``6N + 12 L H Q T`` (PaLM appendix B)."""
    shape.check()
    return 6.0 * shape.params + 12.0 * shape.layers * shape.heads * shape.head_dim * shape.seq_len


def hardware_flops_per_token(shape: ModelShape, recompute: bool) -> float:
    """FLOPs the hardware runs per token; full recomputation adds one forward pass (a third more)."""
    base = flops_per_token(shape)
    return base * 4.0 / 3.0 if recompute else base


def _ratio(tokens_per_s: float, per_token: float, peak_flops: float) -> float:
    if tokens_per_s < 0:
        raise ValueError(f"tokens/s must be >= 0, got {tokens_per_s}")
    if peak_flops <= 0:
        raise ValueError(f"peak FLOP/s must be > 0, got {peak_flops}")
    return tokens_per_s * per_token / peak_flops


def mfu(tokens_per_s: float, shape: ModelShape, peak_flops: float) -> float:
    """Model FLOPs utilisation (0-1) of ``tokens_per_s`` against ``peak_flops`` (summed over the job's GPUs)."""
    return _ratio(tokens_per_s, flops_per_token(shape), peak_flops)


def hfu(tokens_per_s: float, shape: ModelShape, peak_flops: float, recompute: bool = True) -> float:
    """Hardware FLOPs utilisation (0-1): MFU plus recomputed FLOPs."""
    return _ratio(tokens_per_s, hardware_flops_per_token(shape, recompute), peak_flops)
