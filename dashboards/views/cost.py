"""Cost page: chargeback by team, namespace or model, $/1M tokens, pricing what-if, energy and carbon, FOCUS."""

from __future__ import annotations

import polars as pl
import streamlit as st  # noqa: TID251

from gpufleet.analytics.cost.whatif import compare_pricing
from gpufleet.dashboards import cached
from gpufleet.dashboards.context import Context
from gpufleet.dashboards.labels import duration
from gpufleet.dashboards.views.common import chart_kit, plot, table

__all__ = ["render", "usd"]

# the parts a chargeback total stacks from (columns ``{part}_cents``), as the chart's legend names them
PARTS = {"cost": "direct", "idle": "idle share", "shared": "shared share"}


def usd(cents: float) -> str:
    """Cents as dollars for a metric tile."""
    return f"${cents / 100:,.2f}"


def _chargeback(ctx: Context) -> None:
    by = st.segmented_control("Charge back by", ["team", "namespace", "model"], default="team", key="cost_by") \
        or "team"
    charged = cached.cost(ctx.db, ctx.mtime, ctx.start, ctx.end, by)
    if charged.height == 0:
        st.info("Nothing to charge in this window.", icon=":material/filter_alt_off:")
        return
    if by == "model":
        models = charged.filter(pl.col("model") == ctx.filters.model) if ctx.filters.model else charged
        st.metric("Serving GPU cost", f"${float(models['cost_usd'].sum()):,.2f}")
        table(models, formats={c: "{:,.4f}" for c in models.columns if "usd_per" in c} | {"cost_usd": "{:,.2f}"})
        return
    if by == "team" and ctx.filters.team:
        charged = charged.filter(pl.col("team") == ctx.filters.team)
    total = float(charged["total_cents"].sum())
    cols = st.columns(3)
    cols[0].metric("Total cost", usd(total))
    cols[1].metric("Idle cost spread", usd(float(charged["idle_cents"].sum())))
    cols[2].metric("GPU-hours", f"{float(charged['gpu_hours'].sum()):,.0f}")
    dollars = charged.select(by, "gpu_hours", *[(pl.col(f"{p}_cents") / 100).alias(f"{p}_usd")
                                                for p in (*PARTS, "total")])
    long = dollars.unpivot(index=by, on=[f"{p}_usd" for p in PARTS], variable_name="part", value_name="usd") \
        .with_columns(pl.col("part").str.strip_suffix("_usd").replace(PARTS))
    plot(ctx, chart_kit(ctx).bars(long, "usd", by, "part", order=list(PARTS.values()), value_title="USD"))
    table(dollars, formats={c: "{:,.2f}" for c in dollars.columns if c.endswith("_usd")} | {"gpu_hours": "{:,.1f}"},
          download=f"gpufleet-chargeback-{by}.csv")


def _whatif(ctx: Context) -> None:
    st.subheader("On demand vs reserved vs spot")
    used, hours, gpus = cached.used_hours(ctx.db, ctx.mtime, ctx.start, ctx.end)
    cols = st.columns(3)
    price = cols[0].slider("On-demand $/GPU-hour", 0.5, 12.0, 6.88, 0.01, key="wi_price")
    reserved = cols[1].slider("Reserved discount", 0.0, 0.8, 0.57, 0.01, key="wi_res")
    spot = cols[2].slider("Spot discount", 0.0, 0.9, 0.45, 0.01, key="wi_spot")
    scen = compare_pricing(used, hours, gpus, price, reserved_discount=reserved, spot_discount=spot)
    mcols = st.columns(len(scen))
    for col, s in zip(mcols, scen, strict=True):
        col.metric(s.category.replace("_", " "), f"${s.cost_usd:,.0f}", help=s.note)
    st.caption(f"{used:,.0f} used GPU-hours of {gpus} GPUs over {hours:,.0f} h.")


def _energy(ctx: Context) -> None:
    st.subheader("Energy and carbon")
    e = cached.energy(ctx.db, ctx.mtime, ctx.start, ctx.end)
    if ctx.filters.cluster:
        e = e.filter(pl.col("cluster") == ctx.filters.cluster)
    if e.height == 0:
        st.info("No energy readings in this window.")
        return
    from gpufleet.analytics.cost.energy import energy_report

    cols = st.columns(3)
    pue = cols[0].slider("PUE", 1.0, 2.0, 1.2, 0.01, key="en_pue")
    kwh_price = cols[1].slider("$/kWh", 0.01, 0.5, 0.12, 0.01, key="en_price")
    grid = cols[2].slider("Grid gCO2/kWh", 0, 900, 475, 5, key="en_grid")
    rep = energy_report(e, pue=pue, usd_per_kwh=kwh_price, gco2_per_kwh=grid, by="cluster")
    mcols = st.columns(3)
    mcols[0].metric("Facility energy", f"{float(rep['facility_kwh'].sum()):,.0f} kWh")
    mcols[1].metric("Electricity", f"${float(rep['energy_usd'].sum()):,.2f}")
    mcols[2].metric("Carbon", f"{float(rep['kg_co2e'].sum()):,.0f} kg CO2e")
    table(rep)


def render(ctx: Context) -> None:
    """Draw the Cost page."""
    st.header("Cost")
    st.caption(f"Window of {duration(ctx.end - ctx.start)} ending at the newest hour of allocations.")
    _chargeback(ctx)
    _whatif(ctx)
    _energy(ctx)
    st.subheader("FOCUS export")
    # built when the button is pressed, not on every render of the page
    db, mtime, start, end = ctx.db, ctx.mtime, ctx.start, ctx.end
    st.download_button("Download FOCUS 1.2 CSV", lambda: cached.focus(db, mtime, start, end),
                       file_name="gpufleet-focus.csv", mime="text/csv", key="focus_dl")
