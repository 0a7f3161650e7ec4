"""Pure models over the store: SLOs, utilization, capacity, cost and reliability."""
