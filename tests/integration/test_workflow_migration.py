"""Moving running Ringsaker cases from workflow version 1 to 2, on every store.

Version 2 adds the HelseNorge form and start/end measures (004:1023-1027). Cases in
follow-up or closing cannot move (no start measure); earlier states can. Finished cases
stay on the version they ended on.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from uuid import UUID

import pytest

from coordinator.cases.commands import FireTrigger, GrantConsent, OpenCase
from coordinator.cases.model import Actor
from coordinator.errors import GuardFailed, MigrationBlocked, UnknownWorkflow
from coordinator.service import Coordinator
from coordinator.testing import FakeClock
from coordinator.workflows.definitions import ringsaker_v1
from coordinator.workflows.facts import Profile
from coordinator.workflows.registry import WorkflowRegistry

GP = Actor("gp-1", "fastlege")
PERSON = Profile(birth_date=date(1985, 3, 2), problems=frozenset({"msk"}),
                 sick_leave_start=date(2026, 12, 21))
EVERYONE = ["bruker", "fastlege", "nav_veileder", "kognitiv_terapeut"]

# Version 1's path, trigger by trigger (ringsaker_v1), with the state it leads to.
V1_PATH: list[tuple[str, dict[str, object], str]] = [
    ("begin_intake", {}, "intake"),
    ("complete_intake", {}, "consent"),
    ("confirm_consent", {}, "get_to_know"),
    ("hold_get_to_know", {"attendees": EVERYONE}, "planning"),
    ("agree_plan", {"visible_to": ["bruker"]}, "follow_up"),
    ("begin_closing", {}, "closing"),
    ("close", {}, "closed"),
]
MOVABLE = ("referred", "intake", "consent", "get_to_know", "planning")
BLOCKED = ("follow_up", "closing")


def only_v1(c: Coordinator) -> Coordinator:
    """The same store as it was before version 2 was deployed."""
    return replace(c, workflows=WorkflowRegistry([("ringsaker_v1", ringsaker_v1.DEFINITION)]))


def open_v1_case_in(c: Coordinator, clock: FakeClock, state: str) -> UUID:
    old = only_v1(c)
    case_id = old.open_case(OpenCase("ringsaker", "fastlege", PERSON, GP)).id
    old.grant_consent(GrantConsent(case_id, GP, frozenset({"coordination"}),
                                   frozenset({"kartlegging"}), frozenset({"nav"}),
                                   "digital", "v1"))
    current = "referred"
    for trigger, args, target in V1_PATH:
        if current == state:
            break
        clock.advance(hours=1)
        current = old.fire(FireTrigger(case_id, trigger, GP, args)).state
        assert current == target
    assert current == state
    return case_id


Snapshot = tuple[int, str, int, int]    # workflow version, state, case version, events


def snapshot(c: Coordinator, ids: dict[str, UUID]) -> dict[str, Snapshot]:
    out: dict[str, Snapshot] = {}
    for state, case_id in ids.items():
        s = c.summary(case_id)
        out[state] = (s.workflow_version, s.state, s.version, len(c.history(case_id)))
    return out


@pytest.fixture
def coordinator(any_coordinator: Coordinator) -> Coordinator:
    """The fake, SQLite and PostgreSQL (when reachable) in turn."""
    return any_coordinator


@pytest.fixture
def v1_cases(coordinator: Coordinator, clock: FakeClock) -> dict[str, UUID]:
    states = (*MOVABLE, *BLOCKED, "closed", "withdrawn")
    ids = {state: open_v1_case_in(coordinator, clock, state)
           for state in states if state != "withdrawn"}
    withdrawn = open_v1_case_in(coordinator, clock, "intake")
    only_v1(coordinator).fire(FireTrigger(withdrawn, "withdraw", GP))
    ids["withdrawn"] = withdrawn
    for case_id in ids.values():
        assert coordinator.summary(case_id).workflow_version == 1
    return ids


def test_a_dry_run_lists_movable_and_blocked_cases_and_changes_nothing(
        coordinator: Coordinator, v1_cases: dict[str, UUID]) -> None:
    before = snapshot(coordinator, v1_cases)
    histories = {k: coordinator.history(v) for k, v in v1_cases.items()}

    report = coordinator.migrate("ringsaker", 2, dry_run=True)

    assert (report.pilot, report.from_version, report.to_version, report.dry_run) == (
        "ringsaker", 1, 2, True)
    assert report.moved == 0
    assert {i.case_id: (i.from_state, i.to_state) for i in report.movable} == {
        v1_cases[s]: (s, s) for s in MOVABLE}
    assert {i.case_id for i in report.blocked} == {v1_cases[s] for s in BLOCKED}
    for item in report.blocked:
        assert item.to_state is None
        assert item.reason and "start measure" in item.reason
    assert snapshot(coordinator, v1_cases) == before
    assert {k: coordinator.history(v) for k, v in v1_cases.items()} == histories


def test_the_real_run_moves_the_movable_cases_and_leaves_the_rest_on_v1(
        coordinator: Coordinator, clock: FakeClock, v1_cases: dict[str, UUID]) -> None:
    before = snapshot(coordinator, v1_cases)
    clock.advance(days=1)

    report = coordinator.migrate("ringsaker", 2, dry_run=False, actor_id="ops-1")

    assert report.moved == len(MOVABLE) == len(report.movable)
    for state in MOVABLE:
        case_id = v1_cases[state]
        summary = coordinator.summary(case_id)
        assert (summary.workflow_version, summary.state) == (2, state)
        assert summary.version == before[state][2] + 1
        event = coordinator.history(case_id)[-1]
        assert (event.kind, event.seq, event.from_state, event.to_state) == (
            "migrated", summary.version, state, state)
        assert (event.actor_id, event.workflow_version, event.occurred_at) == (
            "ops-1", 2, clock.now())
        assert event.data == {"from_version": 1, "to_version": 2}
    for state in (*BLOCKED, "closed", "withdrawn"):
        assert snapshot(coordinator, {state: v1_cases[state]})[state] == before[state]

    again = coordinator.migrate("ringsaker", 2, dry_run=False)
    assert (again.moved, again.movable) == (0, ())
    assert {i.case_id for i in again.blocked} == {v1_cases[s] for s in BLOCKED}


def test_migrated_cases_follow_v2_rules_and_blocked_ones_keep_v1_rules(
        coordinator: Coordinator, v1_cases: dict[str, UUID]) -> None:
    coordinator.migrate("ringsaker", 2, dry_run=False)
    moved = v1_cases["get_to_know"]
    with pytest.raises(GuardFailed, match="receive_mapping_form"):   # v2: the form comes first
        coordinator.fire(FireTrigger(moved, "hold_get_to_know", GP, {"attendees": EVERYONE}))
    coordinator.fire(FireTrigger(moved, "receive_mapping_form", GP))
    assert coordinator.fire(FireTrigger(moved, "hold_get_to_know", GP,
                                        {"attendees": EVERYONE})).state == "planning"

    stayed = v1_cases["closing"]                                   # v1: closes without measures
    done = coordinator.fire(FireTrigger(stayed, "close", GP))
    assert (done.state, done.workflow_version) == ("closed", 1)


def test_new_cases_open_on_the_latest_version_while_running_ones_keep_theirs(
        coordinator: Coordinator, v1_cases: dict[str, UUID]) -> None:
    fresh = coordinator.open_case(OpenCase("ringsaker", "fastlege", PERSON, GP))
    assert fresh.workflow_version == 2
    assert coordinator.history(fresh.id)[0].workflow_version == 2
    assert coordinator.summary(v1_cases["follow_up"]).workflow_version == 1
    follow_up = coordinator.fire(FireTrigger(v1_cases["follow_up"], "begin_closing", GP))
    assert (follow_up.state, follow_up.workflow_version) == ("closing", 1)


def test_migrating_to_a_version_without_a_migration_is_refused(
        coordinator: Coordinator, v1_cases: dict[str, UUID]) -> None:
    with pytest.raises(MigrationBlocked):
        coordinator.migrate("ringsaker", 1, dry_run=True)
    with pytest.raises(UnknownWorkflow):
        coordinator.migrate("ringsaker", 3, dry_run=True)
    assert all(coordinator.summary(i).workflow_version == 1 for i in v1_cases.values())
