"""GPU cost and utilization: price catalog, chargeback, idle and shared cost, $/1M tokens, what-ifs, FOCUS."""
