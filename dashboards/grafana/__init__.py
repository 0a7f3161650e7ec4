"""Grafana dashboards (JSON) and provisioning files, generated from :mod:`.panels` by :mod:`.build`."""
