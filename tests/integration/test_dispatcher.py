"""The dispatcher drains the outbox: on the in-memory fake, SQLite (conditional UPDATE +
rowcount) and PostgreSQL (FOR UPDATE SKIP LOCKED), with fake channels whose contract the
SMTP adapter also passes (test_notifier_contract.py)."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import Engine, func, select

from coordinator.bootstrap import build
from coordinator.cases.commands import OpenCase
from coordinator.cases.model import Actor
from coordinator.demo import JOURNEYS, actor, referral, take_step, team
from coordinator.errors import PermissionDenied, ReminderNotFound
from coordinator.meetings import ScheduleMeeting
from coordinator.persistence.reminders import SqlInbox, SqlOutboxStore
from coordinator.persistence.tables import deliveries
from coordinator.ports import OutboxStore
from coordinator.scheduling.dispatcher import Dispatcher
from coordinator.scheduling.outbox import (
    CLAIMED,
    DEAD,
    EMAIL,
    INAPP,
    NOTICE,
    PENDING,
    SENT,
    OutboxRow,
    OutgoingMessage,
)
from coordinator.service import Coordinator
from coordinator.testing import (
    FakeClock,
    InMemoryOutboxStore,
    InMemoryStore,
    InMemoryUnitOfWork,
    RecordingNotifier,
)
from coordinator.workflows.deadlines import OSLO

NAV = actor("ha", "nav_veileder")
LEAD = Actor("pl-1", "prosjektleder")
CHANNELS = (EMAIL, INAPP)


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def setup(request: pytest.FixtureRequest,
          clock: FakeClock) -> tuple[Coordinator, OutboxStore, Engine | None]:
    if request.param == "memory":
        store = InMemoryStore()
        mem = InMemoryOutboxStore(store)
        return (build(clock=clock, uow=lambda: InMemoryUnitOfWork(store), outbox_store=mem,
                      channels=CHANNELS), mem, None)
    engine: Engine = request.getfixturevalue(f"{request.param.replace('postgres', 'pg')}_engine")
    sql = SqlOutboxStore(engine)
    return build(engine=engine, clock=clock, channels=CHANNELS, outbox_store=sql), sql, engine


def dispatcher(store: OutboxStore, clock: FakeClock, worker: str = "w1",
               **notifiers: RecordingNotifier) -> Dispatcher:
    chosen = notifiers or {EMAIL: RecordingNotifier(), INAPP: RecordingNotifier()}
    return Dispatcher(store, chosen, clock, worker, base_url="https://app.example.no",
                      batch_size=50, lease=timedelta(seconds=60))


def case_with_meeting(c: Coordinator, clock: FakeClock) -> tuple[UUID, UUID]:
    clock.set(oslo(2027, 3, 1, 9))
    channel, person = referral("ha", clock.now().date())
    case_id = c.open_case(OpenCase("ha", channel, person, actor("ha", "fastlege"),
                                   team=team("ha"))).id
    for step in JOURNEYS["ha"][:3]:
        take_step(c, case_id, "ha", step)
    start = oslo(2027, 3, 9, 10)
    meeting = c.meetings.schedule(ScheduleMeeting(case_id, "get_to_know", start,
                                                  start + timedelta(hours=1),
                                                  ("nav_veileder", "kognitiv_terapeut"), NAV))
    return case_id, meeting.id


def statuses(c: Coordinator, case_id: UUID) -> dict[tuple[str, str, str], str]:
    with c.uow() as uow:
        return {(r.kind, r.recipient, r.channel): r.status for r in uow.outbox.for_case(case_id)
                if r.meeting_id is not None}


def test_due_messages_go_out_once_and_reminders_wait_for_their_time(
        setup: tuple[Coordinator, OutboxStore, Engine | None], clock: FakeClock) -> None:
    c, store, _ = setup
    case_id, _ = case_with_meeting(c, clock)
    email, inapp = RecordingNotifier(), RecordingNotifier()
    d = dispatcher(store, clock, email=email, inapp=inapp)
    first = d.dispatch_due()
    invitations = {(m.recipient, m.subject) for m in email.messages.values()}
    assert invitations == {(a.id, "Møteinnkalling 09.03.2027 kl. 10:00")
                           for a in (NAV, actor("ha", "kognitiv_terapeut"))}
    assert len(inapp.messages) == 2 and first.sent == 4
    assert all(m.invite is not None for m in email.messages.values())
    assert d.dispatch_due().claimed == 0                       # nothing due twice
    clock.set(oslo(2027, 3, 8, 9))                             # Monday 09:00: the reminder
    assert d.dispatch_due().sent == 4
    assert set(statuses(c, case_id).values()) == {SENT}
    assert len(email.attempts) == len(set(email.attempts)) == 4


def test_failures_back_off_then_go_dead_and_the_prosjektleder_sees_and_requeues_them(
        setup: tuple[Coordinator, OutboxStore, Engine | None], clock: FakeClock) -> None:
    c, store, _ = setup
    case_with_meeting(c, clock)
    nav_fails = RecordingNotifier(fail_for=frozenset({NAV.id}))
    d = dispatcher(store, clock, email=nav_fails, inapp=RecordingNotifier())
    d.max_attempts = 3
    assert d.dispatch_due().retried == 1
    assert d.dispatch_due().claimed == 0                       # backing off for 30 s
    clock.advance(seconds=30)
    assert d.dispatch_due().retried == 1                       # 2nd failure: wait 60 s
    clock.advance(seconds=59)
    assert d.dispatch_due().claimed == 0
    clock.advance(seconds=1)
    assert d.dispatch_due().dead == 1
    [dead] = c.meetings.dead_letters("ha", actor=LEAD)
    assert (dead.recipient, dead.channel, dead.status, dead.attempts) == (NAV.id, EMAIL, DEAD, 3)
    assert "refused" in (dead.last_error or "")
    assert c.meetings.dead_letters("ringsaker", actor=LEAD) == []
    with pytest.raises(PermissionDenied):
        c.meetings.dead_letters(actor=NAV)
    again = c.meetings.requeue(dead.id, actor=LEAD)
    assert (again.status, again.attempts) == (PENDING, 0)
    with pytest.raises(ReminderNotFound):
        c.meetings.requeue(dead.id, actor=LEAD)                # no longer dead
    d.notifiers = {EMAIL: RecordingNotifier(), INAPP: RecordingNotifier()}
    assert d.dispatch_due().sent == 1


def test_an_expired_lease_is_taken_over_and_the_old_claim_cannot_mark_it(
        setup: tuple[Coordinator, OutboxStore, Engine | None], clock: FakeClock) -> None:
    c, store, _ = setup
    case_with_meeting(c, clock)
    taken = store.claim("dead-worker", clock.now(), 100, timedelta(seconds=60))
    assert taken and all(r.status == CLAIMED for r in taken)
    b = dispatcher(store, clock, "w2")
    assert b.dispatch_due().claimed == 0                       # lease still running
    clock.advance(seconds=61)
    assert b.dispatch_due().sent == len(taken)
    assert store.complete("dead-worker", clock.now(), [taken[0].id], []) == (0, 1)


def _rows(n: int, now: datetime) -> list[OutboxRow]:
    return [OutboxRow(uuid.uuid4(), None, "ha", NOTICE, f"bulk:{i}", "deadline_overdue", INAPP,
                      f"user-{i % 7}", now - timedelta(seconds=i % 5), None,
                      {"deadline": "kartlegging", "due_at": now.isoformat()}) for i in range(n)]


class SlowRecorder:
    """Records every send from any thread, taking a little time per message."""

    def __init__(self, log: list[tuple[str, UUID]], name: str) -> None:
        self.log, self.name = log, name

    def send(self, messages: Sequence[OutgoingMessage],
             on_result: Callable[[UUID, str | None], None] | None = None,
             ) -> Mapping[UUID, str | None]:
        for m in messages:
            time.sleep(0.001)
            self.log.append((self.name, m.id))
            if on_result is not None:
                on_result(m.id, None)
        return dict.fromkeys((m.id for m in messages), None)


def _race(store: OutboxStore, clock: FakeClock, n: int) -> list[tuple[str, UUID]]:
    log: list[tuple[str, UUID]] = []
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        d = Dispatcher(store, {INAPP: SlowRecorder(log, name)}, clock, name, batch_size=25)  # type: ignore[dict-item]
        start.wait()
        try:
            while d.dispatch_batch().claimed:
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return log


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_two_concurrent_dispatchers_send_every_row_exactly_once(
        request: pytest.FixtureRequest, clock: FakeClock, backend: str) -> None:
    engine: Engine = request.getfixturevalue(f"{backend.replace('postgres', 'pg')}_engine")
    c = build(engine=engine, clock=clock)
    rows = _rows(400, clock.now())
    with c.uow() as uow:
        uow.outbox.add(rows)
        uow.commit()
    log = _race(SqlOutboxStore(engine), clock, len(rows))
    sent = [i for _, i in log]
    assert len(sent) == len(set(sent)) == len(rows)            # none twice, none lost
    assert set(sent) == {r.id for r in rows}
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(deliveries)) == len(rows)
    if backend == "postgres":                                  # SKIP LOCKED: both worked
        assert {w for w, _ in log} == {"w0", "w1"}


def test_in_app_messages_land_in_the_inbox_once_even_when_sent_twice(
        sqlite_engine: Engine, clock: FakeClock) -> None:
    c = build(engine=sqlite_engine, clock=clock, channels=(INAPP,))
    case_id, _ = case_with_meeting(c, clock)
    inbox = SqlInbox(sqlite_engine, clock)
    d = Dispatcher(SqlOutboxStore(sqlite_engine), {INAPP: inbox}, clock, "w1",
                   base_url="https://app.example.no")
    assert d.dispatch_due().sent == 2
    [item] = inbox.messages_for(NAV.id)
    assert item.case_id == case_id
    assert item.subject == "Møteinnkalling 09.03.2027 kl. 10:00"
    assert "bli kjent-samtale" in item.body                    # the app may say what it is
    again = OutgoingMessage(item.id, INAPP, NAV.id, "x", "y", "z", case_id)
    assert inbox.send([again]) == {item.id: None}
    assert len(inbox.messages_for(NAV.id)) == 1


def test_a_notifier_that_raises_makes_the_whole_batch_retry(
        setup: tuple[Coordinator, OutboxStore, Engine | None], clock: FakeClock) -> None:
    c, store, _ = setup
    case_with_meeting(c, clock)

    class Down:
        def send(self, messages: Sequence[OutgoingMessage],
                 on_result: Callable[[UUID, str | None], None] | None = None,
                 ) -> Mapping[UUID, str | None]:
            raise ConnectionRefusedError("smtp down")

    d = Dispatcher(store, {EMAIL: Down(), INAPP: RecordingNotifier()}, clock, "w1")  # type: ignore[dict-item]
    report = d.dispatch_due()
    assert (report.sent, report.retried) == (2, 2)



def test_dead_letters_come_in_pages_by_due_time(
        setup: tuple[Coordinator, OutboxStore, Engine | None], clock: FakeClock) -> None:
    c, store, _ = setup
    case_with_meeting(c, clock)
    due = store.claim("w1", clock.now(), 100, timedelta(seconds=60))
    assert len(due) >= 3
    store.complete("w1", clock.now(), [], [(r.id, "refused", None) for r in due])
    everything = c.meetings.dead_letters(actor=LEAD, limit=100)
    assert {r.id for r in everything} == {r.id for r in due}
    assert [(r.due_at, str(r.id)) for r in everything] == \
        sorted((r.due_at, str(r.id)) for r in everything)
    pages = [c.meetings.dead_letters(actor=LEAD, limit=2, offset=o)
             for o in range(0, len(everything), 2)]
    assert [r.id for page in pages for r in page] == [r.id for r in everything]
    assert all(len(p) <= 2 for p in pages)
    assert c.meetings.dead_letters(actor=LEAD, limit=2, offset=len(everything)) == []
class Killed(BaseException):
    """A simulated ``kill -9``: nothing after it runs (not an Exception, so no handler
    in the dispatcher or a notifier records anything)."""


def _kill_at(point: str, after: int) -> Callable[[str], None]:
    seen = 0

    def fault(name: str) -> None:
        nonlocal seen
        if name == point:
            seen += 1
            if seen > after:
                raise Killed(name)
    return fault


def _bulk(c: Coordinator, clock: FakeClock, n: int, channel: str = EMAIL) -> list[OutboxRow]:
    rows = [dataclasses.replace(r, channel=channel) for r in _rows(n, clock.now())]
    with c.uow() as uow:
        uow.outbox.add(rows)
        uow.commit()
    return rows


@pytest.mark.parametrize("sent_before_kill", [0, 3, 9])
def test_a_kill_between_send_and_mark_resends_only_the_message_in_flight(
        setup: tuple[Coordinator, OutboxStore, Engine | None], clock: FakeClock,
        sent_before_kill: int) -> None:
    c, store, engine = setup
    rows = _bulk(c, clock, 10)
    email = RecordingNotifier()
    victim = dispatcher(store, clock, "victim", email=email)
    victim.faults = _kill_at("after_send_before_commit", sent_before_kill)
    with pytest.raises(Killed):
        victim.dispatch_due()
    assert len(email.attempts) == sent_before_kill + 1        # the kill: one in flight
    clock.advance(seconds=61)                                 # the victim's lease runs out
    heir = dispatcher(store, clock, "heir", email=email)
    report = heir.dispatch_due()
    assert (report.claimed, report.sent) == (len(rows) - sent_before_kill,
                                             len(rows) - sent_before_kill)
    attempts = Counter(email.attempts)
    assert set(attempts) == {r.id for r in rows}               # none lost
    assert sum(n - 1 for n in attempts.values()) == 1          # one same-id resend per kill
    assert store.complete("victim", clock.now(), list(attempts), []) == (0, len(rows))
    if engine is not None:
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(deliveries)) == len(rows)
            by_worker = dict(conn.execute(select(deliveries.c.worker, func.count())
                                          .group_by(deliveries.c.worker)).all())
        assert by_worker == {w: n for w, n in (("victim", sent_before_kill),
                                               ("heir", len(rows) - sent_before_kill)) if n}


def test_a_kill_after_claim_resends_nothing_and_loses_nothing(
        setup: tuple[Coordinator, OutboxStore, Engine | None], clock: FakeClock) -> None:
    c, store, _ = setup
    rows = _bulk(c, clock, 5)
    email = RecordingNotifier()
    victim = dispatcher(store, clock, "victim", email=email)
    victim.faults = _kill_at("after_claim", 0)
    with pytest.raises(Killed):
        victim.dispatch_due()
    clock.advance(seconds=61)
    assert dispatcher(store, clock, "heir", email=email).dispatch_due().sent == len(rows)
    assert sorted(map(str, email.attempts)) == sorted(str(r.id) for r in rows)


def test_a_connection_lost_mid_batch_keeps_what_was_marked_and_retries_the_rest(
        setup: tuple[Coordinator, OutboxStore, Engine | None], clock: FakeClock) -> None:
    c, store, _ = setup
    _bulk(c, clock, 6)
    delivered: list[UUID] = []

    class Drops:
        def send(self, messages: Sequence[OutgoingMessage],
                 on_result: Callable[[UUID, str | None], None] | None = None,
                 ) -> Mapping[UUID, str | None]:
            for m in messages[:2]:
                delivered.append(m.id)
                if on_result is not None:
                    on_result(m.id, None)
            raise ConnectionResetError("connection lost")

    d = Dispatcher(store, {EMAIL: Drops()}, clock, "w1")  # type: ignore[dict-item]
    report = d.dispatch_due()
    assert (report.sent, report.retried, report.lost_claims) == (2, 4, 0)
    clock.advance(seconds=30)
    d.notifiers = {EMAIL: RecordingNotifier()}
    assert d.dispatch_due().sent == 4                          # the two sent ones stay sent
    assert len(set(delivered)) == 2


def test_a_database_error_while_marking_stops_the_batch_and_the_lease_takes_over(
        setup: tuple[Coordinator, OutboxStore, Engine | None], clock: FakeClock) -> None:
    c, store, _ = setup
    rows = _bulk(c, clock, 4)
    email = RecordingNotifier()

    class Broken:
        def __getattr__(self, name: str) -> object:
            return getattr(store, name)

        def mark_sent(self, worker: str, now: datetime, outbox_id: UUID) -> bool:
            raise OSError("database gone")

    d = Dispatcher(Broken(), {EMAIL: email}, clock, "w1")  # type: ignore[arg-type]
    with pytest.raises(OSError, match="database gone"):
        d.dispatch_batch()
    assert len(email.attempts) == 1                            # stopped after the first
    clock.advance(seconds=61)
    assert dispatcher(store, clock, "w2", email=email).dispatch_due().sent == len(rows)
    assert sum(n - 1 for n in Counter(email.attempts).values()) == 1


def test_a_notifier_that_never_calls_back_is_marked_at_the_end_of_the_batch(
        setup: tuple[Coordinator, OutboxStore, Engine | None], clock: FakeClock) -> None:
    c, store, _ = setup
    rows = _bulk(c, clock, 3)

    class Silent:
        def send(self, messages: Sequence[OutgoingMessage],
                 on_result: Callable[[UUID, str | None], None] | None = None,
                 ) -> Mapping[UUID, str | None]:
            return dict.fromkeys((m.id for m in messages), None)

    d = Dispatcher(store, {EMAIL: Silent()}, clock, "w1")  # type: ignore[dict-item]
    assert d.dispatch_due().sent == len(rows)
    assert d.dispatch_due().claimed == 0


def test_a_worker_that_lost_its_lease_stops_sending_the_batch_at_the_first_refused_mark(
        setup: tuple[Coordinator, OutboxStore, Engine | None], clock: FakeClock) -> None:
    c, store, _ = setup
    rows = _bulk(c, clock, 6)
    email = RecordingNotifier()
    slow = dispatcher(store, clock, "slow", email=email)

    def paused(point: str) -> None:          # e.g. SIGSTOP longer than the lease
        if point == "after_claim":
            clock.advance(seconds=61)
            assert len(store.claim("other", clock.now(), 100, timedelta(seconds=60))) == 6

    slow.faults = paused
    report = slow.dispatch_batch()
    assert (report.claimed, report.sent, report.retried, report.lost_claims) == (6, 0, 0, 1)
    assert len(email.attempts) == 1                            # stopped after the first
    clock.advance(seconds=61)
    assert dispatcher(store, clock, "heir", email=email).dispatch_due().sent == len(rows)
    assert sum(n - 1 for n in Counter(email.attempts).values()) == 1
