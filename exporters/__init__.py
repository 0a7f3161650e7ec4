"""Node agent: NVML and GPM sampling, XID events, pod attribution, /metrics and OTLP."""
