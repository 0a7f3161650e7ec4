"""Prometheus alerting rules, the SLO burn-rate rule generator and Alertmanager configuration."""
