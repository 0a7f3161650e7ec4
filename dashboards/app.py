"""Streamlit entry script: ``streamlit run app.py -- --db PATH`` (``gpufleet dashboard`` does this)."""

from gpufleet.dashboards.shell import main

main()
