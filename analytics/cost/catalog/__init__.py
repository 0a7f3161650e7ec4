"""Default price catalog shipped with gpufleet (prices.yaml)."""
