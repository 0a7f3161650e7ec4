"""The Streamlit FinOps app and the Grafana dashboards."""
