"""Outbox rows and outgoing messages. Pure data.

An outbox row is one message to one recipient on one channel, written in the same
transaction as the case change that causes it. ``source`` tells planned reminders
(``rule``: replaced whenever the case is planned again) from one-off notices
(``notice``: meeting invitations and cancellations).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

PENDING, CLAIMED, SENT, DEAD, CANCELLED = "pending", "claimed", "sent", "dead", "cancelled"
RULE, NOTICE = "rule", "notice"
EMAIL, INAPP = "email", "inapp"
NAV_WEBHOOK = "nav_webhook"     # outbound events to Nav (docs/referrals.md); recipient "nav"
CHANNELS = (EMAIL, INAPP, NAV_WEBHOOK)


@dataclass(frozen=True)
class OutboxRow:
    id: UUID
    case_id: UUID | None
    pilot: str
    source: str
    key: str
    kind: str
    channel: str
    recipient: str            # actor id
    due_at: datetime
    meeting_id: UUID | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    status: str = PENDING
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class CalendarInvite:
    """An iCalendar VEVENT: REQUEST for a (re)scheduled meeting, CANCEL for a cancelled one."""

    uid: str
    sequence: int
    starts_at: datetime
    ends_at: datetime
    method: str               # REQUEST, CANCEL
    summary: str
    url: str


@dataclass(frozen=True)
class OutgoingMessage:
    """What a notifier delivers. ``id`` is the outbox id: the e-mail Message-ID and the
    idempotency key of every channel."""

    id: UUID
    channel: str
    recipient: str
    subject: str
    body: str
    link: str
    case_id: UUID | None = None
    invite: CalendarInvite | None = None


@dataclass(frozen=True)
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    lost_claims: int = 0      # sent, but another worker had taken the row over meanwhile


@dataclass(frozen=True)
class InboxItem:
    """One message in a user's in-app inbox."""

    id: UUID
    recipient: str
    case_id: UUID | None
    subject: str
    body: str
    link: str
    created_at: datetime
