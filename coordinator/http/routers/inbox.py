"""``GET /api/v1/me/inbox``: the caller's in-app messages (reminders, invitations).

Messages are addressed to an actor id and carry no health content (only a link into the
app), so the caller reads exactly the messages addressed to their token's subject. The
inbox is read through an ``InboxReader`` (``create_app(inbox=...)``, by default the SQL
outbox store); without one the answer is 503.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from coordinator.http.auth import CurrentActor
from coordinator.http.pagination import DEFAULT_LIMIT, Limit, Offset, next_url
from coordinator.http.routers._problems import problems
from coordinator.ports import InboxReader

router = APIRouter(prefix="/api/v1", tags=["me"])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InboxMessageRead(_Model):
    id: UUID
    case_id: UUID | None
    subject: str
    body: str
    link: str
    created_at: datetime


class InboxPage(_Model):
    items: list[InboxMessageRead]
    limit: int
    offset: int
    next: str | None


def _reader(request: Request) -> InboxReader:
    reader: InboxReader | None = getattr(request.app.state, "inbox", None)
    if reader is None:
        raise HTTPException(503, "The in-app inbox is not configured on this server.")
    return reader


@router.get("/me/inbox", response_model=InboxPage, responses=problems())
def my_inbox(actor: CurrentActor, request: Request, limit: Limit = DEFAULT_LIMIT,
             offset: Offset = 0) -> InboxPage:
    """The caller's in-app messages, newest first."""
    found = _reader(request).messages_for(actor.id, limit=limit + 1, offset=offset)
    more = len(found) > limit
    return InboxPage(
        items=[InboxMessageRead(id=m.id, case_id=m.case_id, subject=m.subject, body=m.body,
                                link=m.link, created_at=m.created_at) for m in found[:limit]],
        limit=limit, offset=offset,
        next=next_url(request, offset=offset + limit) if more else None)
