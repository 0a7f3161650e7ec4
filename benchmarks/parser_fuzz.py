"""Mutation fuzzing of the exposition parser over the captured fixtures.

Each input is a fixture (or a slice of one) with random byte-level mutations: flips, inserted
special characters (braces, quotes, backslashes, ``#``, newlines, spaces), deleted or duplicated
spans, and spliced lines from another fixture. The parser must never raise; every reported error
must name a line number inside the input; and the bulk reading of simple runs must give exactly
what reading every line on its own gives (families, types, samples, errors). Prints the number
of inputs run.

    python benchmarks/parser_fuzz.py [--inputs 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from gpufleet.collectors.exposition import ParseResult, parse

SPECIAL = list('{}"\\#=, \n\t') + ["# EOF\n", "# TYPE x histogram\n", "+Inf", "NaN", " # {a=\"1\"} 1 2",
                                   "_created", "le=", "\u00e9", "\x00"]


def mutate(rng: random.Random, text: str, other: str) -> str:
    """One random mutation chain of ``text``."""
    if len(text) > 4000:
        start = rng.randrange(len(text) - 2000)
        text = text[start:start + rng.randrange(50, 2000)]
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(5)
        pos = rng.randrange(len(text) + 1)
        if op == 0:
            text = text[:pos] + rng.choice(SPECIAL) + text[pos:]
        elif op == 1:
            text = text[:pos] + text[pos + rng.randint(1, 20):]
        elif op == 2 and text:
            c = chr(rng.randrange(32, 0x250))
            text = text[:pos] + c + text[pos + 1:]
        elif op == 3:
            span = text[pos:pos + rng.randint(1, 80)]
            text = text[:pos] + span + span + text[pos:]
        else:
            lines = other.splitlines(keepends=True)
            if lines:
                text = text[:pos] + rng.choice(lines) + text[pos:]
    return text


def _digest(result: ParseResult) -> str:
    """Everything a parse result says, NaN-safe (NaN != NaN would make equal results differ)."""
    fams = [(f.name, f.type, f.help, f.unit, f.samples) for f in result.families.values()]
    return repr((fams, result.errors, result.openmetrics))


def main() -> int:
    """Run the fuzz loop; exit non-zero on the first crash or out-of-range line number."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
    corpus = [p.read_text(encoding="utf-8") for p in sorted(root.glob("*.prom"))]
    errors = 0
    for i in range(args.inputs):
        text = mutate(rng, rng.choice(corpus), rng.choice(corpus))
        try:
            result = parse(text)
        except Exception as exc:  # the point of the fuzzer: report any crash with its input
            print(f"crash on input {i}: {type(exc).__name__}: {exc}\n{text!r}")
            return 1
        nlines = text.count("\n") + 1
        for e in result.errors:
            if not 0 <= e.line <= nlines:
                print(f"input {i}: error line {e.line} outside 1..{nlines}: {e}")
                return 1
        if _digest(result) != _digest(parse(text, bulk=False)):
            print(f"input {i}: bulk and line-by-line parses differ\n{text!r}")
            return 1
        errors += len(result.errors)
    print(f"inputs: {args.inputs:,}; crashes: 0; bulk/line-by-line differences: 0; bad lines reported: {errors:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
