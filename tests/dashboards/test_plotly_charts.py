import datetime as dt

import polars as pl
import pytest

pytest.importorskip("plotly")

from gpufleet.dashboards.charts import ROW_HEIGHT  # noqa: E402
from gpufleet.dashboards.plotly_charts import bars, forecast_band, time_bars  # noqa: E402

from .conftest import gpu_states as long  # noqa: E402

T0 = dt.datetime(2026, 1, 1)


def test_bars_stack_one_trace_per_part_in_the_given_order_and_colours():
    fig = bars(long(), "gpus", "model", "state", order=("lost", "healthy"),
               colors={"lost": "#7f1d1d", "healthy": "#16a34a"}, value_title="GPUs")
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == ["lost", "healthy"]
    assert [t.marker.color for t in fig.data] == ["#7f1d1d", "#16a34a"]
    lost, healthy = fig.data
    assert list(lost.y) == ["H100", "A100"] and list(lost.x) == [1.0, 0.0]
    assert list(healthy.x) == [7.0, 4.0] and lost.orientation == "h"
    # categories top to bottom in the frame's order, ROW_HEIGHT pixels each
    assert list(fig.layout.yaxis.categoryarray) == ["H100", "A100"] and fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.height == 2 * ROW_HEIGHT + 80
    assert fig.layout.xaxis.title.text == "GPUs"


def test_grouped_bars_and_parts_outside_the_order_come_last():
    frame = pl.concat([long(), pl.DataFrame({"model": ["A100"], "state": ["draining"], "gpus": [2.0]})])
    fig = bars(frame, "gpus", "model", "state", order=("lost",), grouped=True)
    assert fig.layout.barmode == "group"
    assert [t.name for t in fig.data] == ["lost", "healthy", "draining"]
    assert fig.layout.xaxis.title.text == "gpus"


def test_time_bars_centre_each_bin_and_span_its_width():
    frame = pl.DataFrame({"ts": [T0, T0, T0 + dt.timedelta(hours=1)], "severity": ["critical", "warning", "critical"],
                          "events": [2.0, 1.0, 3.0]})
    fig = time_bars(frame, "ts", "events", "severity", dt.timedelta(hours=1), order=("critical", "warning"),
                    value_title="events per 1h")
    critical, warning = fig.data
    assert list(critical.x) == [T0 + dt.timedelta(minutes=30), T0 + dt.timedelta(minutes=90)]
    assert list(critical.y) == [2.0, 3.0] and list(warning.y) == [1.0]
    assert critical.width == pytest.approx(3_600_000 * 0.95)
    assert list(critical.customdata) == ["2026-01-01 00:00", "2026-01-01 01:00"]
    assert fig.layout.barmode == "stack" and fig.layout.yaxis.title.text == "events per 1h"


def test_forecast_band_fills_between_lower_and_upper_under_the_lines():
    hist = pl.DataFrame({"ts": [T0, T0 + dt.timedelta(hours=1)], "requests": [10.0, 12.0]})
    fut = pl.DataFrame({"ts": [T0 + dt.timedelta(hours=2)], "mean": [11.0], "lower": [8.0], "upper": [14.0]})
    upper, lower, history, mean = forecast_band(hist, fut).data
    assert list(upper.y) == [14.0] and list(lower.y) == [8.0] and lower.fill == "tonexty"
    assert list(history.y) == [10.0, 12.0] and list(mean.y) == [11.0]
    assert [tuple(c) for c in mean.customdata] == [(8.0, 14.0)]
