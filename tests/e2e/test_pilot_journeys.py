"""Every pilot's happy path, referral to closed, on SQLite through the real migrations.

The steps come from ``coordinator.demo.JOURNEYS``, so the demo data and this test walk the
same path. Each journey is checked against the audit trail it leaves behind.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from coordinator.bootstrap import build
from coordinator.cases.commands import OpenCase
from coordinator.demo import CHANNEL_ROLE, JOURNEYS, actor, drive, load_demo, referral, team
from coordinator.errors import TransitionNotAllowed
from coordinator.service import Coordinator
from coordinator.testing import FakeClock, InMemoryStore, InMemoryUnitOfWork

PILOTS = ("bjerke", "fredrikstad", "kristiansand", "nesodden", "tromso",
          "ha", "lillestrom", "stovner", "ringsaker")


def test_there_is_one_journey_per_pilot_and_every_pilot_is_registered(
        coordinator: Coordinator) -> None:
    assert set(JOURNEYS) == set(PILOTS)
    assert set(coordinator.workflows.keys()) == set(PILOTS)


@pytest.mark.parametrize("pilot", PILOTS)
def test_a_case_goes_from_referral_to_closed(coordinator: Coordinator, clock: FakeClock,
                                             pilot: str) -> None:
    c = coordinator
    channel, person = referral(pilot, clock.now().date())
    opened = c.open_case(OpenCase(pilot, channel, person, actor(pilot, CHANNEL_ROLE[channel]),
                                  team=team(pilot)))
    assert opened.state == "referred"
    started = clock.now()

    drive(c, opened.id, pilot, JOURNEYS[pilot], advance=lambda days: clock.advance(days=days))

    final = c.summary(opened.id)
    assert final.state == "closed"
    assert final.closed_at == clock.now() > started
    latest = c.workflows.latest(pilot).definition.version
    assert final.workflow_version == latest

    history = c.history(opened.id)
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    assert final.version == len(history) == len(JOURNEYS[pilot]) + 1
    assert [e.kind for e in history] == ["opened"] + ["transitioned"] * len(JOURNEYS[pilot])
    assert [e.trigger for e in history[1:]] == [s.trigger for s in JOURNEYS[pilot]]
    assert [e.actor_role for e in history[1:]] == [s.role for s in JOURNEYS[pilot]]
    assert history[0].from_state is None and history[0].to_state == "referred"
    for before, event in itertools.pairwise(history):
        assert event.from_state == before.to_state      # an unbroken chain of states
    for event in history:
        assert event.actor_id and event.actor_role
        assert event.to_state
        assert (event.workflow_key, event.workflow_version) == (pilot, latest)
        assert event.occurred_at.tzinfo is not None
    assert [e.occurred_at for e in history] == sorted(e.occurred_at for e in history)
    assert history[-1].to_state == "closed"
    # The happy path keeps the pilot's deadlines (Hå's kartlegging, Bjerke's letter,
    # Ringsaker's 12 weeks): each one is met in time, none late or missed.
    deadlines = c.view(opened.id).deadlines
    assert len(deadlines) == len(c.workflows.latest(pilot).definition.deadlines)
    assert {d.status for d in deadlines} <= {"met"}


@pytest.mark.parametrize("pilot", PILOTS)
def test_a_journey_cannot_skip_its_first_state_change(coordinator: Coordinator,
                                                      clock: FakeClock, pilot: str) -> None:
    """The path is enforced, not just allowed: closing straight from referral is refused."""
    channel, person = referral(pilot, clock.now().date())
    opened = coordinator.open_case(OpenCase(pilot, channel, person,
                                            actor(pilot, CHANNEL_ROLE[channel]),
                                            team=team(pilot)))
    with pytest.raises(TransitionNotAllowed):
        drive(coordinator, opened.id, pilot, JOURNEYS[pilot][-1:])
    assert coordinator.summary(opened.id).version == 1


def test_load_demo_spreads_cases_over_every_pilot(coordinator: Coordinator) -> None:
    calls: list[tuple[int, int]] = []
    created = load_demo(coordinator, progress=lambda done, total: calls.append((done, total)))

    assert created == coordinator.count_cases() > 0
    assert calls[-1] == (created, created)
    assert [done for done, _ in calls] == list(range(1, created + 1))
    states: dict[str, set[str]] = defaultdict(set)
    for summary in coordinator.list_cases(limit=500):
        states[summary.pilot].add(summary.state)
    assert set(states) == set(PILOTS)
    for pilot in PILOTS:
        assert len(states[pilot]) >= 3, (pilot, states[pilot])
        assert {"referred", "closed"} <= states[pilot]
        assert states[pilot] & {"declined", "withdrawn"}
    reentered = [s for s in coordinator.list_cases(pilot="ha", state="follow_up", limit=500)
                 if any(e.trigger == "reenter" for e in coordinator.history(s.id))]
    assert len(reentered) == 1


def test_load_demo_is_deterministic() -> None:
    """Two loads on two fresh stores give the same pilots, states and profiles."""
    def snapshot() -> list[tuple[str, str, int, str]]:
        store = InMemoryStore()
        c = build(clock=FakeClock(datetime(2027, 6, 1, 8, tzinfo=UTC)),
                  uow=lambda: InMemoryUnitOfWork(store))
        load_demo(c)
        return sorted((case.pilot, case.state, case.version, str(case.profile_data))
                      for case in store.cases.values())

    assert snapshot() == snapshot()


def test_load_demo_runs_on_the_system_clock(sqlite_engine: Engine) -> None:
    """``make run`` loads the demo with the real clock: no fake time is needed."""
    c = build(engine=sqlite_engine)
    created = load_demo(c)
    assert created == c.count_cases()
    assert {s.pilot for s in c.list_cases(state="closed", limit=500)} == set(PILOTS)
