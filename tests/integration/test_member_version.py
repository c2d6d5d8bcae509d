"""Every event is a version: adding a team member in the same clock tick as the opening
still bumps the case's version (a fake clock never moves by itself, so ``updated_at`` does
not change and the store must version the case anyway)."""

from __future__ import annotations

from coordinator.cases.commands import OpenCase
from coordinator.cases.model import SYSTEM, Actor
from coordinator.demo import referral
from coordinator.service import Coordinator


def test_a_member_added_in_the_same_instant_is_a_new_version(
        any_coordinator: Coordinator) -> None:
    c = any_coordinator
    _channel, profile = referral("ringsaker", c.clock.now().date())
    opened = c.open_case(OpenCase("ringsaker", "fastlege", profile, SYSTEM,
                                  team=(Actor("gp-1", "fastlege"),)))
    c.add_member(opened.id, "helper-1", "nav_veileder", by=Actor("gp-1", "fastlege"))
    c.add_member(opened.id, "helper-2", "jobbspesialist", by=Actor("gp-1", "fastlege"))
    assert c.summary(opened.id).version == opened.version + 2
    assert [e.seq for e in c.history(opened.id)] == [1, 2, 3]
    assert [e.kind for e in c.history(opened.id)] == ["opened", "member_added", "member_added"]
