"""Parse Prometheus text format 0.0.4 and OpenMetrics 1.0 into metric families.

A bad line is reported with its line number and skipped; every good line of the same
payload still parses. Samples without a ``# TYPE`` are ``untyped`` families of their own.
"""

from __future__ import annotations

import math
import re

from gpufleet.core.samples import Exemplar, MetricFamily, ParseError, Sample

__all__ = ["parse", "ParseResult", "family_name_of"]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped", "unknown", "gaugehistogram", "info", "stateset"}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
}
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
# Fast path for the common line shape; anything it does not fully explain goes to the exact parser.
_FAST_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^{}#]*)\})?[ \t]+(\S+)(?:[ \t]+(\S+))?[ \t]*$")
_PAIR = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(?:,|$)')
_UNESCAPE = re.compile(r"\\(.)")


class ParseResult:
    """Families in exposition order, plus every line that was rejected."""

    __slots__ = ("families", "errors", "openmetrics")

    def __init__(self) -> None:
        self.families: dict[str, MetricFamily] = {}
        self.errors: list[ParseError] = []
        self.openmetrics = False

    @property
    def samples(self) -> list[Sample]:
        return [s for f in self.families.values() for s in f.samples]


def family_name_of(sample_name: str, types: dict[str, str]) -> str:
    """Return the family a sample name belongs to, given the declared ``types``."""
    if sample_name in types:
        return sample_name
    for ftype_suffixes in _SUFFIXES.values():
        for suffix in ftype_suffixes:
            if sample_name.endswith(suffix):
                base = sample_name[: -len(suffix)]
                if base in types and suffix in _SUFFIXES.get(types[base], ()):
                    return base
    return sample_name


def parse_value(text: str) -> float:
    """Parse a sample value the way Prometheus does (``+Inf``, ``-Inf``, ``NaN`` included)."""
    lowered = text.lower()
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    if lowered == "nan":
        return math.nan
    if "_" in text:  # Python accepts 1_000; the exposition formats do not
        raise ValueError(text)
    return float(text)


def _parse_labels(text: str, pos: int) -> tuple[dict[str, str], int]:
    """Parse ``{a="b",...}`` starting after the brace at ``pos``; return labels and the end."""
    labels: dict[str, str] = {}
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == "}":
            return labels, pos + 1
        m = _LABEL_NAME.match(text, pos)
        if not m:
            raise ValueError(f"invalid label name at column {pos + 1}")
        name = m.group(0)
        pos = m.end()
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n or text[pos] != "=":
            raise ValueError(f"expected '=' after label {name!r}")
        pos += 1
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n or text[pos] != '"':
            raise ValueError(f"expected '\"' to open the value of label {name!r}")
        pos += 1
        chunks: list[str] = []
        start = pos
        while True:
            if pos >= n:
                raise ValueError(f"unterminated value of label {name!r}")
            c = text[pos]
            if c == '"':
                chunks.append(text[start:pos])
                pos += 1
                break
            if c == "\\":
                chunks.append(text[start:pos])
                if pos + 1 >= n:
                    raise ValueError(f"dangling escape in label {name!r}")
                esc = text[pos + 1]
                chunks.append(_ESCAPES.get(esc, "\\" + esc))
                pos += 2
                start = pos
                continue
            pos += 1
        if name in labels:
            raise ValueError(f"duplicate label {name!r}")
        labels[name] = "".join(chunks)
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == ",":
            pos += 1
            continue
        if pos < n and text[pos] == "}":
            return labels, pos + 1
        raise ValueError(f"expected ',' or '}}' after label {name!r}")


# Label bodies repeat scrape after scrape (the same series), so parse each distinct one once,
# as Prometheus' scrape cache does.
_LABEL_CACHE: dict[str, tuple[tuple[str, str], ...] | None] = {}
_LABEL_CACHE_MAX = 1_000_000


def _fast_labels(body: str) -> tuple[tuple[str, str], ...] | None:
    """Sorted label pairs of a well-formed label body, or None to defer to the exact parser."""
    try:
        return _LABEL_CACHE[body]
    except KeyError:
        pass
    if len(_LABEL_CACHE) >= _LABEL_CACHE_MAX:
        _LABEL_CACHE.clear()
    found = _LABEL_CACHE[body] = _scan_labels(body)
    return found


def _scan_labels(body: str) -> tuple[tuple[str, str], ...] | None:
    pairs = []
    pos = 0
    n = len(body)
    match = _PAIR.match
    while pos < n:
        m = match(body, pos)
        if m is None:
            return None
        value = m.group(2)
        if "\\" in value:
            value = _UNESCAPE.sub(lambda e: _ESCAPES.get(e.group(1), "\\" + e.group(1)), value)
        pairs.append((m.group(1), value))
        pos = m.end()
    if body.rstrip().endswith(",") and not pairs:
        return None
    pairs.sort()
    if any(a[0] == b[0] for a, b in zip(pairs, pairs[1:], strict=False)):
        return None
    return tuple(pairs)


def _parse_sample_line(
    line: str, openmetrics: bool
) -> tuple[str, dict[str, str], float, float | None, Exemplar | None]:
    m = _METRIC_NAME.match(line)
    if not m:
        raise ValueError("invalid metric name")
    name = m.group(0)
    pos = m.end()
    labels: dict[str, str] = {}
    if pos < len(line) and line[pos] == "{":
        labels, pos = _parse_labels(line, pos + 1)
    rest = line[pos:]
    exemplar: Exemplar | None = None
    if " # " in rest:
        rest, _, ex_text = rest.partition(" # ")
        exemplar = _parse_exemplar(ex_text.strip())
    if rest and rest[0] not in " \t":
        raise ValueError("expected a space before the value")
    parts = rest.split()
    if not parts:
        raise ValueError("missing value")
    if len(parts) > 2:
        raise ValueError("unexpected text after the timestamp")
    try:
        value = parse_value(parts[0])
    except ValueError:
        raise ValueError(f"invalid value {parts[0]!r}") from None
    timestamp: float | None = None
    if len(parts) == 2:
        try:
            ts = parse_value(parts[1])
        except ValueError:
            raise ValueError(f"invalid timestamp {parts[1]!r}") from None
        if math.isnan(ts) or math.isinf(ts):
            raise ValueError("timestamp is not finite")
        # The text format counts milliseconds, OpenMetrics counts seconds.
        timestamp = ts if openmetrics else ts / 1000.0
    return name, labels, value, timestamp, exemplar


def _parse_exemplar(text: str) -> Exemplar:
    if not text.startswith("{"):
        raise ValueError("exemplar must start with '{'")
    labels, pos = _parse_labels(text, 1)
    parts = text[pos:].split()
    if not parts or len(parts) > 2:
        raise ValueError("exemplar needs a value and an optional timestamp")
    ts = parse_value(parts[1]) if len(parts) == 2 else None
    return Exemplar(tuple(sorted(labels.items())), parse_value(parts[0]), ts)


def _fast_sample(line: str, openmetrics: bool) -> Sample | None:
    m = _FAST_LINE.match(line)
    if m is None:
        return None
    name, body, value_text, ts_text = m.groups()
    labels: tuple[tuple[str, str], ...] = ()
    if body:
        found = _fast_labels(body)
        if found is None:
            return None
        labels = found
    try:
        value = float(value_text)
    except ValueError:
        return None
    if "_" in value_text or value_text.lower().lstrip("+-") in ("infinity",):
        return None
    ts = None
    if ts_text is not None:
        try:
            ts = float(ts_text)
        except ValueError:
            return None
        if not math.isfinite(ts) or "_" in ts_text:
            return None
        ts = ts if openmetrics else ts / 1000.0
    return Sample(name, labels, value, ts)


def parse(text: str, *, openmetrics: bool | None = None) -> ParseResult:
    """Parse an exposition payload. ``openmetrics=None`` detects the format by ``# EOF``."""
    result = ParseResult()
    if openmetrics is None:
        openmetrics = text.rstrip().endswith("# EOF")
    result.openmetrics = openmetrics
    types: dict[str, str] = {}
    families = result.families
    seen_eof = False
    family_of: dict[str, str] = {}
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if seen_eof:
            result.errors.append(ParseError(lineno, line, "content after '# EOF'"))
            continue
        if line.startswith("#"):
            fields = line.split(None, 3)
            if line.strip() == "# EOF":
                seen_eof = True
                continue
            if len(fields) < 3 or fields[1] not in ("TYPE", "HELP", "UNIT"):
                continue  # a plain comment
            keyword, fname = fields[1], fields[2]
            if not _METRIC_NAME.fullmatch(fname):
                result.errors.append(ParseError(lineno, line, f"invalid metric name in # {keyword}"))
                continue
            arg = fields[3] if len(fields) > 3 else ""
            fam = families.get(fname)
            if keyword == "TYPE":
                mtype = arg.strip().lower()
                if mtype not in _TYPES:
                    result.errors.append(ParseError(lineno, line, f"unknown metric type {arg.strip()!r}"))
                    continue
                if fname in types:
                    result.errors.append(ParseError(lineno, line, f"second # TYPE for {fname}"))
                    continue
                mtype = "untyped" if mtype == "unknown" else mtype
                types[fname] = mtype
                family_of.clear()
                if fam is None:
                    fam = families[fname] = MetricFamily(fname)
                elif fam.samples:
                    result.errors.append(ParseError(lineno, line, f"# TYPE for {fname} after its samples"))
                    continue
                fam.type = mtype
            elif keyword == "HELP":
                if fam is None:
                    fam = families[fname] = MetricFamily(fname)
                fam.help = arg.replace("\\n", "\n").replace("\\\\", "\\")
            else:
                if fam is None:
                    fam = families[fname] = MetricFamily(fname)
                fam.unit = arg.strip()
            continue
        sample = _fast_sample(line, openmetrics)
        if sample is None:
            try:
                name, labels, value, ts, exemplar = _parse_sample_line(line, openmetrics)
            except ValueError as exc:
                result.errors.append(ParseError(lineno, line, str(exc)))
                continue
            sample = Sample(name, tuple(sorted(labels.items())), value, ts, exemplar)
        known = family_of.get(sample.name)
        if known is None:
            known = family_of[sample.name] = family_name_of(sample.name, types)
        fname = known
        fam = families.get(fname)
        if fam is None:
            fam = families[fname] = MetricFamily(fname)
        fam.samples.append(sample)
    if openmetrics and not seen_eof:
        result.errors.append(ParseError(0, "", "OpenMetrics payload does not end with '# EOF'"))
    return result
