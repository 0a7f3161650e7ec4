"""Probes page."""

from __future__ import annotations

import streamlit as st  # noqa: TID251

from gpufleet.dashboards.context import Context
from gpufleet.dashboards.views.common import available, unavailable

__all__ = ["render"]

MODULE = "gpufleet.probes.verdict"


def render(ctx: Context) -> None:
    """Draw the Probes page."""
    st.header("Probes")
    if not available(MODULE):
        unavailable("Probes", MODULE)
        return
    unavailable("Probes", MODULE)
