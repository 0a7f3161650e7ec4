import math
from datetime import timedelta

import pytest

from gpufleet.dashboards.labels import duration, header, number


@pytest.mark.parametrize(("name", "heading"), [
    ("team", "Team"),
    ("gpu_model", "GPU model"),
    ("allocated_gpu_hours", "Allocated GPU-hours"),
    ("gpu_hours", "GPU-hours"),
    ("p99_s", "p99 (s)"),
    ("total_usd", "Total ($)"),
    ("usd_per_1m_tokens", "USD per 1M tokens"),
    ("memory_used_gib", "Memory used (GiB)"),
    ("temperature_celsius", "Temperature (°C)"),
    ("facility_kwh", "Facility (kWh)"),
    ("xid", "XID"),
    ("within_slo", "Within SLO"),
    ("ts", "Time"),
])
def test_header_reads_as_people_write_it(name, heading):
    assert header(name) == heading


@pytest.mark.parametrize(("value", "text"), [
    (9.580368670649193, "9.58"),
    (0.03772242, "0.0377"),
    (519.8087, "519.8"),
    (7680.0, "7,680"),
    (1234.5, "1,234"),
    (-3.14159, "-3.14"),
    (0.0, "0"),
    (1.23e-5, "0.000012"),
    (math.nan, "–"),
    (math.inf, "∞"),
])
def test_number_keeps_three_significant_digits_without_exponents(value, text):
    assert number(value) == text


@pytest.mark.parametrize(("span", "text"), [
    (timedelta(days=1, hours=23, minutes=50), "1 day 23 h 50 min"),
    (timedelta(days=30), "30 days"),
    (timedelta(hours=6), "6 h"),
    (timedelta(seconds=89), "1 min"),
    (timedelta(0), "0 min"),
])
def test_a_window_reads_in_days_hours_and_minutes(span, text):
    assert duration(span) == text
