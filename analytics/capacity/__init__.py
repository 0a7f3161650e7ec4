"""Capacity planning: load forecasts (Holt-Winters picked by backtest against seasonal naive) and M/M/c sizing."""
