"""Build simulated history into a store through the real pipeline (render -> parse -> adapt -> write).

With several workers, each process runs its own copy of the (deterministic) fleet and renders and
parses a share of the targets; the parent process is the single writer.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpufleet.collectors.ingest import Scrape, to_batch
from gpufleet.collectors.target import Target
from gpufleet.core.simfleet import FleetConfig, SimulatedFleet
from gpufleet.core.store import Batch, StoreWriter, WriteReport, maintain

__all__ = ["build_history", "HistoryPlan"]


@dataclass(frozen=True)
class HistoryPlan:
    """``days`` of history ending at ``end`` (epoch seconds), one scrape of every target each ``step_s``."""

    days: float
    step_s: float
    end: float

    @property
    def start(self) -> float:
        return self.end - self.days * 86400

    @property
    def steps(self) -> int:
        return int(self.days * 86400 // self.step_s)


def _chunks(cfg: FleetConfig, plan: HistoryPlan, share: int, of: int, flush_every: int) -> Any:
    """Yield lists of batches, ``flush_every`` steps at a time, for targets ``share::of``."""
    fleet = SimulatedFleet(cfg)
    targets = [(t, Target(t.name, t.labels)) for t in fleet.targets()][share::of]
    sent: set[int] = set()
    pending: list[Batch] = []
    for i in range(1, plan.steps + 1):
        t = plan.start + i * plan.step_s
        fleet.advance(t, default_dt=plan.step_s)
        for sim_target, target in targets:
            batch = to_batch(Scrape(target, t, fleet.render(sim_target), plan.step_s))
            if of > 1:  # send each series definition once; the writer remembers it
                batch.series = {sid: d for sid, d in batch.series.items() if sid not in sent}
                sent.update(batch.series)
            pending.append(batch)
        if i % flush_every == 0 or i == plan.steps:
            yield i, pending
            pending = []


def _worker(cfg: FleetConfig, plan: HistoryPlan, share: int, of: int, flush_every: int, queue: Any) -> None:
    try:
        for item in _chunks(cfg, plan, share, of, flush_every):
            queue.put(item)
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        queue.put(("error", traceback.format_exc()))


def _next_chunk(queue: Any, proc: Any, timeout_s: float = 600.0) -> tuple[Any, Any]:
    """The worker's next chunk; raises at once if the worker died without reporting."""
    waited = 0.0
    while True:
        try:
            return queue.get(timeout=1.0)
        except queue_mod.Empty:
            waited += 1.0
            if not proc.is_alive():
                raise RuntimeError(f"history worker {proc.name} exited with code {proc.exitcode}") from None
            if waited >= timeout_s:
                raise RuntimeError(f"history worker {proc.name} sent nothing for {timeout_s:.0f} s") from None


def build_history(db: str | Path, cfg: FleetConfig, plan: HistoryPlan,
                  on_step: Callable[[int, int], None] | None = None, *, workers: int = 1,
                  flush_every: int = 12) -> WriteReport:
    """Simulate ``plan`` and land every scrape in ``db``; returns what the writer did."""
    cfg = cfg.model_copy(update={"start": plan.start})
    report = WriteReport()
    with StoreWriter(db) as writer:
        if workers <= 1:
            for i, batches in _chunks(cfg, plan, 0, 1, flush_every):
                report.merge(writer.write(batches))
                if on_step:
                    on_step(i, plan.steps)
        else:
            # spawn, not fork: forking a process that already runs threads (rich's live display, DuckDB's
            # and polars' pools) can copy a held lock into the child and hang it.
            ctx = mp.get_context("spawn")
            queues = [ctx.Queue(maxsize=4) for _ in range(workers)]
            procs = [ctx.Process(target=_worker, args=(cfg, plan, w, workers, flush_every, queues[w]), daemon=True)
                     for w in range(workers)]
            for p in procs:
                p.start()
            try:
                done = 0
                while done < plan.steps:
                    chunk: list[Batch] = []
                    for q, proc in zip(queues, procs, strict=True):
                        i, part = _next_chunk(q, proc)
                        if i == "error":
                            raise RuntimeError(f"history worker failed:\n{part}")
                        chunk.extend(part)
                    done = i
                    report.merge(writer.write(chunk))
                    if on_step:
                        on_step(done, plan.steps)
            finally:
                for p in procs:
                    p.join(timeout=5)
                    if p.is_alive():
                        p.kill()
        maintain(writer.con)
    return report
