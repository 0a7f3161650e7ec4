"""SLOs page."""

from __future__ import annotations

import streamlit as st  # noqa: TID251

from gpufleet.dashboards.context import Context
from gpufleet.dashboards.views.common import available, unavailable

__all__ = ["render"]

MODULE = "gpufleet.analytics.slo"


def render(ctx: Context) -> None:
    """Draw the SLOs page."""
    st.header("SLOs")
    if not available(MODULE):
        unavailable("SLOs", MODULE)
        return
    unavailable("SLOs", MODULE)
