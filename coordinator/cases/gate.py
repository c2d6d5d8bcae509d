"""The one enforcement point for reading and sharing case data (pure).

``check(actor, relation, purpose, category, audience, consents, now)`` combines the
need-to-know table (``access.policy``: case membership and role) with the live consents
(``consent.policy``). Every read or disclosure of a data category goes through it; the
caller audits the verdict either way. Rules, in order (first match wins, fail closed):

1. The actor must hold the permission on the case (``VIEW_CASE`` to read, ``SHARE_DATA``
   to disclose): a non-member, the auditor and the prosjektleder never get data.
2. The person (``bruker``) reads their own case's data without consent.
3. Roles with no party (system, auditor, prosjektleder) get no data.
4. A read of a category that belongs to the reader's own side (health data by a health
   role, Nav data by a Nav role) needs no consent. Across sides it needs a live consent
   for (purpose, category, the reader's party). The brobygger counts as Nav.
5. A disclosure to the actor's own party needs no consent; to any other party it needs a
   live consent for (purpose, category, audience).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from coordinator.access.policy import BRUKER, HEALTH_ROLES, NAV_ROLES, Permission, decide
from coordinator.cases.model import Actor
from coordinator.consent import policy as consent_policy
from coordinator.consent.model import HEALTH_CATEGORIES, ROLE_PARTY, ConsentRecord
from coordinator.errors import ConsentRequired, PermissionDenied

READ = "read"
SHARE = "share"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    basis: str              # own, same_side, consent; or the denial code
    reason: str
    consent_id: UUID | None = None

    def __bool__(self) -> bool:
        return self.allowed


def side_of_role(role: str) -> str | None:
    if role in NAV_ROLES:          # the brobygger counts as Nav: fail closed
        return "nav"
    return "health" if role in HEALTH_ROLES else None


def side_of_category(category: str) -> str:
    return "health" if category in HEALTH_CATEGORIES else "nav"


def check(actor: Actor, relation: str, *, action: str, purpose: str, category: str,
          audience: str | None, consents: Iterable[ConsentRecord], now: datetime) -> Verdict:
    permission = Permission.VIEW_CASE if action == READ else Permission.SHARE_DATA
    access = decide(actor, permission, relation)
    if not access.allowed:
        return Verdict(False, "permission", access.reason)
    if actor.role == BRUKER and action == READ:
        return Verdict(True, "own", "the person's own case")
    party = ROLE_PARTY.get(actor.role)
    if party is None:
        return Verdict(False, "no-party", f"{actor.role} receives no case data")
    if action == READ:
        if side_of_role(actor.role) == side_of_category(category):
            return Verdict(True, "same_side", f"{category} stays on the {party} side")
        target = party
    else:
        if audience is None or audience == party:
            return Verdict(True, "same_side", f"{category} stays with {party}")
        target = audience
    decision = consent_policy.decide(consents, purpose=purpose, category=category,
                                     party=target, now=now)
    if not decision.allowed:
        return Verdict(False, "consent", decision.reason)
    return Verdict(True, "consent", decision.reason, decision.consent_id)


def enforce(actor: Actor, relation: str, *, action: str, purpose: str, category: str,
            audience: str | None, consents: Iterable[ConsentRecord],
            now: datetime) -> Verdict:
    """``check``, raising a denial: ConsentRequired when a consent is missing,
    PermissionDenied otherwise. Returns the granting verdict."""
    verdict = check(actor, relation, action=action, purpose=purpose, category=category,
                    audience=audience, consents=consents, now=now)
    if not verdict.allowed:
        error = ConsentRequired if verdict.basis == "consent" else PermissionDenied
        raise error(verdict.reason, permission=action, role=actor.role)
    return verdict


def may_break_glass(actor: Actor) -> bool:
    """Emergency access: health roles only, never a role that is (also) on the Nav side."""
    return actor.role in HEALTH_ROLES and actor.role not in NAV_ROLES
