"""Capacity planning: load forecasts (Holt-Winters/ETS beside a seasonal-naive baseline) and M/M/c sizing."""
