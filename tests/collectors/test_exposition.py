import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufleet.collectors.exposition import parse


def test_text_format_families_types_and_values():
    text = """# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000
# TYPE temp gauge
temp -1.5e3
# TYPE lat histogram
lat_bucket{le="0.1"} 1
lat_bucket{le="+Inf"} 3
lat_sum 2.5
lat_count 3
untyped_thing{a="b"} +Inf
"""
    r = parse(text)
    assert r.errors == []
    assert list(r.families) == ["http_requests_total", "temp", "lat", "untyped_thing"]
    req = r.families["http_requests_total"]
    assert req.type == "counter" and req.help == "Requests."
    assert req.samples[0].labels == (("code", "200"), ("method", "post"))
    assert req.samples[0].value == 1027
    assert req.samples[0].timestamp == pytest.approx(1395066363.0)  # milliseconds in the text format
    assert r.families["temp"].samples[0].value == -1500.0
    assert [s.name for s in r.families["lat"].samples] == ["lat_bucket", "lat_bucket", "lat_sum", "lat_count"]
    assert math.isinf(r.families["untyped_thing"].samples[0].value)


def test_openmetrics_seconds_exemplars_created_and_eof():
    text = """# TYPE foo counter
# UNIT foo seconds
foo_total 17.0 1520879607.789 # {trace_id="KOO5S4vxi0o"} 0.67
foo_created 1520430000.123
# EOF
"""
    r = parse(text)
    assert r.openmetrics and r.errors == []
    fam = r.families["foo"]
    assert fam.unit == "seconds"
    total, created = fam.samples
    assert total.name == "foo_total" and total.timestamp == pytest.approx(1520879607.789)
    assert total.exemplar is not None and total.exemplar.value == 0.67
    assert total.exemplar.labels == (("trace_id", "KOO5S4vxi0o"),)
    assert created.name == "foo_created"


def test_escaped_label_values():
    r = parse('m{path="C:\\\\dir\\\\f",q="say \\"hi\\"",nl="a\\nb"} 1\n')
    assert r.errors == []
    assert dict(r.families["m"].samples[0].labels) == {"path": "C:\\dir\\f", "q": 'say "hi"', "nl": "a\nb"}


def test_label_values_with_braces_and_hashes_take_the_exact_path():
    r = parse('m{a="x}y",b="#1"} 2\n')
    assert r.errors == []
    assert dict(r.families["m"].samples[0].labels) == {"a": "x}y", "b": "#1"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("bad metric{a=\"b\"} 1", "invalid value"),
        ("m{a=b} 1", "expected '\"'"),
        ('m{a="b"} abc', "invalid value 'abc'"),
        ('m{a="b",a="c"} 1', "duplicate label"),
        ('m{a="b"}', "missing value"),
        ("m 1 2 3", "unexpected text"),
        ('m{a="unterminated} 1', "unterminated"),
        ("m 1_000", "invalid value '1_000'"),
    ],
)
def test_bad_lines_are_reported_with_line_number_and_the_rest_parses(line, reason):
    r = parse(f"good 1\n{line}\nalso_good 2\n")
    assert [e.line for e in r.errors] == [2]
    assert reason in r.errors[0].reason
    assert set(r.families) >= {"good", "also_good"}


def test_unknown_type_is_an_error_naming_the_line():
    r = parse("# TYPE m sparkles\nm 1\n")
    assert r.errors[0].line == 1 and "unknown metric type" in r.errors[0].reason
    assert r.families["m"].samples[0].value == 1


def test_openmetrics_without_eof_is_reported():
    r = parse("# TYPE a gauge\na 1\n", openmetrics=True)
    assert any("EOF" in e.reason for e in r.errors)


def test_nan_values_parse():
    r = parse("m NaN\n")
    assert math.isnan(r.families["m"].samples[0].value)


def test_real_vllm_capture_parses_cleanly(fixtures):
    r = parse((fixtures / "vllm-0.4.3.prom").read_text())
    assert r.errors == []
    ttft = r.families["vllm:time_to_first_token_seconds"]
    assert ttft.type == "histogram"
    count = [s for s in ttft.samples if s.name.endswith("_count")][0]
    assert count.value == 1.0


label_value = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True), label_value, max_size=5),
       st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_any_label_values_round_trip(labels, value):
    body = ",".join(
        f'{k}="' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"' for k, v in labels.items())
    r = parse(f"m{{{body}}} {value!r}\n")
    assert r.errors == []
    sample = r.families["m"].samples[0]
    assert dict(sample.labels) == labels
    assert sample.value == value


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_no_input_crashes_the_parser(text):
    r = parse(text)
    assert isinstance(r.errors, list)


def _digest(r):
    return repr(([(f.name, f.type, f.help, f.unit, f.samples) for f in r.families.values()], r.errors, r.openmetrics))


@pytest.mark.parametrize("text", [
    'a{x="1"} 1\na{x="2"} 2\n',  # the common shape
    'a{x="1"} 1 1700000000000\na 2\n',  # a timestamp: the run is read by regex
    "a 1_000\na 2\n",  # an underscore in a number is an error, and the other line still parses
    "a 1\n\na 2\n   \na 3\n",  # blank and whitespace-only lines
    'a{x="a b"} 1\na{x="b 1"}\n',  # a space inside a label value; a line without a value
    'a{x="1"}\t1\na  2\na\t \t3\n',  # tabs and runs of spaces before the value
    'a{x="\\"q\\" {b}"} 1\n',  # escapes and braces inside a label value
    "# TYPE h histogram\nh_bucket{le=\"1\"} 1 # {t=\"x\"} 0.5 1.0\nh_bucket{le=\"+Inf\"} 2\n# EOF\n",
    "a 1\n# EOF\na 2\n",  # content after # EOF
    "a infinity\na -Inf\na NaN\na 1e3\na 0x10\n",
    'a{x="1",x="2"} 1\na{1x="2"} 1\n',  # duplicate and invalid label names
    "a 1 2 3\n#\n# HELP a text\\nmore\na 4",  # too many fields; a bare '#'; no final newline
])
def test_bulk_reading_equals_reading_line_by_line(text):
    assert _digest(parse(text)) == _digest(parse(text, bulk=False))


line_shape = st.builds(
    lambda name, labels, value, ts: f"{name}{labels} {value}{ts}",
    st.sampled_from(["a", "a_total", "b:c", "a_bucket", "1bad"]),
    st.sampled_from(["", "{}", '{x="1"}', '{x="1",le="+Inf"}', '{x="a b"}', '{x="\\"q\\""}', '{x=1}', "{"]),
    st.sampled_from(["1", "-2.5", "+Inf", "NaN", "1_0", "x", "1e400", "0.1"]),
    st.sampled_from(["", " 1700000000000", " x", " # {a=\"1\"} 1"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(line_shape, st.sampled_from(["", "# TYPE a counter", "# TYPE a_bucket gauge", "# EOF",
                                                         "  "])), max_size=30))
def test_bulk_and_line_by_line_agree_on_mixed_lines(lines):
    text = "\n".join(lines)
    assert _digest(parse(text)) == _digest(parse(text, bulk=False))
