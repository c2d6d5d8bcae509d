"""Consent log, the person's access log and the audit verification status.

Thin: authorisation lives in the library (a foreign case is 404, a caller without the
permission 403, and every refusal is audited there). The person (``bruker``) sees their
own case's logs; auditors see every case's logs and the verification status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from coordinator.http.auth import CurrentActor
from coordinator.http.deps import CoordinatorDep
from coordinator.http.pagination import DEFAULT_LIMIT, Limit, Offset, next_url
from coordinator.http.routers._problems import problems

router = APIRouter(prefix="/api/v1", tags=["consent and audit"])
_PROBLEMS = problems(403, 404)         # 422 (a malformed id) is problem+json too


class _Read(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccessLogEntryRead(_Read):
    at: datetime
    actor_id: str
    actor_role: str
    actor_org: str | None
    action: str = Field(description="read, shared, emergency or viewed")
    purpose: str | None
    category: str | None
    audience: str | None
    consent_id: UUID | None
    basis: str | None
    categories: list[str] = Field(default_factory=list,
                                  description="Every category the access covered (a case "
                                              "page or history read lists several)")


class AccessLogPage(_Read):
    items: list[AccessLogEntryRead]
    total: int
    limit: int
    offset: int
    next: str | None


class AuditProblemRead(_Read):
    where: str
    code: str
    message: str


class AuditStatusRead(_Read):
    intact: bool
    events: int
    streams: int
    checkpoints: int
    first_problem: AuditProblemRead | None


@router.get("/cases/{case_id}/access-log", response_model=AccessLogPage,
            responses=_PROBLEMS)
def access_log(case_id: UUID, actor: CurrentActor, coordinator: CoordinatorDep,
               request: Request, limit: Limit = DEFAULT_LIMIT,
               offset: Offset = 0) -> AccessLogPage:
    """Who read, received or viewed the case's data, when, why and on which consent
    (pasientjournalloven § 18): for the person themself and for auditors. Oldest first,
    one page at a time (``next`` is the following page)."""
    entries = coordinator.access_log(case_id, actor=actor)
    more = offset + limit < len(entries)
    return AccessLogPage(
        items=[AccessLogEntryRead(**e.__dict__) for e in entries[offset:offset + limit]],
        total=len(entries), limit=limit, offset=offset,
        next=next_url(request, offset=offset + limit) if more else None)


@router.get("/audit/verify", response_model=AuditStatusRead,
            responses=_PROBLEMS)
def audit_status(actor: CurrentActor, coordinator: CoordinatorDep,
                 case_id: Annotated[UUID | None, Query()] = None) -> AuditStatusRead:
    """Verify the audit trail (or one case's chain) now: auditors only."""
    report = coordinator.verify_audit(case_id=case_id, actor=actor)
    first = report.first
    return AuditStatusRead(
        intact=report.ok, events=report.events, streams=report.streams,
        checkpoints=report.checkpoints,
        first_problem=None if first is None else AuditProblemRead(
            where=first.where, code=first.code, message=first.message))
