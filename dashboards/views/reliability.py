"""Reliability page."""

from __future__ import annotations

import streamlit as st  # noqa: TID251

from gpufleet.dashboards.context import Context
from gpufleet.dashboards.views.common import available, unavailable

__all__ = ["render"]

MODULE = "gpufleet.analytics.reliability"


def render(ctx: Context) -> None:
    """Draw the Reliability page."""
    st.header("Reliability")
    if not available(MODULE):
        unavailable("Reliability", MODULE)
        return
    unavailable("Reliability", MODULE)
