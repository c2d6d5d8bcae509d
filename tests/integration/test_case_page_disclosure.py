"""The case page and the history pass the gate, category by category, on the fake, SQLite
and PostgreSQL: a Nav veileder sees no health data without a live consent, sees it (and the
person's access log shows the read) once a consent covers it, and loses it again from the
request after a withdrawal. Health roles are held to the same rule for Nav data."""

from __future__ import annotations

import random
import uuid
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.audit.events import CASE_VIEWED, DATA_READ, LOG_READ
from coordinator.cases.commands import FireTrigger, GrantConsent, OpenCase, WithdrawConsent
from coordinator.cases.model import Actor, CaseEvent
from coordinator.config import Settings
from coordinator.crypto.signing import load_or_create_dev_key, mint_dev_token
from coordinator.demo import referral
from coordinator.http.app import create_app
from coordinator.http.auth import Authenticator, dev_claims
from coordinator.service import Coordinator
from coordinator.testing import FakeClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore")     # Starlette prefers httpx2; the project pins httpx
    from fastapi.testclient import TestClient

GP = Actor("gp-1", "fastlege", "974589095")
NAV = Actor("nav-1", "nav_veileder", "889640782")
RPH = Actor("rph-1", "rph_behandler")
AUDITOR = Actor("rev-1", "auditor")
PERSON = Actor("person-1", "bruker")

HEALTH_NOTE = "Søvnvansker og uro siste måneder"
NAV_NOTE = "Sykmeldt 50 % fra stilling som lærer"


def case_with_data(c: Coordinator, clock: FakeClock) -> uuid.UUID:
    """A Ringsaker case whose history holds a health role's intake note (kartlegging), a
    start measure (outcome_scores) and a Nav role's note (work_status)."""
    _ch, profile = referral("ringsaker", clock.now().date(), random.Random(3))
    case_id = c.open_case(OpenCase("ringsaker", "fastlege", profile, GP, subject_id=PERSON.id,
                                   team=(NAV, RPH))).id
    c.fire(FireTrigger(case_id, "begin_intake", RPH, {"reason": HEALTH_NOTE}))
    c.fire(FireTrigger(case_id, "record_outcome", RPH, {"phase": "start"}))
    c.fire(FireTrigger(case_id, "complete_intake", NAV, {"reason": NAV_NOTE}))
    return case_id


def grant(case_id: uuid.UUID, categories: set[str], party: str = "nav") -> GrantConsent:
    return GrantConsent(case_id, GP, frozenset({"coordination"}), frozenset(categories),
                        frozenset({party}), "digital", "v1")


def withdraw(case_id: uuid.UUID, categories: set[str]) -> WithdrawConsent:
    return WithdrawConsent(case_id, PERSON, frozenset({"coordination"}),
                           frozenset(categories), frozenset({"nav"}), "digital",
                           channel="digital")


def contents(events: Iterable[CaseEvent]) -> dict[str | None, tuple[str | None, dict[str, Any]]]:
    return {e.trigger: (e.reason, dict(e.data)) for e in events}


def reads(c: Coordinator, case_id: uuid.UUID, actor: Actor) -> list[list[str]]:
    """The access-log reads by ``actor`` (each as its categories), as the person sees it."""
    return [list(e.categories) for e in c.access_log(case_id, actor=PERSON)
            if e.actor_id == actor.id and e.action == "read"]


def test_a_nav_veileder_sees_health_data_only_under_a_live_consent(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = case_with_data(c, clock)

    view = c.view(case_id, actor=NAV)
    assert view.withheld == ("kartlegging", "outcome_scores")
    assert "outcomes" not in view.record and view.record["episode"] == 1
    seen = contents(view.history)
    assert seen["begin_intake"] == (None, {})
    assert seen["record_outcome"] == (None, {})
    assert seen["complete_intake"][0] == NAV_NOTE            # Nav's own side
    history = c.history(case_id, actor=NAV)
    assert history.withheld == ("kartlegging", "outcome_scores")
    assert contents(history) == seen
    assert [e.trigger for e in history] == [None, "begin_intake", "record_outcome",
                                            "complete_intake"]   # every step stays
    assert reads(c, case_id, NAV) == []

    clock.advance(minutes=1)
    record = c.grant_consent(grant(case_id, {"kartlegging", "outcome_scores"}))
    view = c.view(case_id, actor=NAV)
    assert view.withheld == ()
    assert view.record["outcomes"] == ["start"]
    seen = contents(view.history)
    assert seen["begin_intake"][0] == HEALTH_NOTE
    assert seen["record_outcome"] == (None, {"phase": "start"})
    history = c.history(case_id, actor=NAV)
    assert history.withheld == () and contents(history) == seen
    log = [e for e in c.access_log(case_id, actor=PERSON)
           if e.actor_id == NAV.id and e.action == "read"]
    assert [(e.categories, e.consent_id, e.purpose, e.basis, e.actor_org) for e in log] == [
        (("kartlegging", "outcome_scores"), record.id, "coordination", "consent", NAV.org)] * 2

    clock.advance(minutes=1)
    c.withdraw_consent(withdraw(case_id, {"outcome_scores"}))
    view = c.view(case_id, actor=NAV)
    assert view.withheld == ("outcome_scores",)
    assert "outcomes" not in view.record
    seen = contents(view.history)
    assert seen["record_outcome"] == (None, {})
    assert seen["begin_intake"][0] == HEALTH_NOTE
    assert c.history(case_id, actor=NAV).withheld == ("outcome_scores",)
    assert reads(c, case_id, NAV)[-1] == ["kartlegging"]


def test_health_roles_are_held_to_the_same_rule_for_nav_data(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = case_with_data(c, clock)
    view = c.view(case_id, actor=RPH)
    assert view.withheld == ("work_status",)
    seen = contents(view.history)
    assert seen["complete_intake"] == (None, {})
    assert seen["begin_intake"][0] == HEALTH_NOTE and view.record["outcomes"] == ["start"]
    assert reads(c, case_id, RPH) == []
    c.grant_consent(grant(case_id, {"work_status"}, party="rph"))
    assert contents(c.history(case_id, actor=RPH))["complete_intake"][0] == NAV_NOTE
    assert reads(c, case_id, RPH) == [["work_status"]]
    # the fastlege is another health party: the rph consent does not cover it
    assert c.history(case_id, actor=GP).withheld == ("work_status",)


def test_the_person_the_system_and_the_writer_see_everything_without_a_read_record(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = case_with_data(c, clock)
    for actor in (PERSON, None):
        view = c.view(case_id) if actor is None else c.view(case_id, actor=actor)
        assert view.withheld == () and view.record["outcomes"] == ["start"]
        assert contents(view.history)["begin_intake"][0] == HEALTH_NOTE
    # NAV wrote the work_status note: a reader always sees their own words
    assert contents(c.history(case_id, actor=NAV))["complete_intake"][0] == NAV_NOTE
    with c.uow() as uow:
        kinds = [e.kind for e in uow.audit.query(case_id=case_id)]
    assert DATA_READ not in kinds
    assert kinds.count(CASE_VIEWED) == 2 and kinds.count(LOG_READ) == 1


def test_a_withheld_view_is_audited_with_what_it_left_out(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = case_with_data(c, clock)
    c.view(case_id, actor=NAV)
    c.history(case_id, actor=NAV)
    with c.uow() as uow:
        events = [e for e in uow.audit.query(case_id=case_id)
                  if e.kind in (CASE_VIEWED, LOG_READ)]
    assert [(e.kind, e.data.get("withheld")) for e in events] == [
        (CASE_VIEWED, ["kartlegging", "outcome_scores"]),
        (LOG_READ, ["kartlegging", "outcome_scores"])]


# -- the HTTP case page and history -----------------------------------------------------
@pytest.fixture
def http(any_coordinator: Coordinator, clock: FakeClock,
         tmp_path: Path) -> Iterator[tuple[TestClient, Coordinator, Settings]]:
    settings = Settings(data_dir=tmp_path / "data", dev_issuer_enabled=True)
    app = create_app(any_coordinator,
                     authenticator=Authenticator.from_settings(settings, clock=clock))
    with TestClient(app) as client:
        yield client, any_coordinator, settings


def token(settings: Settings, clock: FakeClock, actor: Actor) -> dict[str, str]:
    key = load_or_create_dev_key(settings.data_dir)
    claims = dev_claims(sub=actor.id, role=actor.role, org=actor.org, pilot=None,
                        audience=settings.api_audience, now=clock.now().timestamp(),
                        ttl_seconds=600)
    return {"Authorization": f"Bearer {mint_dev_token(key, claims)}"}


def test_the_http_case_page_and_history_withhold_and_show_by_consent(
        http: tuple[TestClient, Coordinator, Settings], clock: FakeClock) -> None:
    client, c, settings = http
    case_id = case_with_data(c, clock)
    nav = token(settings, clock, NAV)

    def page() -> tuple[dict[str, object], dict[str, object]]:
        got = client.get(f"/api/v1/cases/{case_id}", headers=nav)
        hist = client.get(f"/api/v1/cases/{case_id}/history", headers=nav)
        assert got.status_code == 200 and hist.status_code == 200, (got.text, hist.text)
        return got.json(), hist.json()

    def by_trigger(hist: dict[str, object]) -> dict[str, object]:
        return {e["trigger"]: (e["reason"], e["data"])    # type: ignore[index]
                for e in hist["items"]}                   # type: ignore[attr-defined]

    case, hist = page()
    assert case["withheld"] == hist["withheld"] == ["kartlegging", "outcome_scores"]
    assert "outcomes" not in case["record"]               # type: ignore[operator]
    assert by_trigger(hist)["begin_intake"] == (None, {})
    assert by_trigger(hist)["record_outcome"] == (None, {})

    clock.advance(minutes=1)
    record = c.grant_consent(grant(case_id, {"kartlegging", "outcome_scores"}))
    case, hist = page()
    assert case["withheld"] == hist["withheld"] == []
    assert case["record"]["outcomes"] == ["start"]        # type: ignore[index]
    assert by_trigger(hist)["begin_intake"] == (HEALTH_NOTE, {})
    assert by_trigger(hist)["record_outcome"] == (None, {"phase": "start"})
    log = client.get(f"/api/v1/cases/{case_id}/access-log",
                     headers=token(settings, clock, PERSON)).json()["items"]
    nav_reads = [(e["categories"], e["consent_id"]) for e in log
                 if e["actor_id"] == NAV.id and e["action"] == "read"]
    assert nav_reads == [(["kartlegging", "outcome_scores"], str(record.id))] * 2

    clock.advance(minutes=1)
    c.withdraw_consent(withdraw(case_id, {"kartlegging", "outcome_scores"}))
    case, hist = page()
    assert case["withheld"] == hist["withheld"] == ["kartlegging", "outcome_scores"]
    assert "outcomes" not in case["record"]               # type: ignore[operator]
    assert by_trigger(hist)["begin_intake"] == (None, {})
