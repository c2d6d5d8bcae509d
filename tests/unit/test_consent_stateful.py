"""Hypothesis stateful test: no read or disclosure ever succeeds without a consent that
covers its purpose, category and audience at that moment, and every attempt (granted or
refused) writes exactly one audit event. The case page and the history show the other
side's notes only under such a consent, and audit the cross-side read.

A plain-Python reference model (lists of grants and withdrawals with their times) decides
independently of ``consent.policy`` whether a scope is covered. The machine opens cases,
grants (with or without expiry), withdraws whole or in part, advances the clock,
and reads and shares as members of both sides and as an outsider. On the in-memory store
it runs 125 examples of up to 100 steps and asserts that at least 10,000 steps were taken;
on SQLite and PostgreSQL a shorter run checks the same properties through the real unit
of work.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from coordinator.bootstrap import build
from coordinator.cases.commands import (
    CaseView,
    FireTrigger,
    GrantConsent,
    OpenCase,
    WithdrawConsent,
)
from coordinator.cases.model import Actor
from coordinator.consent.model import CATEGORIES, HEALTH_CATEGORIES, PARTIES, PURPOSES
from coordinator.demo import referral
from coordinator.errors import ConsentRequired, NotCaseMember
from coordinator.service import Coordinator
from coordinator.testing import FakeClock, InMemoryStore, InMemoryUnitOfWork

GP = Actor("gp-1", "fastlege")
NAV = Actor("nav-1", "nav_veileder")
RPH = Actor("rph-1", "rph_behandler")
JS = Actor("js-1", "jobbspesialist")
OUTSIDER = Actor("nav-9", "nav_veileder")
PERSON = Actor("person-1", "bruker")
PARTY = {"fastlege": "fastlege", "nav_veileder": "nav", "rph_behandler": "rph",
         "jobbspesialist": "nav"}
SIDE = {"fastlege": "health", "rph_behandler": "health", "nav_veileder": "nav",
        "jobbspesialist": "nav"}
MEMBERS = (GP, NAV, RPH, JS)
NOTES = {"rph_behandler": "Kartlagt: søvnvansker", "nav_veileder": "Sykmeldt 50 %"}
NOTE_CATEGORIES_BY = {"rph_behandler": "kartlegging", "nav_veileder": "work_status"}
NOTE_CATEGORIES = set(NOTE_CATEGORIES_BY.values())

# Small universes, so that grants, withdrawals and requests overlap often; every value
# is one the policy knows.
purposes = st.sampled_from(["coordination", "research"])
categories = st.sampled_from(["kartlegging", "work_status", "session_summary"])
parties = st.sampled_from(["nav", "rph", "fastlege", "employer"])
assert {"coordination", "research"} <= PURPOSES
assert {"kartlegging", "work_status", "session_summary"} <= CATEGORIES
assert {"nav", "rph", "fastlege", "employer"} <= PARTIES
some = lambda s: st.frozensets(s, min_size=1, max_size=2)  # noqa: E731


@dataclass
class Record:
    kind: str
    at: datetime
    scopes: frozenset[tuple[str, str, str]]
    until: datetime | None = None


@dataclass
class Model:
    records: dict[uuid.UUID, list[Record]] = field(default_factory=dict)

    def covered(self, case_id: uuid.UUID, scope: tuple[str, str, str], now: datetime) -> bool:
        recs = self.records[case_id]
        for g in recs:
            if g.kind != "grant" or scope not in g.scopes or g.at > now:
                continue
            if g.until is not None and now >= g.until:
                continue
            if not any(w.kind == "withdrawal" and scope in w.scopes and g.at <= w.at <= now
                       for w in recs):
                return True
        return False


class ConsentMachine(RuleBasedStateMachine):
    def __init__(self, c: Coordinator, clock: FakeClock) -> None:
        super().__init__()
        self.c, self.clock, self.model = c, clock, Model()
        self.audit_count = self._audit_count()
        self.steps = 0

    cases = Bundle("cases")

    def _audit_count(self) -> int:
        with self.c.uow() as uow:
            return uow.audit.count()

    @initialize(target=cases)
    def first_case(self) -> uuid.UUID:
        return self.open_case()

    @rule(target=cases)
    def open_case(self) -> uuid.UUID:
        _ch, profile = referral("ringsaker", self.clock.now().date(), random.Random(1))
        case_id = self.c.open_case(OpenCase("ringsaker", "fastlege", profile, GP,
                                            subject_id=PERSON.id, team=MEMBERS[1:])).id
        # the history holds a health note (kartlegging) and a Nav note (work_status)
        for who, trigger in ((RPH, "begin_intake"), (NAV, "complete_intake")):
            self.c.fire(FireTrigger(case_id, trigger, who, {"reason": NOTES[who.role]}))
        self.model.records[case_id] = []
        self.audit_count = self._audit_count()
        return case_id

    @rule(case_id=cases, ps=some(purposes), cs=some(categories), ws=some(parties),
          days=st.none() | st.integers(1, 30))
    def grant(self, case_id: uuid.UUID, ps: frozenset[str], cs: frozenset[str],
              ws: frozenset[str], days: int | None) -> None:
        now = self.clock.now()
        until = None if days is None else now + timedelta(days=days)
        self.c.grant_consent(GrantConsent(case_id, GP, ps, cs, ws, "digital", "v2",
                                          valid_to=until))
        self.model.records[case_id].append(
            Record("grant", now, frozenset((p, c, w) for p in ps for c in cs for w in ws),
                   until))
        self.audit_count += 1

    @rule(case_id=cases, ps=some(purposes), cs=some(categories), ws=some(parties))
    def withdraw(self, case_id: uuid.UUID, ps: frozenset[str], cs: frozenset[str],
                 ws: frozenset[str]) -> None:
        self.c.withdraw_consent(WithdrawConsent(case_id, PERSON, ps, cs, ws, "digital"))
        self.model.records[case_id].append(Record(
            "withdrawal", self.clock.now(),
            frozenset((p, c, w) for p in ps for c in cs for w in ws)))
        self.audit_count += 1

    @rule(hours=st.sampled_from([0.5, 1, 24, 24 * 7, 24 * 20]))
    def advance(self, hours: float) -> None:
        self.clock.advance(hours=hours)

    @rule(case_id=cases, who=st.sampled_from((*MEMBERS, OUTSIDER)), p=purposes, c=categories)
    def read(self, case_id: uuid.UUID, who: Actor, p: str, c: str) -> None:
        if who is OUTSIDER:
            self._expect_refusal(NotCaseMember, lambda: self.c.read_data(
                case_id, actor=who, purpose=p, category=c))
            return
        same_side = SIDE[who.role] == ("health" if c in HEALTH_CATEGORIES else "nav")
        covered = self.model.covered(case_id, (p, c, PARTY[who.role]), self.clock.now())
        self._attempt(same_side or covered, lambda: self.c.read_data(
            case_id, actor=who, purpose=p, category=c))

    @rule(case_id=cases, who=st.sampled_from(MEMBERS), p=purposes, c=categories, to=parties)
    def share(self, case_id: uuid.UUID, who: Actor, p: str, c: str, to: str) -> None:
        covered = self.model.covered(case_id, (p, c, to), self.clock.now())
        self._attempt(to == PARTY[who.role] or covered, lambda: self.c.share_data(
            case_id, actor=who, purpose=p, category=c, audience=to))

    @rule(case_id=cases, who=st.sampled_from(MEMBERS), page=st.booleans())
    def look(self, case_id: uuid.UUID, who: Actor, page: bool) -> None:
        """The case page or the history shows the other side's note only under a covering
        consent; one access event, plus one data_read when a note crossed sides."""
        now = self.clock.now()
        shown = {c for c in NOTE_CATEGORIES
                 if SIDE[who.role] == ("health" if c in HEALTH_CATEGORIES else "nav")
                 or self.model.covered(case_id, ("coordination", c, PARTY[who.role]), now)}
        got = self.c.view(case_id, actor=who) if page else self.c.history(case_id, actor=who)
        events = got.history if isinstance(got, CaseView) else got
        assert set(got.withheld) == NOTE_CATEGORIES - shown
        assert {e.reason for e in events if e.reason} == {NOTES[r] for r in NOTES
                                                          if NOTE_CATEGORIES_BY[r] in shown}
        crossed = any(SIDE[who.role] != ("health" if c in HEALTH_CATEGORIES else "nav")
                      for c in shown)
        self.audit_count += 1 + crossed

    @rule(case_id=consumes(cases))
    def forget(self, case_id: uuid.UUID) -> None:
        """Stop using a case (keeps the bundle small, so consents pile up per case)."""

    def _attempt(self, allowed: bool, call: Callable[[], object]) -> None:
        if allowed:
            call()
        else:
            self._expect_refusal(ConsentRequired, call)
            return
        self.audit_count += 1

    def _expect_refusal(self, error: type[Exception], call: Callable[[], object]) -> None:
        with pytest.raises(error):
            call()
        self.audit_count += 1

    @invariant()
    def one_audit_event_per_attempt(self) -> None:
        assert self._audit_count() == self.audit_count
        self.steps += 1


def _run(c: Callable[[], Coordinator], clock: FakeClock, examples: int, steps: int) -> int:
    """Run the machine; return the number of steps taken in all."""
    machines: list[ConsentMachine] = []

    def machine() -> ConsentMachine:
        machines.append(ConsentMachine(c(), clock))
        return machines[-1]

    run_state_machine_as_test(
        machine,
        settings=settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                          derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.filter_too_much]))
    assert len(machines) >= examples
    assert all(m.c.verify_audit().ok for m in machines[-3:])
    return sum(m.steps for m in machines)


def test_no_read_or_share_without_a_covering_consent_10000_steps(
        clock: FakeClock) -> None:
    """A fresh in-memory store per example, so every step costs the same."""
    def fresh() -> Coordinator:
        store = InMemoryStore()
        return build(clock=clock, uow=lambda: InMemoryUnitOfWork(store))

    assert _run(fresh, clock, examples=125, steps=100) >= 10_000


@pytest.mark.parametrize("backend", ["sqlite",
                                     pytest.param("postgres", marks=pytest.mark.postgres)])
def test_no_read_or_share_without_a_covering_consent_on_sql(
        backend: str, make_coordinator: Callable[[str], Coordinator], clock: FakeClock) -> None:
    c = make_coordinator(backend)
    _run(lambda: c, clock, examples=8, steps=40)
