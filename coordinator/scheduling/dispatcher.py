"""The dispatcher: claims due outbox rows, sends them, marks them sent. No business state.

One batch: claim up to ``batch_size`` due rows under a lease (one transaction), render and
send them per channel over one connection per channel (the outbox id is the Message-ID /
idempotency key). Each message is marked sent in a short transaction of its own right
after the channel accepted it (``Notifier.send``'s ``on_result``), where this worker still
holds the claim; failures are recorded together at the end of the batch. A failed send is
retried with back-off; after ``max_attempts`` failures the row is ``dead`` and shows up in
the prosjektleder's dead-letter list. A worker that dies mid-batch leaves its unmarked rows
claimed until the lease runs out; the next tick of any worker takes them again, so nothing
is lost, and only the one message in flight at the kill (accepted by the channel, not yet
marked) can be sent a second time, with the same id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from coordinator.ports import Clock, Notifier, OutboxStore
from coordinator.scheduling import policy
from coordinator.scheduling.messages import render
from coordinator.scheduling.outbox import DispatchReport, OutboxRow, OutgoingMessage

FAULT_POINTS = ("after_claim", "mid_batch", "after_send_before_commit")


def _no_fault(point: str) -> None:
    return None


@dataclass
class Dispatcher:
    store: OutboxStore
    notifiers: Mapping[str, Notifier]
    clock: Clock
    worker: str
    base_url: str = "http://127.0.0.1:8000"
    batch_size: int = 200
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = policy.MAX_ATTEMPTS
    faults: Callable[[str], None] = field(default=_no_fault)   # test-only (bootstrap override)

    def dispatch_due(self, max_batches: int = 10_000) -> DispatchReport:
        """Drain what is due now, batch after batch."""
        total = DispatchReport()
        for _ in range(max_batches):
            r = self.dispatch_batch()
            total = DispatchReport(total.claimed + r.claimed, total.sent + r.sent,
                                   total.retried + r.retried, total.dead + r.dead,
                                   total.lost_claims + r.lost_claims)
            if r.claimed < self.batch_size:
                break
        return total

    def dispatch_batch(self) -> DispatchReport:
        rows = self.store.claim(self.worker, self.clock.now(), self.batch_size, self.lease)
        if not rows:
            return DispatchReport()
        self.faults("after_claim")
        marked: set[UUID] = set()
        lost: set[UUID] = set()

        def record(outbox_id: UUID, error: str | None) -> None:
            if error is not None or outbox_id in marked or outbox_id in lost:
                return
            self.faults("after_send_before_commit")
            try:
                ok = self.store.mark_sent(self.worker, self.clock.now(), outbox_id)
            except Exception as exc:
                raise _MarkFailed(outbox_id) from exc
            (marked if ok else lost).add(outbox_id)
            if not ok:          # the lease ran out and the row was taken over: so was the
                raise _LeaseLost(outbox_id)         # rest of the batch; stop sending it

        results = self._send(rows, record)
        now = self.clock.now()
        mine = {r.id for r in rows}
        late = [i for i, error in results.items()              # a notifier that never
                if error is None and i in mine and i not in marked | lost]  # called back
        failed = []
        dead = 0
        for r in rows:
            if lost and r.id not in results:
                continue                 # not sent: left to whoever holds it now
            error = results.get(r.id, "no result from the notifier")
            if error is None:
                continue
            attempts = r.attempts + 1
            give_up = policy.is_dead(attempts, self.max_attempts)
            dead += give_up
            failed.append((r.id, error, None if give_up else now + policy.backoff(attempts)))
        late_marked, lost_now = self.store.complete(self.worker, now, late, failed)
        return DispatchReport(len(rows), len(marked) + late_marked, len(failed) - dead, dead,
                              len(lost) + lost_now)

    def _send(self, rows: Sequence[OutboxRow],
              record: Callable[[UUID, str | None], None]) -> dict[UUID, str | None]:
        results: dict[UUID, str | None] = {}
        groups: dict[str, list[OutgoingMessage]] = defaultdict(list)
        for r in rows:
            try:
                groups[r.channel].append(render(r, self.base_url))
            except (KeyError, ValueError, TypeError) as exc:
                results[r.id] = f"cannot render: {type(exc).__name__}: {exc}"

        def on_result(outbox_id: UUID, error: str | None) -> None:
            results[outbox_id] = error
            record(outbox_id, error)

        for i, (channel, messages) in enumerate(sorted(groups.items())):
            if i:
                self.faults("mid_batch")
            notifier = self.notifiers.get(channel)
            if notifier is None:
                results.update(dict.fromkeys((m.id for m in messages),
                                             f"no notifier for channel {channel!r}"))
            elif not _send_channel(notifier, messages, on_result, results):
                break
        return results


def _send_channel(notifier: Notifier, messages: Sequence[OutgoingMessage],
                  on_result: Callable[[UUID, str | None], None],
                  results: dict[UUID, str | None]) -> bool:
    """Send one channel's messages; False when the batch must stop (claim lost)."""
    try:
        returned = notifier.send(messages, on_result)
    except _MarkFailed as exc:                   # the store failed: stop; leases run out
        raise exc.__cause__ or exc from None
    except _LeaseLost:
        return False
    except Exception as exc:          # the adapter failed as a whole: retry the unsent ones
        results.update({m.id: f"{type(exc).__name__}: {exc}"
                        for m in messages if m.id not in results})
        return True
    for outbox_id, error in returned.items():
        results.setdefault(outbox_id, error)
    return True


class _MarkFailed(Exception):
    """Marking a sent message failed (the database, not the channel): abort the batch."""


class _LeaseLost(Exception):
    """This worker no longer holds the batch's claim: stop sending it."""
