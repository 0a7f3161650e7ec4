"""A group's engines must all observe every SLO's latency; the e2e count stands for requests only if all do."""

from __future__ import annotations

import pytest

from gpufleet.analytics.serving.coverage import coverage_problem, e2e_counts_all


@pytest.mark.parametrize(("slos", "observed", "present", "message"), [
    ({"ttft": 1.0}, {"ttft": {"vllm"}}, {"vllm"}, None),
    ({"ttft": 1.0, "tpot": 0.1}, {"ttft": {"vllm", "sglang"}, "tpot": {"vllm"}}, {"vllm", "sglang"},
     "SLO tpot<=0.1s: sglang has no time per output token"),
    ({"tpot": 0.1}, {"tpot": set()}, {"sglang"}, "choose SLOs it has"),
    ({"ttft": 1.0}, {"ttft": {"vllm"}}, {"vllm", "tgi"}, "group by model or --match engine"),
    ({"ttft": 1.0}, {}, set(), None),  # no engine label at all: nothing to compare
])
def test_coverage_problem(slos, observed, present, message):
    problem = coverage_problem(slos, observed, present)
    if message is None:
        assert problem is None
    else:
        assert problem is not None and message in problem


@pytest.mark.parametrize(("observed", "present", "expected"), [
    ({"e2e": {"vllm", "sglang"}}, {"vllm", "sglang"}, True),
    ({"e2e": {"vllm"}}, {"vllm", "sglang"}, False),
    ({}, {"vllm"}, False),
])
def test_e2e_counts_all(observed, present, expected):
    assert e2e_counts_all(observed, present) is expected
