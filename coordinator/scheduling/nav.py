"""Outbound notifications to Nav: which case changes need Nav's attention. Pure.

Two workflow events, read off the pilot definitions' shared journey (``_common.py``):

- ``referral_consented``: the case enters ``get_to_know``. Every pilot gets there only
  through its consent gate (``confirm_consent``, or ``complete_intake`` guarded by
  ``consent_covers(coordination, nav)`` where the consent is taken on the mapping form), so
  this is "a new referral, and the person has consented to coordination with Nav".
- ``plan_ready``: the case moves from ``planning`` to ``follow_up`` (``agree_plan``): the
  mestringsplan is agreed.

A row is planned only while a live consent covers coordination with Nav
(``("coordination", "nav")`` among the case's live (purpose, party) pairs, the same pairs
the workflow guards see). Its payload holds ids, the pilot, the event and a time: no
health data. The row goes to the ``nav_webhook`` channel, recipient ``nav``, as a one-off
notice written in the same unit of work as the case change.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from coordinator.scheduling.outbox import NAV_WEBHOOK, NOTICE, OutboxRow
from coordinator.workflows.definition import State

NAV = "nav"
NAV_CONSENT = ("coordination", NAV)
REFERRAL_CONSENTED, PLAN_READY = "referral_consented", "plan_ready"
EVENTS = (REFERRAL_CONSENTED, PLAN_READY)


def event_for(before: str, after: str) -> str | None:
    """The Nav event a state change raises, if any."""
    if before == after:
        return None
    if after == State.GET_TO_KNOW:
        return REFERRAL_CONSENTED
    if (before, after) == (State.PLANNING, State.FOLLOW_UP):
        return PLAN_READY
    return None


def covered(consents: Collection[tuple[str, str]]) -> bool:
    """Whether the live (purpose, party) pairs cover coordination with Nav."""
    return NAV_CONSENT in consents


def row(*, case_id: uuid.UUID, pilot: str, version: int, event: str,
        now: datetime) -> OutboxRow:
    """The outbox row for one Nav event. The key names the case version, so one change
    raises one event."""
    return OutboxRow(uuid.uuid4(), case_id, pilot, NOTICE, f"nav:{event}:{version}",
                     f"nav_{event}", NAV_WEBHOOK, NAV, now, None,
                     {"event": event, "occurred_at": now.isoformat(), "kind": f"nav_{event}"},
                     created_at=now)


def rows_for_change(*, case_id: uuid.UUID, pilot: str, version: int, before: str,
                    after: str, consents: Collection[tuple[str, str]],
                    now: datetime) -> list[OutboxRow]:
    """Zero or one row: the event of ``before`` → ``after``, when consent covers Nav."""
    event = event_for(before, after)
    if event is None or not covered(consents):
        return []
    return [row(case_id=case_id, pilot=pilot, version=version, event=event, now=now)]
