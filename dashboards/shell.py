"""The app's frame: the store (read-only), the filters in the sidebar and the URL, and page navigation."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st  # noqa: TID251

from gpufleet.dashboards import cached, warmup
from gpufleet.dashboards.context import PAGES, Context, resolve_charts, resolve_db, store_mtime
from gpufleet.dashboards.data import EmptyStore, StoreError, StoreInfo
from gpufleet.dashboards.filters import RANGES, Filters, from_query, to_query, window

__all__ = ["main"]

_ALL = "(all)"


def _select(label: str, key: str, options: list[str], current: str) -> str:
    choices = [_ALL, *options]
    if key not in st.session_state:
        st.session_state[key] = current if current in options else _ALL
    elif st.session_state[key] not in choices:
        st.session_state[key] = _ALL
    value = st.sidebar.selectbox(label, choices, key=key)
    return "" if value == _ALL else str(value)


def _sidebar(info: StoreInfo, initial: Filters) -> Filters:
    st.sidebar.markdown("### Filters")
    ranges = list(RANGES)
    if "f_range" not in st.session_state:
        st.session_state["f_range"] = initial.range
    rng = st.sidebar.segmented_control("Time range", ranges, key="f_range") or "7d"
    if "f_end" not in st.session_state:
        st.session_state["f_end"] = initial.end
    end = st.sidebar.text_input("End (UTC, ISO; empty = newest)", key="f_end",
                                placeholder=f"{info.last:%Y-%m-%dT%H:%M}")
    filters = Filters(
        range=rng, end=end.strip(),
        cluster=_select("Cluster", "f_cluster", info.clusters, initial.cluster),
        team=_select("Team", "f_team", info.teams, initial.team),
        gpu=_select("GPU model", "f_gpu", info.gpu_models, initial.gpu),
        model=_select("Served model", "f_model", info.models, initial.model),
    )
    checked, problems = from_query(to_query(filters))
    for p in problems:
        st.sidebar.warning(p)
    st.sidebar.caption(f"Store `{info.path}`: {info.gpus:,} GPUs, {info.first:%Y-%m-%d %H:%M} to "
                       f"{info.last:%Y-%m-%d %H:%M} UTC. Read-only.")
    return checked


def _stop_with(kind: Callable[..., object], message: str, hint: str | None = None) -> None:
    st.title("gpufleet")
    kind(message)
    if hint:
        st.markdown(hint)
    st.stop()


def _page(module: str, ctx: Context) -> Callable[[], None]:
    def run() -> None:
        import importlib

        importlib.import_module(f"gpufleet.dashboards.views.{module}").render(ctx)

    run.__name__ = module
    return run


def main() -> None:
    """Run one pass of the app (Streamlit re-runs it on every interaction)."""
    st.set_page_config(page_title="gpufleet", page_icon=":material/memory:", layout="wide")
    db = resolve_db()
    if db is None:
        _stop_with(st.error, "No store given.", "Start the app with `gpufleet dashboard --db PATH`.")
        return
    try:
        charts = resolve_charts()
    except ValueError as exc:
        _stop_with(st.error, str(exc), "Start the app with `gpufleet dashboard --charts vega` or `--charts plotly`.")
        return
    mtime = store_mtime(db)  # the store version this run reads, from the filters to the page
    try:
        info = cached.info(str(db), mtime)
    except EmptyStore:
        _stop_with(st.info, f"The store `{db}` holds no data yet.",
                   "Land some with `gpufleet demo --db PATH --no-dashboard` or `gpufleet ingest`, then reload.")
        return
    except StoreError as exc:
        text = str(exc)
        hint = ("A writer holds the store's lock; the app reads it when the writer is done. Reload in a moment."
                if "lock" in text.lower() else None)
        _stop_with(st.error, text, hint)
        return
    initial, problems = from_query(st.query_params.to_dict())
    for p in problems:
        st.sidebar.warning(p)
    filters = _sidebar(info, initial)
    st.query_params.from_dict(to_query(filters))
    start, end = window(filters, info.first, info.last)
    ctx = Context(db=str(db), mtime=mtime, info=info, filters=filters, start=start, end=end, charts=charts)
    pages = [st.Page(_page(module, ctx), title=title, url_path=path, icon=icon, default=i == 0)
             for i, (title, path, module, icon) in enumerate(PAGES)]
    nav = st.navigation(pages)
    try:
        nav.run()
    except StoreError as exc:
        st.error(str(exc))
    # after the page is drawn, so the warm-up never delays the page asked for
    if warmup.enabled():
        warmup.warm(ctx.db, ctx.mtime, start, end, ctx.charts)
