"""The one way into the store: exposition text -> parser -> adapters -> single writer."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gpufleet.collectors.exposition import parse
from gpufleet.collectors.normalize import Limits, normalize
from gpufleet.collectors.target import Target
from gpufleet.core.store import Batch, StoreWriter, WriteReport

__all__ = ["Scrape", "to_batch", "ingest", "ingest_file", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Scrape:
    """Exposition text as ``target`` served it at ``scrape_ts`` (epoch seconds)."""

    target: Target
    scrape_ts: float
    text: str
    interval_hint_s: float = 0.0


def to_batch(scrape: Scrape, limits: Limits = Limits()) -> Batch:
    """Parse and normalise one scrape."""
    if len(scrape.text) > MAX_BODY_BYTES:
        raise ValueError(f"{scrape.target.name}: body of {len(scrape.text)} bytes exceeds {MAX_BODY_BYTES}")
    return normalize(parse(scrape.text), scrape.target, scrape.scrape_ts, interval_hint_s=scrape.interval_hint_s,
                     limits=limits)


def ingest(writer: StoreWriter, scrapes: Iterable[Scrape], limits: Limits = Limits()) -> WriteReport:
    """Land scrapes in one transaction; scrapes already landed are skipped."""
    return writer.write([to_batch(s, limits) for s in scrapes])


def ingest_file(writer: StoreWriter, path: str | Path, *, target: str | None = None,
                timestamp: float | None = None) -> WriteReport:
    """Land a captured exposition file.

    Without ``timestamp`` the scrape time is the file's modification time, so landing the same
    capture twice is recognised as the same batch and changes nothing.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ValueError(f"cannot read exposition file {p}: {exc.strerror}") from exc
    if size > MAX_BODY_BYTES:
        raise ValueError(f"exposition file {p} is {size} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"exposition file {p} is not UTF-8 text (byte {exc.start})") from exc
    ts = timestamp if timestamp is not None else os.stat(p).st_mtime
    return ingest(writer, [Scrape(Target(target or p.stem), ts, text)])
