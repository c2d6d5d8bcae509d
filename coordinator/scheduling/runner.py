"""``coordinator worker``: APScheduler only triggers the dispatcher and the scheduled audit
checkpoint. The only apscheduler importer. No job state lives in APScheduler (a memory
job store, rebuilt at start): the outbox and checkpoint tables are the state, so any
number of workers can run and restart at will.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger


def run(tick: Callable[[], Any], *, tick_seconds: float, first_run: datetime,
        also: Sequence[tuple[str, Callable[[], Any], float]] = ()) -> None:
    """Call ``tick`` every ``tick_seconds`` until SIGTERM or SIGINT, and each job of
    ``also`` (id, function, seconds) at its own interval, from the first run on.

    ``coalesce=True`` folds missed runs into one, ``max_instances=1`` never overlaps a
    slow drain with the next tick, and ``misfire_grace_time=None`` runs a late tick
    however late it is (after a pause or a suspended machine) instead of dropping it.
    """
    scheduler = BlockingScheduler(timezone=UTC, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
    scheduler.add_job(tick, IntervalTrigger(seconds=tick_seconds), id="dispatch",
                      next_run_time=first_run)
    for job_id, job, seconds in also:
        scheduler.add_job(job, IntervalTrigger(seconds=seconds), id=job_id,
                          next_run_time=first_run)

    def stop(signum: int, frame: FrameType | None) -> None:
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scheduler.start()
