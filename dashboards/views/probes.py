"""Probes page: newest bandwidth and matmul results per GPU beside their peers, degraded GPUs."""

from __future__ import annotations

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.dashboards import cached
from gpufleet.dashboards.context import Context
from gpufleet.dashboards.views.common import table

__all__ = ["render", "peer_ratio"]


def peer_ratio(results: pl.DataFrame) -> pl.DataFrame:
    """Each result over the median of the same probe on the same GPU model (1.0 = typical)."""
    return results.with_columns(
        peer_ratio=pl.col("value") / pl.col("value").median().over("gpu_model", "probe"))


def render(ctx: Context) -> None:
    """Draw the Probes page."""
    st.header("Probes")
    res = cached.probes(ctx.db, ctx.mtime, ctx.filters.opt("cluster"))
    if res.height == 0:
        st.info("No probe results in this store yet: run `gpufleet probe` on the GPU nodes (or the simulated "
                "probes) and ingest them.", icon=":material/science:")
        return
    res = peer_ratio(res)
    threshold = st.slider("Degraded below this share of the peer median", 0.5, 1.0, 0.9, 0.01, key="probe_thr")
    degraded = res.filter(pl.col("peer_ratio") < threshold)
    c = st.columns(3)
    c[0].metric("GPUs probed", f"{res['gpu_uuid'].n_unique():,}")
    c[1].metric("Degraded GPUs", f"{degraded['gpu_uuid'].n_unique():,}")
    c[2].metric("Probes", f"{res['probe'].n_unique()}")
    st.subheader("Degraded GPUs")
    table(degraded, formats={"peer_ratio": "{:.1%}"}, download="gpufleet-degraded-gpus.csv")
    st.subheader("Ceilings per GPU")
    table(res.pivot(on="probe", index=["node", "gpu_uuid", "gpu_model"], values="value"),
          download="gpufleet-probe-ceilings.csv")
