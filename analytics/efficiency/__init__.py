"""Training efficiency: MFU and HFU per job and team from token throughput and model shape."""
