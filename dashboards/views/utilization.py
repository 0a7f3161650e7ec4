"""Utilization page."""

from __future__ import annotations

import streamlit as st  # noqa: TID251

from gpufleet.dashboards.context import Context
from gpufleet.dashboards.views.common import available, unavailable

__all__ = ["render"]

MODULE = "gpufleet.analytics.cost"


def render(ctx: Context) -> None:
    """Draw the Utilization page."""
    st.header("Utilization")
    if not available(MODULE):
        unavailable("Utilization", MODULE)
        return
    unavailable("Utilization", MODULE)
