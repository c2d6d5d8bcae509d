"""Aggregates for project management (prosjektleder, auditor): counts, never cases.

Counts of 1 to 4 cases are suppressed (``count`` null), so that a small pilot's cell
cannot single out a person.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request

from coordinator.http.auth import CurrentActor
from coordinator.http.case_schemas import CaseCountRead, CaseStatsRead
from coordinator.http.deps import CoordinatorDep
from coordinator.http.pagination import DEFAULT_LIMIT, Limit, Offset, next_url
from coordinator.http.routers._problems import problems

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])
SMALL_CELL = 5


@router.get("/cases", response_model=CaseStatsRead, responses=problems(403))
def case_counts(actor: CurrentActor, coordinator: CoordinatorDep, request: Request,
                by: Literal["pilot", "state", "pilot_state"] = "pilot",
                limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> CaseStatsRead:
    """How many cases there are per pilot, per state or per pilot and state (``by``),
    ordered by pilot and state."""
    grouped: dict[tuple[str | None, str | None], int] = {}
    for (pilot, state), n in coordinator.case_counts(actor=actor).items():
        key = (pilot if by != "state" else None, state if by != "pilot" else None)
        grouped[key] = grouped.get(key, 0) + n
    counts = sorted(grouped.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or ""))
    page = counts[offset:offset + limit]
    more = offset + limit < len(counts)
    return CaseStatsRead(
        total=sum(n for _, n in counts if n >= SMALL_CELL),
        items=[CaseCountRead(pilot=p, state=s, count=n if n >= SMALL_CELL else None)
               for (p, s), n in page],
        limit=limit, offset=offset,
        next=next_url(request, offset=offset + limit) if more else None)
