"""Parse Prometheus text format 0.0.4 and OpenMetrics 1.0 into metric families.

A bad line is reported with its line number and skipped; every good line of the same
payload still parses. Samples without a ``# TYPE`` are ``untyped`` families of their own.
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import operator
import re
from collections.abc import Iterable

from gpufleet.core.samples import Exemplar, Labels, MetricFamily, ParseError, Sample

__all__ = ["parse", "ParseResult", "family_name_of", "resolve_key"]

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
# as Prometheus' scrape cache does. ``_MISS`` marks a body not seen yet; ``None`` one the fast
# path cannot explain (the exact parser then decides and names the problem).
_LABEL_CACHE: dict[str, tuple[tuple[str, str], ...] | None] = {}
_LABEL_CACHE_MAX = 1_000_000
_MISS: object = object()
_PAIR_FIND = re.compile(
    r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"([^"\\\n]*(?:\\[^\n][^"\\\n]*)*)"[ \t]*(?:,|$)|(.)', re.S)


def clear_cache() -> None:
    """Forget every remembered label body and sample key (used by benchmarks to measure a cold parse)."""
    _LABEL_CACHE.clear()
    _KEY_CACHE.clear()


def _fast_labels(body: str) -> tuple[tuple[str, str], ...] | None:
    """Sorted label pairs of a well-formed label body, or None to defer to the exact parser."""
    found = _LABEL_CACHE.get(body, _MISS)
    if found is not _MISS:
        return found  # type: ignore[return-value]
    if len(_LABEL_CACHE) >= _LABEL_CACHE_MAX:
        _LABEL_CACHE.clear()
    found = _LABEL_CACHE[body] = _scan_labels(body)
    return found


def _scan_labels(body: str) -> tuple[tuple[str, str], ...] | None:
    pairs = _split_labels(body) if "\\" not in body and "\n" not in body else None
    if pairs is None:
        pairs = []
        for name, value, junk in _PAIR_FIND.findall(body):
            if junk:
                return None
            pairs.append((name, _UNESCAPE.sub(_unescape_one, value) if "\\" in value else value))
    pairs.sort()
    if len({k for k, _ in pairs}) != len(pairs):
        return None
    return tuple(pairs)


_GOOD_NAMES: set[str] = set()


def _split_labels(body: str) -> list[tuple[str, str]] | None:
    """The common shape ``a="x",b="y"`` without escapes, by splitting; None when it is anything else."""
    parts = body.split('",')
    last = parts[-1]
    if last:
        if last[-1] != '"':
            return None
        parts[-1] = last[:-1]
    else:
        parts.pop()  # a trailing comma
    pairs = []
    for part in parts:
        name, sep, value = part.partition('="')
        if not sep or '"' in value:
            return None
        if name not in _GOOD_NAMES:
            if _LABEL_NAME.fullmatch(name) is None:
                return None
            if len(_GOOD_NAMES) > 100_000:
                _GOOD_NAMES.clear()
            _GOOD_NAMES.add(name)
        pairs.append((name, value))
    return pairs


def _unescape_one(m: re.Match[str]) -> str:
    return _ESCAPES.get(m.group(1), "\\" + m.group(1))


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


# Comment lines split a payload into runs of sample lines. A run is first read whole by one
# multi-line regex (the common shape: no exemplar, no ``_`` in numbers, no stray braces); when
# every line of the run matched and every label body and number converts, the run is done
# without a Python-level step per line. Anything else re-reads the run line by line, exactly.
_NAME = operator.itemgetter(0)
_RUN_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^{}#\n]*)\})?[ \t]+([^\s_]+)(?:[ \t]+([^\s_]+))?[ \t]*$",
                       re.M)


def parse(text: str, *, openmetrics: bool | None = None, bulk: bool = True) -> ParseResult:
    """Parse an exposition payload. ``openmetrics=None`` detects the format by ``# EOF``.

    ``bulk=False`` reads every line on its own: the same result, slower (for differential tests).
    The cyclic garbage collector is paused meanwhile: parsing makes tens of thousands of tuples and
    no cycles, and the collector's passes over them took ~40% of a large parse.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _parse(text, openmetrics, bulk)
    finally:
        if paused:
            gc.enable()


def _parse(text: str, openmetrics: bool | None, bulk: bool) -> ParseResult:
    result = ParseResult()
    if openmetrics is None:
        openmetrics = text.rstrip().endswith("# EOF")
    result.openmetrics = openmetrics
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    reader = _Reader(result, openmetrics, bulk)
    n = len(text)
    pos = 0
    lineno = 1
    find = text.find
    while pos < n:
        # the next comment line: at ``pos`` itself or after a newline
        start = pos if text.startswith("#", pos) else find("\n#", pos)
        if start < 0:
            break
        if start != pos:
            start += 1
            run = text[pos:start]
            reader.run(run, lineno)
            lineno += run.count("\n")
        end = find("\n", start)
        if end < 0:
            end = n
        reader.comment(text[start:end], lineno)
        lineno += 1
        pos = end + 1
    if pos < n:
        reader.run(text[pos:], lineno)
    if openmetrics and not reader.seen_eof:
        result.errors.append(ParseError(0, "", "OpenMetrics payload does not end with '# EOF'"))
    return result


_new_sample = functools.partial(tuple.__new__, Sample)

# ``name{labels}`` (with the spaces before the value) -> (name, sorted labels), or None when the
# key needs the exact parser; a scrape repeats its series, so most keys are found here.
_KEY_CACHE: dict[str, tuple[str, Labels] | None] = {}
_KEY = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^{}#\n]*)\})?[ \t]*")


def _resolve_key(key: str) -> tuple[str, Labels] | None:
    """Name and labels of a sample key, remembered (None too, for a key the fast path cannot take)."""
    m = _KEY.fullmatch(key)
    found: tuple[str, Labels] | None = None
    if m is not None:
        name, body = m.groups()
        labels = () if body is None else _fast_labels(body)
        found = None if labels is None else (name, labels)
    if len(_KEY_CACHE) >= _LABEL_CACHE_MAX:
        _KEY_CACHE.clear()
    _KEY_CACHE[key] = found
    return found


def resolve_key(key: str) -> tuple[str, Labels] | None:
    """Name and sorted labels of a sample line's ``name{labels}`` part as the bulk reader takes it, or None."""
    found = _KEY_CACHE.get(key, _MISS)
    return _resolve_key(key) if found is _MISS else found  # type: ignore[return-value]


class _Reader:
    """Parsing state across the runs of sample lines of one payload."""

    __slots__ = ("result", "openmetrics", "bulk", "ts_scale", "types", "family_of", "seen_eof", "fam_name",
                 "fam_samples")

    def __init__(self, result: ParseResult, openmetrics: bool, bulk: bool) -> None:
        self.result = result
        self.openmetrics = openmetrics
        self.bulk = bulk
        self.ts_scale = 1.0 if openmetrics else 0.001
        self.types: dict[str, str] = {}
        self.family_of: dict[str, str] = {}
        self.seen_eof = False
        self.fam_name = ""
        self.fam_samples: list[Sample] = []

    def comment(self, line: str, lineno: int) -> None:
        """A line starting with ``#``: a header, ``# EOF`` or a plain comment."""
        if self.seen_eof:
            self.result.errors.append(ParseError(lineno, line, "content after '# EOF'"))
        elif line.rstrip() == "# EOF":
            self.seen_eof = True
        else:
            self.fam_name = ""
            _header(line, lineno, self.result, self.types, self.family_of)

    def run(self, run: str, first_lineno: int) -> None:
        """Add the samples of a run of lines that holds no comment line."""
        whole = self._whole(run) if self.bulk and not self.seen_eof else None
        if whole is not None:
            for name, group in itertools.groupby(whole, key=_NAME):
                self._family(name).extend(group)
            return
        for sample in self._by_line(run, first_lineno):
            self._family(sample.name).append(sample)

    def _family(self, name: str) -> list[Sample]:
        """The sample list of the family that sample ``name`` belongs to."""
        if name == self.fam_name:
            return self.fam_samples
        known = self.family_of.get(name)
        if known is None:
            known = self.family_of[name] = family_name_of(name, self.types)
        families = self.result.families
        fam = families.get(known)
        if fam is None:
            fam = families[known] = MetricFamily(known)
        self.fam_name = name
        self.fam_samples = fam.samples
        return fam.samples

    def _whole(self, run: str) -> list[Sample] | None:
        """The run's samples without a Python step per line, or None when a line needs the exact parser."""
        lines = run.split("\n")
        if not lines[-1]:
            lines.pop()
        if not lines:
            return None
        # ``name{labels} value``: the part before the last space, looked up whole in the key cache
        keys, _, value_texts = zip(*map(str.rpartition, lines, itertools.repeat(" ")), strict=True)
        resolved = list(map(_KEY_CACHE.get, keys))
        if None in resolved:
            for i, key in enumerate(keys):
                if resolved[i] is None and (found := _resolve_key(key)) is not None:
                    resolved[i] = found
            if None in resolved:  # a timestamp, an exemplar or a bad line: read the run by regex
                return self._by_regex(run)
        if "_" in "".join(value_texts):  # Python's float() accepts 1_000; the formats do not
            return None
        try:
            values = list(map(float, value_texts))
        except ValueError:
            return None
        names, labels = zip(*resolved, strict=True)
        return list(map(_new_sample, zip(names, labels, values, itertools.repeat(None), itertools.repeat(None))))

    def _by_regex(self, run: str) -> list[Sample] | None:
        """The run's samples by one regex pass (timestamps allowed), or None when a line needs the exact parser."""
        found = _RUN_LINE.findall(run)
        lines = run.count("\n") + (0 if run.endswith("\n") else 1)
        if len(found) != lines or not found:
            return None
        names, bodies, value_texts, ts_texts = zip(*found, strict=True)
        labels = list(map(_LABEL_CACHE.get, bodies))
        if None in labels:  # label bodies not seen yet (or that need the exact parser)
            for i, body in enumerate(bodies):
                if labels[i] is None:
                    labels[i] = _fast_labels(body)
                    if labels[i] is None:
                        return None
        try:
            values = list(map(float, value_texts))
            if any(ts_texts):
                scale = self.ts_scale
                stamps: Iterable[float | None] = [_timestamp(t) * scale if t else None for t in ts_texts]
            else:
                stamps = itertools.repeat(None)
        except ValueError:
            return None
        return list(map(_new_sample, zip(names, labels, values, stamps, itertools.repeat(None))))

    def _by_line(self, run: str, first_lineno: int) -> list[Sample]:
        """The run's samples line by line; bad lines are reported and skipped."""
        errors = self.result.errors
        out: list[Sample] = []
        fast = _FAST_LINE.match
        cache_get = _LABEL_CACHE.get
        miss = _MISS
        ts_scale = self.ts_scale
        for lineno, line in enumerate(run.split("\n"), start=first_lineno):
            if not line:
                continue
            if self.seen_eof:
                if line.strip():
                    errors.append(ParseError(lineno, line, "content after '# EOF'"))
                continue
            m = fast(line)
            sample: Sample | None = None
            if m is not None:
                name, body, value_text, ts_text = m.groups()
                labels = () if body is None else cache_get(body, miss)
                if labels is miss:
                    labels = _fast_labels(body)
                if labels is not None and "_" not in value_text:
                    try:
                        value = float(value_text)
                        ts = None if ts_text is None else _timestamp(ts_text) * ts_scale
                        sample = Sample(name, labels, value, ts, None)  # type: ignore[arg-type]
                    except ValueError:
                        sample = None
            if sample is None:
                if not line.strip():
                    continue
                try:
                    name, labels_d, value, ts, exemplar = _parse_sample_line(line, self.openmetrics)
                except ValueError as exc:
                    errors.append(ParseError(lineno, line, str(exc)))
                    continue
                sample = Sample(name, tuple(sorted(labels_d.items())), value, ts, exemplar)
            out.append(sample)
        return out


def _timestamp(text: str) -> float:
    if "_" in text:
        raise ValueError(text)
    ts = float(text)
    if ts != ts or ts in (math.inf, -math.inf):
        raise ValueError(text)
    return ts


def _header(line: str, lineno: int, result: ParseResult, types: dict[str, str], family_of: dict[str, str]) -> None:
    """Apply a ``# TYPE``, ``# HELP`` or ``# UNIT`` line; other comments are ignored."""
    families = result.families
    fields = line.split(None, 3)
    if len(fields) < 3 or fields[1] not in ("TYPE", "HELP", "UNIT"):
        return
    keyword, fname = fields[1], fields[2]
    if not _METRIC_NAME.fullmatch(fname):
        result.errors.append(ParseError(lineno, line, f"invalid metric name in # {keyword}"))
        return
    arg = fields[3] if len(fields) > 3 else ""
    fam = families.get(fname)
    if keyword == "TYPE":
        mtype = arg.strip().lower()
        if mtype not in _TYPES:
            result.errors.append(ParseError(lineno, line, f"unknown metric type {arg.strip()!r}"))
            return
        if fname in types:
            result.errors.append(ParseError(lineno, line, f"second # TYPE for {fname}"))
            return
        mtype = "untyped" if mtype == "unknown" else mtype
        if fam is not None and fam.samples:
            result.errors.append(ParseError(lineno, line, f"# TYPE for {fname} after its samples"))
            return
        types[fname] = mtype
        family_of.clear()
        if fam is None:
            fam = families[fname] = MetricFamily(fname)
        fam.type = mtype
    elif keyword == "HELP":
        if fam is None:
            fam = families[fname] = MetricFamily(fname)
        fam.help = _unescape_help(arg)
    else:
        if fam is None:
            fam = families[fname] = MetricFamily(fname)
        fam.unit = arg.strip()


def _unescape_help(text: str) -> str:
    if "\\" not in text:
        return text
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else "\\" if m.group(1) == "\\" else m.group(0), text)
