"""Probe kernels (torch imported lazily, inside each function): HBM, matmul, PCIe, NCCL."""
