"""One contract for every store: the in-memory fake, SQLite and PostgreSQL.

The fake in ``coordinator.testing`` is only trustworthy because it passes the same suite
as the real adapters.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from coordinator.cases.commands import FireTrigger, GrantConsent, OpenCase, WithdrawConsent
from coordinator.cases.model import Actor
from coordinator.errors import (
    CaseNotFound,
    ConcurrentUpdate,
    CoordinatorError,
    GuardFailed,
    StaleVersion,
)
from coordinator.service import Coordinator
from coordinator.testing import FakeClock
from coordinator.workflows.definitions import ringsaker_v1
from coordinator.workflows.facts import Profile
from coordinator.workflows.registry import WorkflowRegistry
from tests.unit.definitions_for_tests import SOURCE, SYNTHETIC

GP = Actor("gp-1", "fastlege", "Legekontoret")
PERSON = Profile(birth_date=date(1990, 5, 1), problems=frozenset({"msk"}))
T0 = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)


def open_case(c: Coordinator) -> uuid.UUID:
    return c.open_case(OpenCase("ringsaker", "fastlege", PERSON, GP)).id


def two_pilots(c: Coordinator) -> Coordinator:
    """The same store, with ringsaker_v1 and the synthetic workflow registered."""
    return replace(c, workflows=WorkflowRegistry([("ringsaker_v1", ringsaker_v1.DEFINITION),
                                                  (SOURCE, SYNTHETIC)]))


def test_open_then_get_and_summary(any_coordinator: Coordinator) -> None:
    c = any_coordinator
    latest = c.workflows.latest("ringsaker").definition.version   # new cases open on the latest
    given_id = uuid.uuid4()
    opened = c.open_case(OpenCase("ringsaker", "fastlege", PERSON, GP, case_id=given_id))
    assert opened.id == given_id
    assert (opened.pilot, opened.workflow_version, opened.state, opened.version) == (
        "ringsaker", latest, "referred", 1)
    assert (opened.referrer, opened.referred_at, opened.updated_at, opened.closed_at) == (
        "fastlege", T0, T0, None)
    assert c.summary(given_id) == opened
    with c.uow() as uow:
        case = uow.cases.get(given_id)
        assert case.profile == PERSON
        assert case.opened_by == "gp-1"
        assert case.referred_at.tzinfo is not None
    [event] = c.history(given_id)
    assert (event.seq, event.kind, event.from_state, event.to_state, event.trigger) == (
        1, "opened", None, "referred", None)
    assert (event.actor_id, event.actor_role, event.workflow_key, event.workflow_version) == (
        "gp-1", "fastlege", "ringsaker", latest)
    assert event.data == {"referrer": "fastlege"}
    assert event.occurred_at == T0


def test_each_fire_adds_one_to_the_version_and_writes_one_event(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c)
    clock.advance(hours=1)
    first = c.fire(FireTrigger(case_id, "begin_intake", GP, {"reason": "  henvist  "}))
    assert (first.state, first.version, first.updated_at) == ("intake", 2, T0 + timedelta(hours=1))
    clock.advance(hours=1)
    second = c.fire(FireTrigger(case_id, "complete_intake", GP, expected_version=2))
    assert (second.state, second.version) == ("consent", 3)
    assert c.summary(case_id) == second
    history = c.history(case_id)
    assert [e.seq for e in history] == [1, 2, 3]
    assert [(e.kind, e.from_state, e.to_state, e.trigger) for e in history] == [
        ("opened", None, "referred", None),
        ("transitioned", "referred", "intake", "begin_intake"),
        ("transitioned", "intake", "consent", "complete_intake")]
    assert history[1].reason == "henvist"
    assert [e.occurred_at for e in history] == [T0, T0 + timedelta(hours=1),
                                                T0 + timedelta(hours=2)]
    view = c.view(case_id)
    assert view.summary == second
    assert set(view.record["milestones"]) == {"begin_intake", "complete_intake"}


def test_closing_states_set_closed_at(any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c)
    clock.advance(days=1)
    done = c.fire(FireTrigger(case_id, "withdraw", GP))
    assert (done.state, done.closed_at) == ("withdrawn", T0 + timedelta(days=1))
    assert c.summary(case_id).closed_at == T0 + timedelta(days=1)


def test_list_cases_pages_through_every_case_once_in_id_order(
        any_coordinator: Coordinator) -> None:
    c = any_coordinator
    ids = {open_case(c) for _ in range(23)}
    seen: list[uuid.UUID] = []
    after = None
    while page := c.list_cases(after=after, limit=5):
        assert len(page) <= 5
        seen += [s.id for s in page]
        after = page[-1].id
    assert seen == sorted(ids)
    assert len(seen) == len(set(seen)) == 23
    assert c.count_cases() == 23
    assert [s.id for s in c.list_cases(limit=500)] == sorted(ids)
    assert c.list_cases(after=max(ids)) == []


def test_list_cases_filters_by_pilot_and_state(any_coordinator: Coordinator) -> None:
    c = two_pilots(any_coordinator)
    ringsaker = [open_case(c) for _ in range(6)]
    synthetic = [c.open_case(OpenCase("synthetic", "nav", PERSON, GP)).id for _ in range(4)]
    for case_id in ringsaker[:2] + synthetic[:3]:
        c.fire(FireTrigger(case_id, "begin_intake", GP))
    assert [s.id for s in c.list_cases(pilot="ringsaker")] == sorted(ringsaker)
    assert [s.id for s in c.list_cases(pilot="synthetic", limit=2)] == sorted(synthetic)[:2]
    assert [s.id for s in c.list_cases(state="intake")] == sorted(ringsaker[:2] + synthetic[:3])
    assert [s.id for s in c.list_cases(pilot="synthetic", state="referred")] == synthetic[3:]
    assert c.list_cases(pilot="nowhere") == []
    paged = c.list_cases(pilot="ringsaker", state="referred", limit=2)
    rest = c.list_cases(pilot="ringsaker", state="referred", after=paged[-1].id)
    assert [s.id for s in paged + rest] == sorted(ringsaker[2:])


def test_consent_is_read_back_and_gates_the_workflow(any_coordinator: Coordinator,
                                                     clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c)
    c.fire(FireTrigger(case_id, "begin_intake", GP))
    c.fire(FireTrigger(case_id, "complete_intake", GP))
    clock.advance(minutes=1)
    until = T0 + timedelta(days=180)
    granted = c.grant_consent(GrantConsent(case_id, GP, frozenset({"coordination"}),
                                           frozenset({"kartlegging", "mestringsplan"}),
                                           frozenset({"nav"}), "signed_form", "v2", until))
    clock.advance(minutes=1)
    withdrawn = c.withdraw_consent(WithdrawConsent(case_id, GP, frozenset({"coordination"}),
                                                   frozenset({"kartlegging", "mestringsplan"}),
                                                   frozenset({"nav"}), "verbal_witnessed"))
    with c.uow() as uow:
        records = sorted(uow.consents.for_case(case_id), key=lambda r: r.recorded_at)
        assert uow.consents.for_case(uuid.uuid4()) == []
    assert records == [granted, withdrawn]
    assert (records[0].kind, records[0].valid_to, records[0].method) == ("grant", until,
                                                                         "signed_form")
    assert records[1].kind == "withdrawal"
    assert records[0].recorded_at == T0 + timedelta(minutes=1)
    assert records[0].categories == {"kartlegging", "mestringsplan"}
    assert c.summary(case_id).version == 3                  # consent is not a case change
    with pytest.raises(GuardFailed):                          # withdrawn: no consent now
        c.fire(FireTrigger(case_id, "confirm_consent", GP))
    clock.advance(minutes=1)
    c.grant_consent(GrantConsent(case_id, GP, frozenset({"coordination"}),
                                 frozenset({"kartlegging"}), frozenset({"nav"}), "digital", "v2"))
    assert c.fire(FireTrigger(case_id, "confirm_consent", GP)).state == "get_to_know"


def test_unknown_case_ids_raise_case_not_found(any_coordinator: Coordinator) -> None:
    c = any_coordinator
    open_case(c)
    missing = uuid.uuid4()
    calls = [lambda: c.summary(missing), lambda: c.view(missing), lambda: c.history(missing),
             lambda: c.fire(FireTrigger(missing, "begin_intake", GP)),
             lambda: c.grant_consent(GrantConsent(missing, GP, frozenset({"coordination"}),
                                                  frozenset({"kartlegging"}),
                                                  frozenset({"nav"}), "digital", "v1"))]
    for call in calls:
        with pytest.raises(CaseNotFound) as caught:
            call()
        assert caught.value.details == {"case_id": str(missing)}
    with c.uow() as uow:
        with pytest.raises(CaseNotFound):
            uow.cases.get(missing)
        assert uow.consents.for_case(missing) == []
    assert c.count_cases() == 1


def test_a_stale_expected_version_is_refused(any_coordinator: Coordinator) -> None:
    c = any_coordinator
    case_id = open_case(c)
    c.fire(FireTrigger(case_id, "begin_intake", GP))
    for stale in (1, 3, 0):
        with pytest.raises(StaleVersion) as caught:
            c.fire(FireTrigger(case_id, "complete_intake", GP, expected_version=stale))
        assert (caught.value.expected, caught.value.actual) == (stale, 2)
        assert isinstance(caught.value, ConcurrentUpdate)
    assert (c.summary(case_id).state, c.summary(case_id).version) == ("intake", 2)
    assert len(c.history(case_id)) == 2


def test_a_unit_of_work_left_without_commit_changes_nothing(any_coordinator: Coordinator,
                                                            clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c)
    with c.uow() as uow:
        case = uow.cases.get(case_id)
        workflow = c.workflows.get(*case.workflow_ref)
        case.fire("begin_intake", by=GP, workflow=workflow, consents=frozenset(), args={},
                  now=clock.now())
    assert (c.summary(case_id).state, c.summary(case_id).version) == ("referred", 1)
    assert len(c.history(case_id)) == 1


def _fire_in(uow_case: object, c: Coordinator, trigger: str, clock: FakeClock) -> None:
    from coordinator.cases.model import Case

    assert isinstance(uow_case, Case)
    uow_case.fire(trigger, by=GP, workflow=c.workflows.get(*uow_case.workflow_ref),
                  consents=frozenset(), args={}, now=clock.now())


def _interleaved(c: Coordinator, case_id: uuid.UUID, clock: FakeClock) -> None:
    """Both units load version 1 before either commits; the second commit must lose."""
    with c.uow() as first, c.uow() as second:
        a = first.cases.get(case_id)
        b = second.cases.get(case_id)
        assert a.version == b.version == 1
        _fire_in(a, c, "begin_intake", clock)
        _fire_in(b, c, "withdraw", clock)
        first.commit()
        with pytest.raises(ConcurrentUpdate):
            second.commit()


def _serialised(c: Coordinator, case_id: uuid.UUID, clock: FakeClock) -> None:
    """SQLite takes the write lock when a unit of work begins (BEGIN IMMEDIATE), so the
    second unit cannot even load the case until the first has committed: it then sees the
    committed change, and a lost update is impossible in another way."""
    loaded = threading.Event()
    seen: list[tuple[int, str]] = []

    def second() -> None:
        with c.uow() as uow:
            case = uow.cases.get(case_id)
            loaded.set()
            seen.append((case.version, case.state))

    with c.uow() as first:
        a = first.cases.get(case_id)
        thread = threading.Thread(target=second)
        thread.start()
        assert not loaded.wait(0.5), "the second unit read while the first held the case"
        _fire_in(a, c, "begin_intake", clock)
        first.commit()
    thread.join(timeout=30)
    assert seen == [(2, "intake")]


def test_two_units_of_work_changing_one_case_cannot_both_win(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c)
    with c.uow() as probe:
        serialises = getattr(getattr(probe, "engine", None), "name", "") == "sqlite"
    (_serialised if serialises else _interleaved)(c, case_id, clock)
    summary = c.summary(case_id)
    assert (summary.state, summary.version) == ("intake", 2)      # the first unit's change
    assert [(e.seq, e.to_state) for e in c.history(case_id)] == [(1, "referred"), (2, "intake")]


def test_a_second_change_in_one_unit_of_work_is_refused(any_coordinator: Coordinator,
                                                        clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c)
    with c.uow() as uow:
        case = uow.cases.get(case_id)
        _fire_in(case, c, "begin_intake", clock)
        _fire_in(case, c, "complete_intake", clock)
        with pytest.raises(CoordinatorError, match="only once"):
            uow.commit()
    assert c.summary(case_id).version == 1
