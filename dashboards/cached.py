"""Cached reads: every query is keyed on the store path, its modification time and the filters.

A new scrape changes the store's modification time, so the next run reads fresh numbers; the same
view asked twice is answered from the cache.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st  # noqa: TID251

from gpufleet.analytics.fleet import FleetSnapshot, load_snapshot
from gpufleet.dashboards.data import StoreInfo, reading, store_info

__all__ = ["info", "fleet"]


@st.cache_data(max_entries=16, show_spinner=False)
def info(db: str, mtime: float) -> StoreInfo:
    """Store facts for the filters."""
    with reading(db) as con:
        return store_info(con, db)


@st.cache_data(max_entries=64, show_spinner="Reading the fleet ...")
def fleet(db: str, mtime: float, start: datetime, end: datetime, cluster: str | None, gpu_model: str | None,
          team: str | None) -> FleetSnapshot:
    """The fleet snapshot for a filtered view."""
    with reading(db) as con:
        return load_snapshot(con, start, end, cluster=cluster, gpu_model=gpu_model, team=team)
