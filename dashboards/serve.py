"""Server entry: warm the store's default views in the background, then run Streamlit on the app.

``python -m gpufleet.dashboards.serve [streamlit run options] -- --db PATH [--warm RANGES]`` is what
:func:`launch.command` starts. The store is read-only and known before any browser connects, so the
warm-up of every page's default view (:func:`warmup.warm_store`) starts with the server, in the same
process whose app sessions read the results. ``--warm`` lists the ranges to warm (default
``7d,all``: the app's default view and the whole store); ``GPUFLEET_DASHBOARD_WARM=0`` turns warming off.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from gpufleet.dashboards.context import CHARTS, resolve_charts, resolve_db
from gpufleet.dashboards.warmup import PRELOAD, enabled, parse_ranges, preload, warm_store

__all__ = ["DEFAULT_WARM", "main", "split_args"]

DEFAULT_WARM = "7d,all"


def split_args(argv: list[str]) -> tuple[Path | None, list[str], str]:
    """The store path, the ranges to warm and the chart library, from the app's arguments (after ``--``) in ``argv``.

    Raises ValueError naming a range or a chart library that the app does not offer.
    """
    app_args = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--warm", default=DEFAULT_WARM)
    known, _ = parser.parse_known_args(app_args)
    return resolve_db(app_args), parse_ranges(known.warm), resolve_charts(app_args)


def main(argv: list[str] | None = None) -> int:
    """Start the warm-up thread, then hand the process to ``streamlit run`` on the app."""
    from gpufleet.dashboards.launch import APP

    args = sys.argv[1:] if argv is None else argv
    try:
        db, ranges, charts = split_args(args)
    except ValueError as exc:
        print(f"gpufleet dashboard: {exc}", file=sys.stderr)
        return 2
    # Streamlit and the modules the warm-up imports lazily are imported here, before the warm-up thread
    # starts: two threads importing the same packages at once can see one of them half initialised.
    from streamlit.web import cli as stcli  # noqa: TID251

    if db is not None and db.exists() and ranges and enabled():
        preload((*PRELOAD, CHARTS[charts]))
        threading.Thread(target=warm_store, args=(str(db.resolve()), ranges), kwargs={"charts": charts},
                         name="gpufleet-warm-store", daemon=True).start()

    sys.argv = ["streamlit", "run", str(APP), *args]
    try:
        stcli.main(prog_name="streamlit")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
