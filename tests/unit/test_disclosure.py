"""How the case record and the event log are classified by data category, and which
categories a reader passes (cases/disclosure.py, pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coordinator.access.policy import Relation
from coordinator.cases import disclosure
from coordinator.cases.model import Actor, CaseEvent
from coordinator.consent.model import ConsentRecord
from coordinator.workflows.definition import WorkflowDefinition
from coordinator.workflows.registry import WorkflowRegistry

REGISTRY = WorkflowRegistry.builtin()
CASE = uuid.uuid4()
T0 = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
NAV = Actor("nav-1", "nav_veileder")
BRO = Actor("bro-1", "brobygger")
RPH = Actor("rph-1", "rph_behandler")


def definitions(key: str, version: int) -> WorkflowDefinition:
    return REGISTRY.get(key, version).definition


def event(trigger: str | None, *, role: str = "rph_behandler", actor: str = "x-1",
          kind: str = "transitioned", pilot: str = "ringsaker", version: int = 1,
          from_state: str = "follow_up", reason: str | None = None,
          data: dict[str, Any] | None = None, seq: int = 1) -> CaseEvent:
    return CaseEvent(CASE, kind, T0, actor, role, from_state, from_state, trigger, reason,
                     pilot, version, data or {}, seq)


@pytest.mark.parametrize(("e", "category"), [
    (event("record_outcome", data={"phase": "start"}), "outcome_scores"),
    (event("agree_plan", data={"visible_to": ["bruker"]}), "mestringsplan"),
    (event("attend_course", pilot="bjerke"), "session_summary"),
    (event("update_gp", pilot="ha"), "meeting_notes"),
    (event("hold_get_to_know", data={"attendees": ["bruker"]}), None),   # joint meeting
    (event("begin_intake"), None),
    (event("begin_intake", from_state="referred", reason="kartlagt"), "kartlegging"),
    (event("drop_out", reason="behandling avsluttet"), "session_summary"),
    (event("drop_out", role="nav_veileder", reason="i jobb"), "work_status"),
    (event("drop_out", role="brobygger", reason="notat"), "session_summary"),  # fail closed
    (event("withdraw", role="bruker", reason="mitt valg"), None),        # the person's words
    (event(None, kind="meeting_scheduled", data={"kind": "course"}), "session_summary"),
    (event(None, kind="meeting_scheduled", data={"kind": "get_to_know"}), None),
    (event(None, kind="member_added", data={"actor_id": "a", "role": "fastlege"}), None),
    (event("anything", pilot="nowhere", reason="notat"), "session_summary"),  # unknown: closed
    (event("anything", pilot="nowhere", role="bruker"), "kartlegging"),
])
def test_each_event_is_classified_by_what_it_carries(e: CaseEvent,
                                                     category: str | None) -> None:
    assert disclosure.event_category(e, definitions) == category


def test_the_record_is_classified_and_filtered_field_by_field() -> None:
    record = {"episode": 1, "milestones": {"agree_plan": T0.isoformat()}, "outcomes": ["start"],
              "plan_visible_to": ["bruker"], "tracks_finished": ["health"],
              "meetings": [{"kind": "get_to_know", "at": T0.isoformat(), "attendees": []},
                           {"kind": "course", "at": T0.isoformat(), "attendees": []}]}
    assert disclosure.record_categories(record) == {"outcome_scores", "mestringsplan",
                                                    "session_summary"}
    assert disclosure.record_categories({**record, "outcomes": [], "plan_visible_to": None,
                                         "meetings": []}) == set()
    shown = disclosure.Shown(withheld=frozenset({"outcome_scores", "session_summary"}))
    out = disclosure.filter_record(record, shown)
    assert "outcomes" not in out and out["plan_visible_to"] == ["bruker"]
    assert [m["kind"] for m in out["meetings"]] == ["get_to_know"]
    assert out["milestones"] == record["milestones"] and out["episode"] == 1


def test_a_reader_always_sees_their_own_events() -> None:
    events = [event("drop_out", role="brobygger", actor=BRO.id, reason="notat", seq=1),
              event("drop_out", role="rph_behandler", actor=RPH.id, reason="notat", seq=2)]
    assert disclosure.event_categories(BRO, events, definitions) == {2: "session_summary"}


def grant(categories: set[str], purposes: set[str], party: str = "nav") -> ConsentRecord:
    return ConsentRecord(uuid.uuid4(), CASE, "grant", frozenset(purposes),
                         frozenset(categories), frozenset({party}), T0, None, "digital", "v1",
                         T0, "gp-1", "fastlege")


def test_a_category_passes_on_coordination_or_its_own_sharing_purpose() -> None:
    now = T0 + timedelta(hours=1)
    records = [grant({"kartlegging"}, {"share_kartlegging"}),
               grant({"outcome_scores"}, {"research"})]
    shown = disclosure.decide(NAV, Relation.MEMBER, {"kartlegging", "outcome_scores",
                                                     "work_status"}, records, now)
    assert set(shown.granted) == {"kartlegging", "work_status"}
    assert shown.purposes["kartlegging"] == "share_kartlegging"
    assert shown.withheld == {"outcome_scores"}            # research is not a read purpose
    assert set(shown.crossed) == {"kartlegging"}           # work_status is Nav's own side
    data, consent_id, purpose, category = disclosure.read_record(shown, "view")
    assert (consent_id, purpose, category) == (records[0].id, "share_kartlegging",
                                               "kartlegging")
    assert data["withheld"] == ["outcome_scores"] and data["via"] == "view"


@pytest.mark.parametrize("role", ["bruker", "system", "auditor"])
def test_only_team_roles_are_filtered(role: str) -> None:
    shown = disclosure.decide(Actor("a", role), Relation.OWN, {"kartlegging"}, [], T0)
    assert shown.withheld == frozenset() and not shown.crossed
