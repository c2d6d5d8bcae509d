"""Consent on a case: the log, a grant, a withdrawal.

Records are never changed: a withdrawal is a record of its own that removes the scopes it
lists from every earlier grant. Who may do what is the core's decision (team members and
the person themself record; the auditor reads the log of any case).
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, status

from coordinator.cases.commands import GrantConsent, WithdrawConsent
from coordinator.http.auth import CurrentActor
from coordinator.http.case_schemas import ConsentPage, ConsentRead, ConsentWrite, WithdrawalWrite
from coordinator.http.deps import CoordinatorDep
from coordinator.http.pagination import DEFAULT_LIMIT, Limit, Offset, next_url
from coordinator.http.routers._problems import problems

router = APIRouter(prefix="/api/v1/cases/{case_id}/consents", tags=["consent"])


@router.get("", response_model=ConsentPage, responses=problems(403, 404))
def consent_log(case_id: UUID, actor: CurrentActor, coordinator: CoordinatorDep,
                request: Request, limit: Limit = DEFAULT_LIMIT,
                offset: Offset = 0) -> ConsentPage:
    """Every consent record of the case, oldest first."""
    records = sorted(coordinator.consent_log(case_id, actor=actor),
                     key=lambda r: (r.recorded_at, str(r.id)))
    page = records[offset:offset + limit]
    more = offset + limit < len(records)
    return ConsentPage(items=[ConsentRead.of(r) for r in page], total=len(records),
                       limit=limit, offset=offset,
                       next=next_url(request, offset=offset + limit) if more else None)


@router.post("", response_model=ConsentRead, status_code=status.HTTP_201_CREATED,
             responses=problems(403, 404, body=True))
def grant(case_id: UUID, body: ConsentWrite, actor: CurrentActor,
          coordinator: CoordinatorDep) -> ConsentRead:
    """Record a consent the person gave (how: ``method``; which form: ``form_version``)."""
    return ConsentRead.of(coordinator.grant_consent(GrantConsent(
        case_id, actor, frozenset(body.purposes), frozenset(body.categories),
        frozenset(body.parties), body.method, body.form_version, body.valid_to)))


@router.post("/withdrawals", response_model=ConsentRead, status_code=status.HTTP_201_CREATED,
             responses=problems(403, 404, body=True))
def withdraw(case_id: UUID, body: WithdrawalWrite, actor: CurrentActor,
             coordinator: CoordinatorDep) -> ConsentRead:
    """Record that the person withdrew consent for the listed scopes."""
    return ConsentRead.of(coordinator.withdraw_consent(WithdrawConsent(
        case_id, actor, frozenset(body.purposes), frozenset(body.categories),
        frozenset(body.parties), body.method)))
