"""Shared core: value types, metric names, the store, configuration and the simulated fleet."""
