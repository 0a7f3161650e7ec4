"""Fleet reliability: failure taxonomy, MTTF, ETTR and goodput, lemon-node detection."""
