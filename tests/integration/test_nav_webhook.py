"""Outbound Nav events: written with the case change under a covering consent, delivered
through the durable outbox to a real local HTTP server that checks the HMAC signature, and
retried when the receiver fails. On the in-memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from adapters.nav_webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    sign,
    verify,
)
from coordinator.bootstrap import build, build_dispatcher
from coordinator.cases.commands import FireTrigger, GrantConsent, OpenCase, WithdrawConsent
from coordinator.cases.model import Case
from coordinator.config import Settings
from coordinator.demo import CHANNEL_ROLE, JOURNEYS, actor, referral, take_step, team
from coordinator.errors import ConcurrentUpdate, GuardFailed
from coordinator.persistence.mapping import start_mappers
from coordinator.persistence.reminders import SqlOutboxStore
from coordinator.persistence.unit_of_work import SqlUnitOfWork
from coordinator.ports import OutboxStore, UnitOfWork
from coordinator.scheduling import nav
from coordinator.scheduling.dispatcher import Dispatcher
from coordinator.scheduling.outbox import (
    CANCELLED,
    INAPP,
    NAV_WEBHOOK,
    PENDING,
    SENT,
    OutboxRow,
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

SECRET = "s" * 40
BASE = "https://koordinator.example.no"
# Words that would reveal health details if they reached Nav without a covering consent.
SENSITIVE = ("kartlegging", "phq", "gad", "diagnos", "psykisk", "terapeut", "mestringsplan",
             "attendees", "visible_to", "profile", "fnr", "birth")


@dataclass
class Receiver:
    """A real HTTP server: answers the scripted statuses in turn (then 200) and keeps every
    request with whether its signature verified."""

    statuses: list[int] = field(default_factory=list)
    requests: list[dict[str, object]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ts, sig = self.headers[TIMESTAMP_HEADER], self.headers[SIGNATURE_HEADER]
            state.requests.append({
                "body": body, "delivery": self.headers[DELIVERY_HEADER],
                "verified": verify(SECRET, ts, body, sig, now=time.time()),
                "content_type": self.headers["Content-Type"], "path": self.path})
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/nav/events"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def setup(request: pytest.FixtureRequest,
          clock: FakeClock) -> tuple[Coordinator, OutboxStore]:
    if request.param == "memory":
        store = InMemoryStore()
        mem = InMemoryOutboxStore(store)
        return (build(clock=clock, uow=lambda: InMemoryUnitOfWork(store), outbox_store=mem,
                      channels=(INAPP,), nav_webhook=True), mem)
    engine: Engine = request.getfixturevalue(f"{request.param.replace('postgres', 'pg')}_engine")
    sql = SqlOutboxStore(engine)
    return (build(engine=engine, clock=clock, channels=(INAPP,), outbox_store=sql,
                  nav_webhook=True), sql)


def open_case(c: Coordinator, clock: FakeClock, pilot: str = "ha") -> UUID:
    clock.set(datetime(2027, 3, 1, 9, tzinfo=OSLO))
    channel, person = referral(pilot, clock.now().date())
    return c.open_case(OpenCase(pilot, channel, person, actor(pilot, CHANNEL_ROLE[channel]),
                                team=team(pilot))).id


def walk(c: Coordinator, clock: FakeClock, case_id: UUID, pilot: str, until: str) -> None:
    """Take the pilot's journey up to and including the step firing ``until``."""
    for step in JOURNEYS[pilot]:
        clock.advance(days=step.advance_days)
        take_step(c, case_id, pilot, step)
        if step.trigger == until:
            return
    raise AssertionError(f"{pilot} has no step {until}")


def nav_rows(c: Coordinator, case_id: UUID) -> list[OutboxRow]:
    with c.uow() as uow:
        return [r for r in uow.outbox.for_case(case_id) if r.channel == NAV_WEBHOOK]


def webhook_dispatcher(store: OutboxStore, clock: FakeClock, url: str) -> Dispatcher:
    return Dispatcher(store, {NAV_WEBHOOK: WebhookNotifier(url, SECRET, timeout=5),
                              INAPP: RecordingNotifier()},
                      clock, "w1", base_url=BASE, batch_size=50,
                      lease=timedelta(seconds=60))


# -- which changes raise an event ------------------------------------------------------------
def test_event_for_reads_the_two_moments_off_the_journey() -> None:
    assert nav.event_for("consent", "get_to_know") == nav.REFERRAL_CONSENTED
    assert nav.event_for("intake", "get_to_know") == nav.REFERRAL_CONSENTED
    assert nav.event_for("planning", "follow_up") == nav.PLAN_READY
    for before, after in [("referred", "intake"), ("get_to_know", "planning"),
                          ("follow_up", "follow_up"), ("follow_up", "closing"),
                          ("get_to_know", "get_to_know"), ("closing", "follow_up")]:
        assert nav.event_for(before, after) is None, (before, after)
    assert not nav.covered(frozenset({("coordination", "rph"), ("research", "nav")}))
    assert nav.covered(frozenset({("coordination", "nav")}))


@pytest.mark.parametrize("pilot", sorted(JOURNEYS))
def test_every_pilot_journey_raises_referral_then_plan_for_nav(
        pilot: str, clock: FakeClock) -> None:
    store = InMemoryStore()
    c = build(clock=clock, uow=lambda: InMemoryUnitOfWork(store),
              outbox_store=InMemoryOutboxStore(store), channels=(INAPP,), nav_webhook=True)
    case_id = open_case(c, clock, pilot)
    assert nav_rows(c, case_id) == []               # a referral alone has no consent yet
    walk(c, clock, case_id, pilot, "agree_plan")
    rows = nav_rows(c, case_id)
    assert [r.kind for r in rows] == ["nav_referral_consented", "nav_plan_ready"]
    assert {(r.recipient, r.pilot, r.status) for r in rows} == {("nav", pilot, PENDING)}


def test_without_the_setting_no_nav_rows_are_written(clock: FakeClock) -> None:
    store = InMemoryStore()
    c = build(clock=clock, uow=lambda: InMemoryUnitOfWork(store),
              outbox_store=InMemoryOutboxStore(store), channels=(INAPP,))
    case_id = open_case(c, clock)
    walk(c, clock, case_id, "ha", "agree_plan")
    assert nav_rows(c, case_id) == []


# -- consent ------------------------------------------------------------------------------------
def test_no_row_without_consent_and_a_withdrawal_retracts_the_unsent_event(
        setup: tuple[Coordinator, OutboxStore], clock: FakeClock) -> None:
    c, _ = setup
    case_id = open_case(c, clock)
    walk(c, clock, case_id, "ha", "complete_intake")
    with pytest.raises(GuardFailed):                # the consent gate itself: nothing written
        c.fire(FireTrigger(case_id, "confirm_consent", actor("ha", "nav_veileder")))
    assert nav_rows(c, case_id) == []
    steps = {s.trigger: s for s in JOURNEYS["ha"]}
    take_step(c, case_id, "ha", steps["confirm_consent"])   # grants consent, passes the gate
    [referral_row] = nav_rows(c, case_id)
    assert referral_row.kind == "nav_referral_consented"
    c.withdraw_consent(WithdrawConsent(case_id, actor("ha", "nav_veileder"),
                                       frozenset({"coordination"}),
                                       frozenset({"kartlegging", "work_status"}),
                                       frozenset({"nav"}), "digital", channel="digital"))
    take_step(c, case_id, "ha", steps["hold_get_to_know"])
    take_step(c, case_id, "ha", steps["agree_plan"])
    assert c.summary(case_id).state == "follow_up"
    assert [(r.kind, r.status) for r in nav_rows(c, case_id)] == [
        ("nav_referral_consented", CANCELLED)]          # no plan_ready row; the old one retracted


def test_a_partial_withdrawal_that_leaves_nav_covered_keeps_the_event(
        clock: FakeClock) -> None:
    store = InMemoryStore()
    c = build(clock=clock, uow=lambda: InMemoryUnitOfWork(store),
              outbox_store=InMemoryOutboxStore(store), channels=(INAPP,), nav_webhook=True)
    case_id = open_case(c, clock)
    walk(c, clock, case_id, "ha", "confirm_consent")
    c.withdraw_consent(WithdrawConsent(case_id, actor("ha", "nav_veileder"),
                                       frozenset({"coordination"}), frozenset({"kartlegging"}),
                                       frozenset({"nav"}), "digital", channel="digital"))
    assert [r.status for r in nav_rows(c, case_id)] == [PENDING]   # work_status still covered


# -- delivery to a real server -------------------------------------------------------------------
def test_events_arrive_signed_with_ids_and_a_link_only(
        setup: tuple[Coordinator, OutboxStore], clock: FakeClock, receiver: Receiver) -> None:
    c, store = setup
    case_id = open_case(c, clock)
    walk(c, clock, case_id, "ha", "agree_plan")
    report = webhook_dispatcher(store, clock, receiver.url).dispatch_due()
    assert report.sent >= 2 and report.retried == report.dead == 0
    rows = nav_rows(c, case_id)
    assert {r.status for r in rows} == {SENT}
    assert len(receiver.requests) == 2
    by_id = {r.id: r for r in rows}
    events = []
    for req in receiver.requests:
        assert req["verified"] is True and req["path"] == "/nav/events"
        assert str(req["content_type"]).startswith("application/json")
        body = json.loads(req["body"])                  # type: ignore[arg-type]
        assert set(body) == {"id", "event", "case_id", "pilot", "occurred_at", "link"}
        assert body["id"] == req["delivery"]
        row = by_id[UUID(body["id"])]
        assert body["case_id"] == str(case_id) and body["pilot"] == "ha"
        assert body["link"] == f"{BASE}/saker/{case_id}"
        assert datetime.fromisoformat(body["occurred_at"]) == row.due_at
        for word in SENSITIVE:
            assert word not in str(req["body"]).lower(), word
        events.append(body["event"])
    assert sorted(events) == ["plan_ready", "referral_consented"]


def test_a_failing_receiver_is_retried_with_back_off_under_the_same_id(
        setup: tuple[Coordinator, OutboxStore], clock: FakeClock, receiver: Receiver) -> None:
    c, store = setup
    case_id = open_case(c, clock)
    walk(c, clock, case_id, "ha", "confirm_consent")
    receiver.statuses = [500]
    d = webhook_dispatcher(store, clock, receiver.url)
    first = d.dispatch_due()
    assert (first.sent, first.retried) == (0, 1)
    [row] = nav_rows(c, case_id)
    assert (row.status, row.attempts, row.last_error) == (PENDING, 1, "HTTP 500")
    assert d.dispatch_due().claimed == 0                # waits out its back-off
    clock.advance(seconds=31)
    assert d.dispatch_due().sent == 1
    [row] = nav_rows(c, case_id)
    assert row.status == SENT
    assert [r["delivery"] for r in receiver.requests] == [str(row.id)] * 2
    assert all(r["verified"] for r in receiver.requests)


def test_an_unreachable_receiver_ends_in_the_dead_letters(
        setup: tuple[Coordinator, OutboxStore], clock: FakeClock, receiver: Receiver) -> None:
    c, store = setup
    case_id = open_case(c, clock)
    walk(c, clock, case_id, "ha", "confirm_consent")
    receiver.statuses = [503] * 8
    d = webhook_dispatcher(store, clock, receiver.url)
    for _ in range(8):
        d.dispatch_due()
        clock.advance(hours=7)
    [dead] = c.meetings.dead_letters("ha")
    assert (dead.channel, dead.attempts, dead.last_error) == (NAV_WEBHOOK, 8, "HTTP 503")


# -- the signature and the settings --------------------------------------------------------------
def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    import hashlib
    import hmac
    body = b'{"event":"plan_ready"}'
    expected = hmac.new(SECRET.encode(), b"1800000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1800000000", body) == f"sha256={expected}"
    assert verify(SECRET, "1800000000", body, f"sha256={expected}", now=1800000100)
    assert not verify(SECRET, "1800000000", body + b" ", f"sha256={expected}", now=1800000100)
    assert not verify("x" * 40, "1800000000", body, f"sha256={expected}", now=1800000100)
    assert not verify(SECRET, "1800000000", body, f"sha256={expected}", now=1800000301)
    assert not verify(SECRET, "soon", body, f"sha256={expected}", now=1800000000)


def test_settings_want_https_and_a_long_secret(tmp_path: Path) -> None:
    ok = Settings(data_dir=tmp_path, nav_webhook_url="https://nav.example.no/hook",
                  nav_webhook_secret=SECRET)
    assert SECRET not in repr(ok)
    for url, secret in [("http://nav.example.no/hook", SECRET),
                        ("https://nav.example.no/hook", None),
                        ("https://nav.example.no/hook", "short"),
                        ("file:///etc/passwd", SECRET)]:
        with pytest.raises(ValidationError):
            Settings(data_dir=tmp_path, nav_webhook_url=url, nav_webhook_secret=secret)


def test_bootstrap_wires_the_webhook_channel_from_settings(
        tmp_path: Path, sqlite_engine: Engine) -> None:
    settings = Settings(data_dir=tmp_path, nav_webhook_url="http://127.0.0.1:9/hook",
                        nav_webhook_secret=SECRET)
    d = build_dispatcher(settings, engine=sqlite_engine)
    assert isinstance(d.notifiers[NAV_WEBHOOK], WebhookNotifier)
    assert build(settings, engine=sqlite_engine).nav_webhook is True
    plain = Settings(data_dir=tmp_path)
    assert NAV_WEBHOOK not in build_dispatcher(plain, engine=sqlite_engine).notifiers
    assert build(plain, engine=sqlite_engine).nav_webhook is False


# -- one transaction with the case change ----------------------------------------------------------
@pytest.mark.parametrize("backend", ["memory", pytest.param("postgres",
                                                                marks=pytest.mark.postgres)])
def test_a_case_change_that_loses_a_race_leaves_no_nav_event(
        backend: str, request: pytest.FixtureRequest, clock: FakeClock) -> None:
    """The change and its Nav row commit together: when another writer bumps the case
    between our read and our commit, neither the transition nor the row is written.
    (SQLite serialises writers, so the race cannot happen there.)"""
    if backend == "memory":
        store = InMemoryStore()

        def base() -> UnitOfWork:
            return InMemoryUnitOfWork(store)
    else:
        engine: Engine = request.getfixturevalue("pg_engine")
        start_mappers()

        def base() -> UnitOfWork:
            return SqlUnitOfWork(engine)
    c = build(clock=clock, uow=base, channels=(INAPP,), nav_webhook=True)
    case_id = open_case(c, clock)
    walk(c, clock, case_id, "ha", "complete_intake")
    consent = {s.trigger: s for s in JOURNEYS["ha"]}["confirm_consent"].consent
    assert consent is not None
    c.grant_consent(GrantConsent(case_id, actor("ha", "nav_veileder"), consent.purposes,
                                 consent.categories, consent.parties, consent.method,
                                 consent.form_version))

    class Racing:
        """A unit of work whose case read is followed by another writer's change."""

        def __init__(self) -> None:
            self.inner = base()

        def __enter__(self) -> UnitOfWork:
            uow = self.inner.__enter__()
            get = uow.cases.get

            def get_then_race(i: UUID) -> Case:
                case = get(i)
                c.add_member(i, "nav-2", "nav_veileder", by=actor("ha", "nav_veileder"))
                return case
            uow.cases.get = get_then_race           # type: ignore[method-assign]
            return uow

        def __exit__(self, *exc: Any) -> None:
            self.inner.__exit__(*exc)

    racing = build(clock=clock, uow=lambda: cast(UnitOfWork, Racing()), channels=(INAPP,),
                   nav_webhook=True)
    with pytest.raises(ConcurrentUpdate):
        racing.fire(FireTrigger(case_id, "confirm_consent", actor("ha", "nav_veileder")))
    assert c.summary(case_id).state == "consent"
    assert nav_rows(c, case_id) == []
    c.fire(FireTrigger(case_id, "confirm_consent", actor("ha", "nav_veileder")))
    assert [r.kind for r in nav_rows(c, case_id)] == ["nav_referral_consented"]
