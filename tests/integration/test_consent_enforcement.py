"""The one enforcement point, on the fake, SQLite and PostgreSQL: consent covers a read or
a disclosure only for its purpose, category and party, withdrawal holds from the next
request, expiry holds, Nav roles cannot break the glass, and every denial is audited
without writing case data."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest

from coordinator.audit.events import ACCESS_DENIED, EMERGENCY_ACCESS
from coordinator.cases.commands import GrantConsent, OpenCase, WithdrawConsent
from coordinator.cases.model import Actor
from coordinator.demo import referral
from coordinator.errors import (
    ConsentRequired,
    EmergencyAccessRefused,
    InvalidInput,
    NotCaseMember,
    PermissionDenied,
)
from coordinator.service import Coordinator
from coordinator.testing import FakeClock

GP = Actor("gp-1", "fastlege", "974589095")
NAV = Actor("nav-1", "nav_veileder", "889640782")
RPH = Actor("rph-1", "rph_behandler")
OUTSIDER = Actor("nav-9", "nav_veileder")
AUDITOR = Actor("rev-1", "auditor")
PERSON = Actor("person-1", "bruker")


def open_case(c: Coordinator, clock: FakeClock) -> uuid.UUID:
    _ch, profile = referral("ringsaker", clock.now().date(), random.Random(3))
    return c.open_case(OpenCase("ringsaker", "fastlege", profile, GP, subject_id=PERSON.id,
                                team=(NAV, RPH))).id


def grant(case_id: uuid.UUID, *, purposes: set[str] | None = None,
          categories: set[str] | None = None, parties: set[str] | None = None,
          **kw: object) -> GrantConsent:
    return GrantConsent(case_id, GP, frozenset(purposes or {"coordination"}),
                        frozenset(categories or {"kartlegging"}),
                        frozenset(parties or {"nav"}), "digital", "v1", **kw)  # type: ignore[arg-type]


def audit_kinds(c: Coordinator, case_id: uuid.UUID) -> list[str]:
    with c.uow() as uow:
        return [e.kind for e in uow.audit.query(case_id=case_id)]


def test_a_nav_read_of_health_data_needs_a_covering_consent(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    with pytest.raises(ConsentRequired):
        c.read_data(case_id, actor=NAV, purpose="coordination", category="kartlegging")
    record = c.grant_consent(grant(case_id))
    got = c.read_data(case_id, actor=NAV, purpose="coordination", category="kartlegging")
    assert (got.basis, got.consent_id) == ("consent", record.id)
    for purpose, category in (("share_mestringsplan", "kartlegging"),
                              ("coordination", "session_summary")):
        with pytest.raises(ConsentRequired):
            c.read_data(case_id, actor=NAV, purpose=purpose, category=category)
    # same side: health reads health data, Nav reads Nav data, without consent
    assert c.read_data(case_id, actor=RPH, purpose="coordination",
                       category="session_summary").basis == "same_side"
    assert c.read_data(case_id, actor=NAV, purpose="coordination",
                       category="work_status").basis == "same_side"
    # health reading Nav data needs a consent for its own party
    with pytest.raises(ConsentRequired):
        c.read_data(case_id, actor=RPH, purpose="coordination", category="work_status")


def test_a_disclosure_needs_consent_for_that_audience(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    c.grant_consent(grant(case_id, purposes={"employer_contact"}, categories={"work_status"},
                          parties={"employer"}))
    ok = c.share_data(case_id, actor=NAV, purpose="employer_contact", category="work_status",
                      audience="employer")
    assert ok.basis == "consent" and ok.audience == "employer"
    with pytest.raises(ConsentRequired):
        c.share_data(case_id, actor=RPH, purpose="employer_contact", category="kartlegging",
                     audience="employer")
    with pytest.raises(ConsentRequired):
        c.share_data(case_id, actor=RPH, purpose="employer_contact", category="work_status",
                     audience="nav")


def test_withdrawal_holds_from_the_next_request_and_partial_only_for_its_scope(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    c.grant_consent(grant(case_id, categories={"kartlegging", "mestringsplan"}))
    c.read_data(case_id, actor=NAV, purpose="coordination", category="mestringsplan")
    clock.advance(minutes=1)
    c.withdraw_consent(WithdrawConsent(case_id, PERSON, frozenset({"coordination"}),
                                       frozenset({"mestringsplan"}), frozenset({"nav"}),
                                       "digital", channel="digital"))
    with pytest.raises(ConsentRequired):
        c.read_data(case_id, actor=NAV, purpose="coordination", category="mestringsplan")
    assert c.read_data(case_id, actor=NAV, purpose="coordination",
                       category="kartlegging").basis == "consent"
    log = c.consent_log(case_id, actor=PERSON)
    assert [r.kind for r in log] == ["grant", "withdrawal"]
    assert log[1].channel == "digital" and log[0].form_digest


def test_an_expired_consent_covers_nothing(any_coordinator: Coordinator,
                                           clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    c.grant_consent(grant(case_id, valid_to=clock.now() + timedelta(days=30)))
    clock.advance(days=29)
    c.read_data(case_id, actor=NAV, purpose="coordination", category="kartlegging")
    clock.advance(days=1)
    with pytest.raises(ConsentRequired):
        c.read_data(case_id, actor=NAV, purpose="coordination", category="kartlegging")


def test_emergency_access_is_for_health_roles_only_and_flagged(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    for nav_role in ("nav_veileder", "jobbspesialist", "syfo_veileder", "brobygger"):
        with pytest.raises(EmergencyAccessRefused):
            c.emergency_access(case_id, actor=Actor("x", nav_role), category="kartlegging",
                               reason="akutt")
    with pytest.raises(InvalidInput):
        c.emergency_access(case_id, actor=Actor("lege-2", "fastlege"), category="kartlegging",
                           reason="  ")
    got = c.emergency_access(case_id, actor=Actor("lege-2", "fastlege"),
                             category="kartlegging", reason="Selvmordsfare, legevakt")
    assert got.basis == "emergency"
    pending = c.pending_emergency_reviews(actor=AUDITOR)
    assert [(e.kind, e.actor_id) for e in pending] == [(EMERGENCY_ACCESS, "lege-2")]
    assert pending[0].data["reason"] == "Selvmordsfare, legevakt"
    c.review_emergency(case_id, pending[0].seq, actor=AUDITOR, verdict="justified")
    assert c.pending_emergency_reviews(actor=AUDITOR) == []
    assert audit_kinds(c, case_id).count(ACCESS_DENIED) == 4


def test_a_denied_attempt_is_audited_and_writes_no_case_data(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    c.grant_consent(grant(case_id))

    def case_data() -> tuple[object, ...]:
        with c.uow() as uow:
            case = uow.cases.get(case_id)
            return (case.version, case.state, len(uow.events.history(case_id)),
                    len(uow.consents.for_case(case_id)), len(uow.members.for_case(case_id)))

    before = case_data()
    attempts = [
        (lambda: c.read_data(case_id, actor=OUTSIDER, purpose="coordination",
                             category="kartlegging"), NotCaseMember),
        (lambda: c.read_data(case_id, actor=NAV, purpose="research",
                             category="kartlegging"), ConsentRequired),
        (lambda: c.read_data(case_id, actor=AUDITOR, purpose="coordination",
                             category="kartlegging"), PermissionDenied),
        (lambda: c.grant_consent(GrantConsent(case_id, OUTSIDER, frozenset({"coordination"}),
                                              frozenset({"kartlegging"}), frozenset({"nav"}),
                                              "digital", "v1")), NotCaseMember),
        (lambda: c.access_log(case_id, actor=NAV), PermissionDenied),
        (lambda: c.verify_audit(actor=NAV), PermissionDenied),
    ]
    for call, error in attempts:
        with c.uow() as uow:
            count = uow.audit.count()
        with pytest.raises(error):
            call()
        assert case_data() == before
        with c.uow() as uow:
            assert uow.audit.count() == count + 1
            denial = uow.audit.query(kinds={ACCESS_DENIED})[-1]
        assert denial.outcome == "denied" and denial.data["code"] == error.code
    assert c.verify_audit().ok


def test_the_access_log_shows_who_read_what_on_which_consent(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    record = c.grant_consent(grant(case_id))
    clock.advance(minutes=5)
    c.read_data(case_id, actor=NAV, purpose="coordination", category="kartlegging")
    c.read_data(case_id, actor=PERSON, purpose="coordination", category="kartlegging")
    log = c.access_log(case_id, actor=PERSON)
    reads = [e for e in log if e.action == "read"]
    assert [(e.actor_id, e.actor_role, e.actor_org, e.category, e.consent_id, e.at)
            for e in reads] == [(NAV.id, NAV.role, NAV.org, "kartlegging", record.id,
                                 clock.now())]
    assert c.access_log(case_id, actor=AUDITOR)[-1].action == "read"
    with pytest.raises(NotCaseMember):
        c.access_log(case_id, actor=Actor("person-2", "bruker"))


def test_pilot_consent_log_is_for_auditors(any_coordinator: Coordinator,
                                           clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    c.grant_consent(grant(case_id))
    assert [r.case_id for r in c.pilot_consent_log("ringsaker", actor=AUDITOR)] == [case_id]
    assert c.pilot_consent_log("ha", actor=AUDITOR) == []
    with pytest.raises(PermissionDenied):
        c.pilot_consent_log("ringsaker", actor=NAV)


def test_a_grant_must_fit_its_form_and_method(any_coordinator: Coordinator,
                                              clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    for bad in (GrantConsent(case_id, GP, frozenset({"research"}), frozenset({"kartlegging"}),
                             frozenset({"nav"}), "digital", "v1"),       # v1: no research
                GrantConsent(case_id, GP, frozenset({"coordination"}),
                             frozenset({"kartlegging"}), frozenset({"nav"}), "digital", "v9"),
                GrantConsent(case_id, GP, frozenset({"coordination"}),
                             frozenset({"kartlegging"}), frozenset({"nav"}),
                             "verbal_witnessed", "v1"),                  # no witness
                GrantConsent(case_id, GP, frozenset({"coordination"}),
                             frozenset({"kartlegging"}), frozenset({"nav"}), "digital", "v1",
                             given_by="guardian")):                      # no guardian
        with pytest.raises(InvalidInput):
            c.grant_consent(bad)
    ok = c.grant_consent(GrantConsent(case_id, GP, frozenset({"research"}),
                                      frozenset({"outcome_scores"}), frozenset({"rph"}),
                                      "verbal_witnessed", "v2", witness_ref="rph-2",
                                      given_by="guardian", guardian_ref="verge-1"))
    assert (ok.pilot, ok.witness_ref, ok.guardian_ref) == ("ringsaker", "rph-2", "verge-1")
    assert c.consent_log(case_id)[-1] == ok
