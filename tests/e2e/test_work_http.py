"""Each user's job over HTTP, beyond the case page: meetings, the in-app inbox, the
prosjektleder's oversight of reminders, the therapist's sessions and outcome measures.
Real app, real tokens, a migrated SQLite file; per family a happy path and a refusal."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Engine

from coordinator.bootstrap import build, build_dispatcher
from coordinator.cases.commands import OpenCase
from coordinator.cases.model import Actor
from coordinator.config import Settings
from coordinator.crypto.signing import load_or_create_dev_key, mint_dev_token
from coordinator.demo import referral
from coordinator.http.app import create_app
from coordinator.http.auth import Authenticator, dev_claims
from coordinator.service import Coordinator
from coordinator.testing import FakeClock
from coordinator.workflows.registry import WorkflowRegistry

with warnings.catch_warnings():
    warnings.simplefilter("ignore")     # Starlette prefers httpx2; the project pins httpx
    from fastapi.testclient import TestClient

GP = Actor("gp-1", "fastlege")
NAV = Actor("nav-1", "nav_veileder")
THERAPIST = Actor("ther-1", "kognitiv_terapeut")
PERSON = "person-1"
PROBLEM = "application/problem+json"


class World:
    def __init__(self, client: TestClient, coordinator: Coordinator, settings: Settings,
                 clock: FakeClock, engine: Engine) -> None:
        self.client, self.c, self.settings = client, coordinator, settings
        self.clock, self.engine = clock, engine

    def auth(self, sub: str, role: str) -> dict[str, str]:
        key = load_or_create_dev_key(self.settings.data_dir)
        claims = dev_claims(sub=sub, role=role, org=None, pilot=None,
                            audience=self.settings.api_audience,
                            now=self.clock.now().timestamp(), ttl_seconds=600)
        return {"Authorization": f"Bearer {mint_dev_token(key, claims)}"}

    def as_(self, actor: Actor) -> dict[str, str]:
        return self.auth(actor.id, actor.role)

    def new_case(self, pilot: str = "ringsaker", subject: str = PERSON) -> UUID:
        _ch, profile = referral(pilot, self.clock.now().date())
        return self.c.open_case(OpenCase(pilot, "fastlege", profile, GP, subject_id=subject,
                                         team=(NAV, THERAPIST))).id

    def times(self, days: int = 2) -> dict[str, str]:
        start = self.clock.now() + timedelta(days=days)
        return {"starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=1)).isoformat()}


@pytest.fixture
def w(sqlite_engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[World]:
    settings = Settings(data_dir=tmp_path / "data", dev_issuer_enabled=True)
    c = build(engine=sqlite_engine, clock=clock)
    app = create_app(c, authenticator=Authenticator.from_settings(settings, clock=clock))
    with TestClient(app) as client:
        yield World(client, c, settings, clock, sqlite_engine)


def problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}"
    return body


# -- meetings -------------------------------------------------------------------------------
def test_members_plan_move_and_hold_meetings_and_the_person_sees_theirs(w: World) -> None:
    case = w.new_case()
    r = w.client.post(f"/api/v1/cases/{case}/meetings", headers=w.as_(NAV), json={
        "kind": "follow_up", "participants": ["bruker", "nav_veileder"], **w.times(2)})
    assert r.status_code == 201, r.text
    meeting = r.json()
    assert (meeting["status"], meeting["sequence"], meeting["case_id"]) == \
        ("scheduled", 0, str(case))
    assert meeting["participants"] == ["bruker", "nav_veileder"]

    moved = w.client.post(f"/api/v1/meetings/{meeting['id']}/reschedule",
                          headers=w.as_(NAV), json=w.times(3))
    assert moved.status_code == 200, moved.text
    assert moved.json()["sequence"] == 1
    assert datetime.fromisoformat(moved.json()["starts_at"]) == \
        datetime.fromisoformat(w.times(3)["starts_at"])

    person = w.auth(PERSON, "bruker")
    listed = w.client.get(f"/api/v1/cases/{case}/meetings", headers=person).json()
    assert [m["id"] for m in listed["items"]] == [meeting["id"]]
    assert listed["total"] == 1 and listed["next"] is None
    mine = w.client.get("/api/v1/me/meetings", headers=person).json()["items"]
    assert [m["id"] for m in mine] == [meeting["id"]]
    # The therapist is on the team but not invited: not among their meetings.
    assert w.client.get("/api/v1/me/meetings", headers=w.as_(THERAPIST)).json()["items"] == []

    held = w.client.post(f"/api/v1/meetings/{meeting['id']}/held", headers=w.as_(NAV),
                         json={"attendees": ["bruker", "nav_veileder"]})
    assert held.status_code == 200, held.text
    assert held.json()["status"] == "held"
    assert held.json()["attendees"] == ["bruker", "nav_veileder"]
    problem(w.client.post(f"/api/v1/meetings/{meeting['id']}/cancel", headers=w.as_(NAV)),
            409, "meeting-closed")
    history = w.client.get(f"/api/v1/cases/{case}/history", headers=w.as_(NAV)).json()
    assert {"meeting_scheduled", "meeting_rescheduled", "meeting_held"} <= \
        {e["kind"] for e in history["items"]} | {e.get("trigger") for e in history["items"]}


def test_meetings_are_planned_by_the_team_and_hidden_from_strangers(w: World) -> None:
    case = w.new_case()
    body = {"kind": "follow_up", "participants": ["bruker"], **w.times()}
    problem(w.client.post(f"/api/v1/cases/{case}/meetings", headers=w.auth(PERSON, "bruker"),
                          json=body), 403, "permission-denied")
    meeting = w.client.post(f"/api/v1/cases/{case}/meetings", headers=w.as_(NAV),
                            json=body).json()
    stranger = w.auth("nav-2", "nav_veileder")
    refused = problem(w.client.post(f"/api/v1/meetings/{meeting['id']}/cancel",
                                    headers=stranger), 404, "meeting-not-found")
    assert str(case) not in str(refused)
    problem(w.client.get(f"/api/v1/cases/{case}/meetings", headers=stranger),
            404, "case-not-found")
    past = {**body, "starts_at": (w.clock.now() - timedelta(hours=2)).isoformat()}
    problem(w.client.post(f"/api/v1/cases/{case}/meetings", headers=w.as_(NAV), json=past),
            422, "invalid-input")
    assert w.client.get(f"/api/v1/cases/{case}/meetings",
                        headers=w.as_(NAV)).json()["total"] == 1


# -- the in-app inbox -----------------------------------------------------------------------
def test_the_inbox_holds_the_callers_in_app_messages_paged(w: World) -> None:
    case = w.new_case()
    for days in (2, 3):
        assert w.client.post(f"/api/v1/cases/{case}/meetings", headers=w.as_(NAV), json={
            "kind": "follow_up", "participants": ["bruker", "nav_veileder"],
            **w.times(days)}).status_code == 201
    report = build_dispatcher(w.settings, engine=w.engine, clock=w.clock).dispatch_due()
    assert report.sent >= 4                     # two invitations each to two recipients
    first = w.client.get("/api/v1/me/inbox?limit=1", headers=w.as_(NAV)).json()
    assert len(first["items"]) == 1 and first["items"][0]["case_id"] == str(case)
    assert first["next"] is not None
    rest = w.client.get(first["next"], headers=w.as_(NAV)).json()
    assert rest["offset"] == 1 and len(rest["items"]) >= 1
    assert rest["items"][0]["id"] != first["items"][0]["id"]
    person = w.client.get("/api/v1/me/inbox", headers=w.auth(PERSON, "bruker")).json()
    assert len(person["items"]) == 2


def test_nobody_reads_another_users_inbox(w: World, clock: FakeClock) -> None:
    case = w.new_case()
    w.client.post(f"/api/v1/cases/{case}/meetings", headers=w.as_(NAV), json={
        "kind": "follow_up", "participants": ["nav_veileder"], **w.times()})
    build_dispatcher(w.settings, engine=w.engine, clock=w.clock).dispatch_due()
    # Same id in another role, and another veileder: neither sees nav-1's messages.
    for headers in (w.auth("nav-2", "nav_veileder"), w.auth("auditor-1", "auditor")):
        assert w.client.get("/api/v1/me/inbox", headers=headers).json()["items"] == []
    assert w.client.get("/api/v1/me/inbox").status_code == 401


def test_the_inbox_is_503_where_no_reader_is_configured(tmp_path: Path,
                                                        clock: FakeClock) -> None:
    from coordinator.testing import InMemoryStore, InMemoryUnitOfWork

    store = InMemoryStore()
    c = build(clock=clock, uow=lambda: InMemoryUnitOfWork(store))
    settings = Settings(data_dir=tmp_path / "data", dev_issuer_enabled=True)
    app = create_app(c, authenticator=Authenticator.from_settings(settings, clock=clock))
    with TestClient(app) as client:
        world = World(client, c, settings, clock, None)  # type: ignore[arg-type]
        problem(client.get("/api/v1/me/inbox", headers=world.as_(NAV)), 503,
                "service-unavailable")


# -- oversight of reminders (prosjektleder) -------------------------------------------------
def test_the_prosjektleder_sees_overdue_cases_and_requeues_dead_letters(w: World) -> None:
    case = w.new_case("ha")                 # Hå: kartlegging within a week of referral
    w.new_case("ringsaker")                 # no deadline runs while referred
    lead = w.auth("lead-1", "prosjektleder")
    assert w.client.get("/api/v1/reminders/overdue", headers=lead).json()["items"] == []
    w.clock.advance(days=365)
    lead = w.auth("lead-1", "prosjektleder")        # a fresh token at the new time
    overdue = w.client.get("/api/v1/reminders/overdue?pilot=ha", headers=lead).json()
    assert {i["case_id"] for i in overdue["items"]} == {str(case)}
    assert set(overdue["items"][0]) == {"case_id", "pilot", "state", "deadline", "due_at"}

    w.client.post(f"/api/v1/cases/{case}/meetings", headers=w.as_(NAV), json={
        "kind": "follow_up", "participants": ["nav_veileder"], **w.times()})
    store = w.c.outbox_store
    assert store is not None
    due = store.claim("test", w.clock.now(), 100, timedelta(minutes=5))
    store.complete("test", w.clock.now(), [], [(r.id, "refused", None) for r in due])
    dead = w.client.get("/api/v1/reminders/dead", headers=lead).json()
    assert {i["id"] for i in dead["items"]} == {str(r.id) for r in due}
    row = dead["items"][0]
    assert row["status"] == "dead" and row["last_error"] == "refused"
    again = w.client.post(f"/api/v1/reminders/dead/{row['id']}/requeue", headers=lead)
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["attempts"]) == ("pending", 0)
    problem(w.client.post(f"/api/v1/reminders/dead/{row['id']}/requeue", headers=lead),
            404, "reminder-not-found")


def test_oversight_is_for_the_prosjektleder_only(w: World) -> None:
    for path in ("/api/v1/reminders/overdue", "/api/v1/reminders/dead"):
        problem(w.client.get(path, headers=w.as_(NAV)), 403, "permission-denied")
    problem(w.client.get("/api/v1/reminders/overdue?pilot=atlantis",
                         headers=w.auth("lead-1", "prosjektleder")), 404, "unknown-workflow")


# -- therapy sessions and outcome measures --------------------------------------------------
def test_the_therapist_logs_sessions_against_the_pilots_range(w: World) -> None:
    case = w.new_case("stovner")
    low, high = WorkflowRegistry.builtin().latest("stovner").definition \
        .follow_up.therapy_hours or (0, 0)
    today = w.clock.now().date().isoformat()
    for _ in range(2):
        r = w.client.post(f"/api/v1/cases/{case}/sessions", headers=w.as_(THERAPIST),
                          json={"held_on": today, "minutes": 60, "kind": "individual"})
        assert r.status_code == 201, r.text
        assert r.json()["therapist_id"] == THERAPIST.id
    hours = w.client.get(f"/api/v1/cases/{case}/hours", headers=w.as_(THERAPIST)).json()
    assert hours == {"case_id": str(case), "sessions": 2, "minutes": 120, "hours": 2.0,
                     "range_hours": [low, high],
                     "status": "below_range" if low > 2 else "within_range"}


def test_only_the_therapist_logs_sessions_and_only_health_roles_see_hours(w: World) -> None:
    case = w.new_case("stovner")
    today = w.clock.now().date()
    session = {"held_on": today.isoformat(), "minutes": 60, "kind": "individual"}
    problem(w.client.post(f"/api/v1/cases/{case}/sessions", headers=w.as_(NAV),
                          json=session), 403, "permission-denied")
    problem(w.client.get(f"/api/v1/cases/{case}/hours", headers=w.as_(NAV)),
            403, "permission-denied")
    tomorrow = {**session, "held_on": (today + timedelta(days=1)).isoformat()}
    problem(w.client.post(f"/api/v1/cases/{case}/sessions", headers=w.as_(THERAPIST),
                          json=tomorrow), 422, "invalid-input")
    assert w.client.get(f"/api/v1/cases/{case}/hours",
                        headers=w.as_(THERAPIST)).json()["sessions"] == 0


def test_outcome_measures_are_recorded_once_per_phase(w: World) -> None:
    case = w.new_case()
    body = {"phase": "end", "scores": {"phq9": [1, 1, 2, 1, 0, 1, 1, 0, 0]},
            "work_status": "graded_sick_leave"}
    r = w.client.post(f"/api/v1/cases/{case}/measures", headers=w.as_(THERAPIST), json=body)
    assert r.status_code == 201, r.text
    got = {m["instrument"]: m for m in r.json()["items"]}
    assert got["phq9"]["total"] == 7 and got["phq9"]["items"] == body["scores"]["phq9"]
    assert got["work_status"]["value"] == "graded_sick_leave"
    problem(w.client.post(f"/api/v1/cases/{case}/measures", headers=w.as_(THERAPIST),
                          json=body), 409, "already-recorded")


def test_symptom_scores_need_a_health_role(w: World) -> None:
    case = w.new_case()
    scores = {"phase": "start", "scores": {"gad7": [1, 1, 2, 1, 0, 1, 1]}}
    problem(w.client.post(f"/api/v1/cases/{case}/measures", headers=w.as_(NAV), json=scores),
            403, "permission-denied")
    work = {"phase": "start", "work_status": "in_work"}
    assert w.client.post(f"/api/v1/cases/{case}/measures", headers=w.as_(NAV),
                         json=work).status_code == 201
    problem(w.client.post(f"/api/v1/cases/{case}/measures",
                          headers=w.auth("nav-2", "nav_veileder"), json=work),
            404, "case-not-found")
