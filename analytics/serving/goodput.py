"""DistServe goodput from marginal latency histograms: requests/s meeting every latency SLO, with bounds.

Engines export one histogram per latency (TTFT, TPOT, e2e), never the joint per-request values, so the
fraction of requests meeting *all* SLOs is not observable. Each marginal fraction ``p_i`` is computed
with :func:`gpufleet.analytics.slo.sli.sli_at_threshold`; the joint fraction then lies within the
Fréchet bounds ``max(0, sum(p_i) - (k - 1)) <= p <= min(p_i)`` (for two SLOs: ``max(0, pA + pB - 1)``
and ``min(pA, pB)``), and ``prod(p_i)`` is the estimate under independence. With a single SLO all three
coincide: the result is exact (up to the histogram's own interpolation error).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gpufleet.analytics.slo.catalog import LATENCY
from gpufleet.analytics.slo.sli import HistogramSli, SliError, sli_at_threshold

__all__ = ["Estimate", "ESTIMATES", "JointFraction", "Marginal", "Goodput", "GoodputError", "joint_fraction",
           "marginal", "goodput", "check_slos", "parse_slos"]

Estimate = Literal["lower", "independent", "upper"]
ESTIMATES: tuple[Estimate, ...] = ("lower", "independent", "upper")


class GoodputError(ValueError):
    """An SLO set or histogram goodput cannot be computed from; the message names the input."""


@dataclass(frozen=True)
class JointFraction:
    """Fraction of requests meeting every SLO: Fréchet bounds and the independence estimate."""

    lower: float
    independent: float
    upper: float

    @property
    def exact(self) -> bool:
        """True when the bounds coincide (one SLO, or marginals at 0 or 1)."""
        return math.isclose(self.lower, self.upper, abs_tol=1e-12)

    def pick(self, estimate: Estimate) -> float:
        """The value named by ``estimate``."""
        return {"lower": self.lower, "independent": self.independent, "upper": self.upper}[estimate]


def joint_fraction(marginals: Sequence[float]) -> JointFraction:
    """Fréchet bounds and the independence product for the joint fraction of ``marginals`` (each 0-1)."""
    if not marginals:
        raise GoodputError("goodput needs at least one latency SLO")
    for p in marginals:
        if not 0.0 <= p <= 1.0 or math.isnan(p):
            raise GoodputError(f"a marginal SLO fraction must lie in [0, 1], got {p}")
    k = len(marginals)
    lower = max(0.0, sum(marginals) - (k - 1))
    return JointFraction(lower=lower, independent=math.prod(marginals), upper=min(marginals))


@dataclass(frozen=True)
class Marginal:
    """One latency SLO's good fraction over the window, from its histogram."""

    key: str
    threshold_s: float
    sli: HistogramSli

    @property
    def observations(self) -> float:
        """Requests observed by this histogram in the window."""
        return self.sli.total


def check_slos(slos: Mapping[str, float]) -> None:
    """Raise GoodputError unless every key is a per-request latency SLI and every threshold is > 0."""
    if not slos:
        raise GoodputError("goodput needs at least one latency SLO (e.g. ttft=2 tpot=0.2)")
    for key, threshold in slos.items():
        metric = LATENCY.get(key)
        if metric is None:
            raise GoodputError(f"SLO {key!r}: unknown latency; use one of "
                               f"{', '.join(k for k, m in LATENCY.items() if m.per_request)}")
        if not metric.per_request:
            raise GoodputError(f"SLO {key!r}: {metric.description} counts token gaps, not requests, so it cannot "
                               "say whether a request met its SLO; use tpot (one observation per request)")
        if not (threshold > 0 and math.isfinite(threshold)):
            raise GoodputError(f"SLO {key!r}: threshold must be a positive number of seconds, got {threshold}")


def parse_slos(texts: Sequence[str]) -> dict[str, float]:
    """``["ttft=2", "tpot=0.2"]`` -> ``{"ttft": 2.0, "tpot": 0.2}``, checked; errors name the bad item."""
    out: dict[str, float] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        try:
            seconds = float(value.strip().removesuffix("s"))
        except ValueError:
            seconds = math.nan
        if not sep or not key.strip() or math.isnan(seconds):
            raise GoodputError(f"SLO {text!r}: write KEY=SECONDS, e.g. ttft=2 or tpot=0.2")
        out[key.strip().lower()] = seconds
    check_slos(out)
    return out


def marginal(key: str, threshold_s: float, bounds: Sequence[float], cumulative: Sequence[float]) -> Marginal:
    """The good fraction of one latency histogram at ``threshold_s``; errors name the SLO."""
    try:
        return Marginal(key, threshold_s, sli_at_threshold(bounds, cumulative, threshold_s))
    except SliError as exc:
        raise GoodputError(f"SLO {key}<={threshold_s:g}s: {exc}") from None


@dataclass(frozen=True)
class Goodput:
    """Goodput of one model on one engine over a window, per second, per GPU and per GPU-dollar.

    ``fraction`` is the joint fraction over the interpolated marginals; ``outer`` widens it by the
    histograms' interpolation error (lower bounds from the bucket floors, upper from the ceilings), so
    the true joint fraction always lies inside ``outer``. ``reported`` names the estimate in
    ``goodput_rps`` and the per-GPU figures. ``fraction`` is ``None`` (no data) when no request completed;
    the goodput rate is then 0.
    """

    marginals: tuple[Marginal, ...]
    requests: float
    window_s: float
    fraction: JointFraction | None
    outer: JointFraction | None
    reported: Estimate
    gpus: float | None = None
    cost_usd: float | None = None

    @property
    def exact(self) -> bool:
        """One SLO (or degenerate marginals): the joint fraction is the marginal, no bounds needed."""
        return self.fraction is not None and self.fraction.exact

    @property
    def request_rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.window_s

    def rps(self, estimate: Estimate | None = None) -> float | None:
        """Requests/s meeting every SLO under ``estimate`` (default: the reported one).

        No completed requests at all is a goodput of 0 (an idle or failing replica serves nothing within
        its SLOs), while the fractions stay no-data; ``None`` only when requests were counted but an SLO's
        histogram observed none of them.
        """
        if self.requests == 0:
            return 0.0
        if self.fraction is None:
            return None
        return self.requests * self.fraction.pick(estimate or self.reported) / self.window_s

    @property
    def goodput_rps(self) -> float | None:
        """Requests/s meeting every SLO (the reported estimate)."""
        return self.rps()

    @property
    def goodput_rps_per_gpu(self) -> float | None:
        """Goodput per GPU held by the model's replicas (mean GPUs over the window)."""
        g = self.goodput_rps
        return g / self.gpus if g is not None and self.gpus else None

    @property
    def good_requests_per_usd(self) -> float | None:
        """Requests meeting every SLO per dollar of GPU time."""
        g = self.goodput_rps
        return g * self.window_s / self.cost_usd if g is not None and self.cost_usd else None


def goodput(histograms: Mapping[str, tuple[Sequence[float], Sequence[float]]], slos: Mapping[str, float], *,
            window_s: float, requests: float | None = None, gpus: float | None = None,
            cost_usd: float | None = None, estimate: Estimate = "lower") -> Goodput:
    """Goodput from per-SLO cumulative histograms ``{key: (bounds, cumulative counts)}`` over ``window_s``.

    ``requests`` is the completed request count (default: the largest count among the SLO histograms).
    ``gpus`` (mean GPUs held) and ``cost_usd`` (their cost over the window) give the per-GPU and
    per-dollar figures. Raises GoodputError naming the SLO for a missing histogram or a bad threshold.
    """
    check_slos(slos)
    if not window_s > 0:
        raise GoodputError(f"window must be > 0 s, got {window_s}")
    if estimate not in ESTIMATES:
        raise GoodputError(f"estimate {estimate!r}: use one of {', '.join(ESTIMATES)}")
    margs = []
    for key, threshold in slos.items():
        if key not in histograms:
            raise GoodputError(f"SLO {key}<={threshold:g}s: no {LATENCY[key].canonical} histogram in the window")
        bounds, cumulative = histograms[key]
        margs.append(marginal(key, threshold, bounds, cumulative))
    n = requests if requests is not None else max(m.observations for m in margs)
    if n < 0:
        raise GoodputError(f"requests must be >= 0, got {n}")
    if n == 0 or any(m.sli.good is None for m in margs):
        return Goodput(tuple(margs), float(n), window_s, None, None, estimate, gpus, cost_usd)
    frac = joint_fraction([_sure(m.sli.good) for m in margs])
    lo = joint_fraction([_sure(m.sli.lower) for m in margs])
    hi = joint_fraction([_sure(m.sli.upper) for m in margs])
    outer = JointFraction(lower=lo.lower, independent=frac.independent, upper=hi.upper)
    return Goodput(tuple(margs), float(n), window_s, frac, outer, estimate, gpus, cost_usd)


def _sure(v: float | None) -> float:
    if v is None:  # pragma: no cover - callers check for no data first
        raise GoodputError("no data")
    return min(1.0, max(0.0, v))
