from datetime import datetime

import pytest

from gpufleet.dashboards.filters import Filters, from_query, to_query, window

FIRST, LAST = datetime(2026, 1, 1), datetime(2026, 1, 31)


@pytest.mark.parametrize(("params", "filters", "problems"), [
    ({}, Filters(), 0),
    ({"range": "1d", "cluster": "us-east-prod"}, Filters(range="1d", cluster="us-east-prod"), 0),
    ({"range": ["7d", "30d"]}, Filters(range="30d"), 0),
    ({"range": "2w"}, Filters(), 1),
    ({"end": "2026-01-10T12:00"}, Filters(end="2026-01-10T12:00"), 0),
    ({"end": "yesterday"}, Filters(), 1),
    ({"team": " research ", "gpu": "NVIDIA H200", "model": "m"}, Filters(team="research", gpu="NVIDIA H200", model="m"),
     0),
    ({"cluster": ""}, Filters(), 0),
])
def test_from_query(params, filters, problems):
    got, msgs = from_query(params)
    assert got == filters
    assert len(msgs) == problems


@pytest.mark.parametrize("filters", [Filters(), Filters(range="all", end="2026-01-05T00:00", cluster="c", team="t",
                                                           gpu="g", model="m")])
def test_query_round_trip(filters):
    assert from_query(to_query(filters)) == (filters, [])


def test_defaults_stay_out_of_the_url():
    assert to_query(Filters()) == {}
    assert to_query(Filters(range="1d")) == {"range": "1d"}


@pytest.mark.parametrize(("filters", "start", "end"), [
    (Filters(), datetime(2026, 1, 24), LAST),
    (Filters(range="1d"), datetime(2026, 1, 30), LAST),
    (Filters(range="90d"), FIRST, LAST),
    (Filters(range="all"), FIRST, LAST),
    (Filters(range="1d", end="2026-01-10T06:00"), datetime(2026, 1, 9, 6), datetime(2026, 1, 10, 6)),
    (Filters(range="1d", end="2027-01-01T00:00"), datetime(2026, 1, 30), LAST),
    (Filters(range="7d", end="2025-06-01T00:00"), FIRST, FIRST),
])
def test_window(filters, start, end):
    assert window(filters, FIRST, LAST) == (start, end)
