"""``GET /api/v1/me``: who the bearer token says the caller is."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from coordinator.http.auth import AUTH_RESPONSES, CurrentPrincipal

router = APIRouter(prefix="/api/v1", tags=["me"])


class MeRead(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sub: str = Field(description="The token's subject")
    role: str
    org: str | None = Field(default=None, description="Organisation number (9 digits)")
    pilot: str | None = None


@router.get("/me", response_model=MeRead, responses=AUTH_RESPONSES)
def me(principal: CurrentPrincipal) -> MeRead:
    """The authenticated caller: subject, role, organisation and pilot from the token."""
    actor = principal.actor
    return MeRead(sub=actor.id, role=actor.role, org=actor.org, pilot=principal.pilot)
