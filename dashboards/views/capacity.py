"""Capacity page."""

from __future__ import annotations

import streamlit as st  # noqa: TID251

from gpufleet.dashboards.context import Context
from gpufleet.dashboards.views.common import available, unavailable

__all__ = ["render"]

MODULE = "gpufleet.analytics.capacity"


def render(ctx: Context) -> None:
    """Draw the Capacity page."""
    st.header("Capacity")
    if not available(MODULE):
        unavailable("Capacity", MODULE)
        return
    unavailable("Capacity", MODULE)
