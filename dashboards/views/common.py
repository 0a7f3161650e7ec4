"""Shared pieces of the pages: the "not available" state, empty states and number formats."""

from __future__ import annotations

import importlib.util

import streamlit as st  # noqa: TID251

__all__ = ["available", "unavailable", "gib"]

EXTRA_HINT = "pip install 'gpufleet[app]'"


def available(module: str) -> bool:
    """Whether an analytics module is installed (pages over missing modules say so instead of failing)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def unavailable(what: str, module: str) -> None:
    """The explicit state of a page whose analytics are not in this installation: no numbers at all."""
    st.warning(f"{what} is not available in this installation: the module `{module}` is not installed.",
               icon=":material/block:")


def gib(n_bytes: float | None) -> float | None:
    """Bytes to GiB, None stays None."""
    return None if n_bytes is None else n_bytes / 2**30
