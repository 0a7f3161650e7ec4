"""Probe kernels that measure what each GPU can do, and degraded-GPU verdicts."""
