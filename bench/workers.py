"""A pool of spawned worker processes that run timed load phases in step.

A phase names a factory, ``"module:function"``, called in each worker as
``factory(params, index) -> (op, close)``. ``op()`` runs one transaction and returns True
when it committed, False on a conflict. Each worker warms up, reports ready, and starts
its timed loop when the parent says go, so all workers measure the same window. Every
loop is bounded by a count and by time; every wait on another process has a timeout.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.common import Measure, percentiles

Op = Callable[[], bool]
Factory = Callable[[dict[str, Any], int], tuple[Op, Callable[[], None]]]

IDLE_TIMEOUT = 900.0        # a worker that hears nothing this long exits
READY_TIMEOUT = 300.0       # start-up, connecting and warm-up of one phase
CALL_TIMEOUT = 900.0        # an untimed task such as loading cases


class WorkerFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Phase:
    factory: str
    params: dict[str, Any]
    seconds: float
    unit: str
    max_ops: int = 0                 # 0: 100,000 per second of the phase
    warmup_ops: int = 20
    warmup_seconds: float = 1.0
    workers: int = 0                 # 0: every worker of the pool

    @property
    def op_limit(self) -> int:
        return self.max_ops or int(self.seconds * 100_000) + 1


@dataclass
class _Outcome:
    committed: int
    conflicts: int
    warmup: int
    elapsed: float
    latencies: list[float] = field(default_factory=list)    # seconds


def _resolve(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _timed_loop(op: Op, phase: Phase) -> _Outcome:
    latencies: list[float] = []
    committed = conflicts = 0
    clock = time.perf_counter
    start = clock()
    end = start + phase.seconds
    while committed + conflicts < phase.op_limit:
        t0 = clock()
        if t0 >= end:
            break
        if op():
            latencies.append(clock() - t0)
            committed += 1
        else:
            conflicts += 1
    return _Outcome(committed, conflicts, 0, clock() - start, latencies)


def _warm_up(op: Op, phase: Phase) -> int:
    done = 0
    end = time.perf_counter() + phase.warmup_seconds
    while done < phase.warmup_ops and time.perf_counter() < end:
        done += bool(op())
    return done


def _measure(index: int, phase: Phase, inbox: Any, outbox: Any) -> _Outcome | None:
    factory: Factory = _resolve(phase.factory)
    op, close = factory(phase.params, index)
    try:
        warm = _warm_up(op, phase)
        outbox.put(("ready", index, None))
        if inbox.get(timeout=READY_TIMEOUT) != "go":
            return None
        outcome = _timed_loop(op, phase)
        outcome.warmup = warm
        return outcome
    finally:
        close()


def _serve(index: int, inbox: Any, outbox: Any) -> None:
    """Worker process main loop: run tasks until told to stop or left idle."""
    while True:
        try:
            task = inbox.get(timeout=IDLE_TIMEOUT)
        except queue.Empty:
            return
        if task is None:
            return
        if not isinstance(task, tuple):
            continue                      # a stray "go"/"abort" from an aborted phase
        try:
            if task[0] == "call":
                outbox.put(("done", index, _resolve(task[1])(task[2], index)))
            elif task[0] == "measure":
                outbox.put(("done", index, _measure(index, task[1], inbox, outbox)))
        except BaseException:
            outbox.put(("error", index, traceback.format_exc()))


class WorkerPool:
    """``size`` spawned processes, kept for the whole script to avoid start-up costs."""

    def __init__(self, size: int) -> None:
        ctx = mp.get_context("spawn")
        self.outbox = ctx.Queue()
        self.inboxes = [ctx.Queue() for _ in range(size)]
        self.procs = [ctx.Process(target=_serve, args=(i, self.inboxes[i], self.outbox),
                                  daemon=True, name=f"bench-worker-{i}")
                      for i in range(size)]
        for p in self.procs:
            p.start()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for box in self.inboxes:
            box.put("abort")
            box.put(None)
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)

    def _collect(self, kind: str, n: int, timeout: float) -> dict[int, Any]:
        got: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            try:
                msg, index, payload = self.outbox.get(timeout=max(0.1, left))
            except queue.Empty:
                if left <= 0:
                    raise WorkerFailed(f"workers did not report {kind} in {timeout:.0f} s")\
                        from None
                continue
            if msg == "error":
                for box in self.inboxes:
                    box.put("abort")
                raise WorkerFailed(f"worker {index} failed:\n{payload}")
            if msg == kind:
                got[index] = payload
        return got

    def call(self, fn: str, params: list[dict[str, Any]]) -> list[Any]:
        """Run ``fn(params[i], i)`` in worker i (untimed) and return the results in order."""
        for i, p in enumerate(params):
            self.inboxes[i].put(("call", fn, p))
        got = self._collect("done", len(params), CALL_TIMEOUT)
        return [got[i] for i in range(len(params))]

    def measure(self, phase: Phase) -> Measure:
        n = phase.workers or len(self.procs)
        for i in range(n):
            self.inboxes[i].put(("measure", phase))
        self._collect("ready", n, READY_TIMEOUT)
        for i in range(n):
            self.inboxes[i].put("go")
        outcomes: list[_Outcome] = list(
            self._collect("done", n, phase.seconds + READY_TIMEOUT).values())
        return _combine(outcomes, phase)


def _combine(outcomes: list[_Outcome], phase: Phase) -> Measure:
    latencies_ms = [s * 1000 for o in outcomes for s in o.latencies]
    p50, p95, p99 = percentiles(latencies_ms)
    rate = sum(o.committed / o.elapsed for o in outcomes if o.elapsed > 0)
    return Measure(
        rate=rate, unit=phase.unit, count=sum(o.committed for o in outcomes),
        seconds=max((o.elapsed for o in outcomes), default=0.0), p50=p50, p95=p95, p99=p99,
        extra={"workers": len(outcomes), "conflicts": sum(o.conflicts for o in outcomes),
               "warmup": sum(o.warmup for o in outcomes)})
