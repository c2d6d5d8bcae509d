"""Meetings on a case: scheduled, rescheduled, cancelled or held. Pure data.

A meeting invites participants by role; when held it records which roles attended, and
the workflow's guards see those attendees (``hold_get_to_know`` and friends).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from coordinator.errors import InvalidInput, MeetingClosed
from coordinator.workflows.definition import ROLES

# Meeting kinds and their bokmål names (shown in the app, never in e-mail).
MEETING_KINDS = {
    "get_to_know": "bli kjent-samtale",
    "intake": "inntaksmøte",
    "follow_up": "oppfølgingsmøte",
    "employer": "arbeidsgivermøte",
    "closing": "avslutningssamtale",
    "gp_update": "oppdatering til fastlegen",
    "gp_appointment": "fastlegetime med Nav-veileder",
    "course": "kurssamling",
}

# Holding a meeting of this kind fires this trigger when the pilot's workflow has it, so the
# transition's guards (``attended`` …) judge the recorded attendees.
HELD_TRIGGERS = {
    "get_to_know": "hold_get_to_know",
    "gp_update": "update_gp",
    "gp_appointment": "join_gp_appointment",
    "course": "attend_course",
}

SCHEDULED, CANCELLED, HELD = "scheduled", "cancelled", "held"
MAX_LENGTH = timedelta(hours=8)


@dataclass(frozen=True)
class Meeting:
    id: UUID
    case_id: UUID
    kind: str
    starts_at: datetime
    ends_at: datetime
    participants: tuple[str, ...]          # roles invited
    status: str = SCHEDULED
    sequence: int = 0                      # iCalendar SEQUENCE: bumped by every change
    attendees: tuple[str, ...] | None = None
    created_at: datetime | None = None
    created_by: str = ""
    updated_at: datetime | None = None

    @classmethod
    def new(cls, meeting_id: UUID, case_id: UUID, kind: str, starts_at: datetime,
            ends_at: datetime, participants: tuple[str, ...], *, by: str,
            now: datetime) -> Meeting:
        """Raises: InvalidInput."""
        if kind not in MEETING_KINDS:
            raise InvalidInput(f"unknown meeting kind {kind!r}; known: "
                               f"{', '.join(MEETING_KINDS)}", field="kind")
        check_roles(participants, "participants")
        check_times(starts_at, ends_at, now)
        return cls(meeting_id, case_id, kind, starts_at, ends_at,
                   tuple(sorted(set(participants))), created_at=now, created_by=by,
                   updated_at=now)

    def _open(self) -> None:
        if self.status != SCHEDULED:
            raise MeetingClosed(f"the meeting is {self.status}", meeting_id=str(self.id),
                                status=self.status)

    def rescheduled(self, starts_at: datetime, ends_at: datetime, now: datetime) -> Meeting:
        """Raises: MeetingClosed, InvalidInput."""
        self._open()
        check_times(starts_at, ends_at, now)
        return replace(self, starts_at=starts_at, ends_at=ends_at,
                       sequence=self.sequence + 1, updated_at=now)

    def cancelled(self, now: datetime) -> Meeting:
        """Raises: MeetingClosed."""
        self._open()
        return replace(self, status=CANCELLED, sequence=self.sequence + 1, updated_at=now)

    def held(self, attendees: tuple[str, ...], now: datetime) -> Meeting:
        """Raises: MeetingClosed, InvalidInput."""
        self._open()
        check_roles(attendees, "attendees", allow_empty=False)
        return replace(self, status=HELD, attendees=tuple(sorted(set(attendees))),
                       updated_at=now)


def check_roles(roles: tuple[str, ...], name: str, *, allow_empty: bool = False) -> None:
    if not roles and not allow_empty:
        raise InvalidInput(f"{name} must name at least one role", field=name)
    unknown = sorted(set(roles) - ROLES)
    if unknown:
        raise InvalidInput(f"unknown roles in {name}: {', '.join(unknown)}", field=name)


def check_times(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise InvalidInput("meeting times need a time zone", field="starts_at")
    if starts_at <= now:
        raise InvalidInput("a meeting must start in the future", field="starts_at")
    if not starts_at < ends_at <= starts_at + MAX_LENGTH:
        raise InvalidInput("a meeting must end after it starts, within 8 hours",
                           field="ends_at")
