"""Need-to-know enforcement for the use cases: the policy's decisions turned into errors.

``authorize`` is the one gate every case operation passes: an actor who may not even see
the case gets ``NotCaseMember`` (indistinguishable from a missing case), one who may see it
but not do this gets ``PermissionDenied``. Checks run before anything else reads or writes
the case, so a refusal writes nothing and reveals nothing about the case's state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING
from uuid import UUID

from coordinator.access.policy import (
    TEAM_ROLES,
    Permission,
    Relation,
    decide,
    relation_of,
)
from coordinator.cases.model import Actor, Case, CaseEvent, Member
from coordinator.errors import InvalidInput, NotCaseMember, PermissionDenied

if TYPE_CHECKING:
    from coordinator.ports import UnitOfWork


def require(actor: Actor, permission: Permission, relation: Relation = Relation.NONE) -> None:
    """Raises: PermissionDenied."""
    decision = decide(actor, permission, relation)
    if not decision.allowed:
        raise PermissionDenied(decision.reason, permission=str(permission), role=actor.role)


def relation(actor: Actor, case: Case, team: Iterable[Member]) -> Relation:
    return relation_of(actor, case.subject_id, ((m.actor_id, m.role) for m in team))


def authorize(uow: UnitOfWork, actor: Actor, case: Case, permission: Permission) -> Relation:
    """Raises: NotCaseMember (may not see the case at all), PermissionDenied."""
    rel = relation(actor, case, uow.members.for_case(case.id))
    if not decide(actor, Permission.VIEW_METADATA, rel).allowed:
        raise NotCaseMember(case.id)
    require(actor, permission, rel)
    return rel


def may(actor: Actor, permission: Permission, rel: Relation) -> bool:
    return decide(actor, permission, rel).allowed


def without_content(events: Sequence[CaseEvent]) -> list[CaseEvent]:
    """Metadata of the history: who did what when, not why nor with which arguments."""
    return [replace(e, reason=None, data={}) for e in events]


def check_team_role(actor_id: str, role: str) -> None:
    if role not in TEAM_ROLES:
        raise InvalidInput(f"{role!r} is not a case team role; team roles are "
                           f"{', '.join(sorted(TEAM_ROLES))}", field="role")
    if not actor_id.strip():
        raise InvalidInput("a team member needs an id", field="actor_id")


def initial_team(opener: Actor, team: Iterable[Actor]) -> list[Actor]:
    """The opener (when a team role) and the named team, each actor once.

    Raises: InvalidInput (a non-team role, or one actor named in two roles)."""
    roles: dict[str, str] = {}
    for a in ([opener] if opener.role in TEAM_ROLES else []) + list(team):
        check_team_role(a.id, a.role)
        if roles.setdefault(a.id, a.role) != a.role:
            raise InvalidInput(f"{a.id} is named in two roles", field="team")
    return [Actor(actor_id, role) for actor_id, role in roles.items()]


def members_of(case_id: UUID, actors: Iterable[Actor], by: Actor, case: Case) -> list[Member]:
    return [Member(case_id, a.id, a.role, case.referred_at, by.id) for a in actors]
