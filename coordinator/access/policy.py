"""Roles, case relations and the permission table: need-to-know as data (pure, no I/O).

A user reaches a case in one of three ways (``Relation``): as a ``MEMBER`` of its team (the
referrer becomes one when the case is opened; others are added with ``add_member``), as the
person the case is about (``OWN``: role ``bruker`` and the case's pseudonymous subject id),
or not at all (``FOREIGN``). ``NONE`` is for acts that concern no existing case (opening one,
listing all, aggregates). ``decide`` looks the triple up in ``TABLE`` and fails closed: an
unknown role, permission or relation, or a pair the table does not list, is denied.

Role rules that reach foreign cases are few and audited by the caller: the ``auditor`` sees
metadata and logs of any case but never its content; the ``prosjektleder`` sees aggregates
only; the ``system`` role (CLI, migrations, demo loader, scheduler) may do everything and is
recorded as such in every event it causes.

Sides: Nav roles are ``nav_veileder``, ``syfo_veileder`` and ``jobbspesialist``; health roles
are ``kognitiv_terapeut``, ``rph_behandler`` and ``fastlege``. The ``brobygger`` belongs to
both sides (in Bjerke the brobygger works in both Nav's and the health service's systems,
004:215-231). Sides do not widen or narrow this table: health-only categories are filtered
for Nav roles by the consent policy, which uses ``SIDES``. ``syfo_veileder`` is not in the
issue's list but acts in Fredrikstad's workflow, so it is a Nav team role like
``nav_veileder``; ``arbeidsgiver`` only attends meetings and has no access at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Permission(StrEnum):
    OPEN_CASE = "open_case"               # refer a person (relation NONE, or OWN for bruker)
    VIEW_METADATA = "view_metadata"       # the case exists: state, versions, deadlines
    VIEW_CASE = "view_case"               # content: record, plan, actions, event arguments
    VIEW_HISTORY = "view_history"         # the event log (content only with VIEW_CASE)
    ADVANCE_CASE = "advance_case"         # fire a workflow trigger
    WITHDRAW_CASE = "withdraw_case"       # fire "withdraw" (the person's own choice)
    MANAGE_TEAM = "manage_team"           # add team members
    MANAGE_CONSENT = "manage_consent"     # record a grant or a withdrawal
    VIEW_CONSENT_LOG = "view_consent_log"
    VIEW_ACCESS_LOG = "view_access_log"
    LIST_CASES = "list_cases"             # every case's metadata (relation NONE)
    VIEW_AGGREGATES = "view_aggregates"   # counts only (relation NONE)
    OVERSEE_REMINDERS = "oversee_reminders"   # overdue cases and dead letters, ids only (NONE)
    SHARE_DATA = "share_data"             # disclose a data category to a party (consent-gated)
    AUDIT = "audit"                       # verify chains, extracts, pilot consent logs (NONE)


class Relation(StrEnum):
    MEMBER = "member"
    OWN = "own"
    FOREIGN = "foreign"
    NONE = "none"


SYSTEM_ROLE = "system"
BRUKER = "bruker"
NAV_ROLES = frozenset({"nav_veileder", "syfo_veileder", "jobbspesialist", "brobygger"})
HEALTH_ROLES = frozenset({"kognitiv_terapeut", "rph_behandler", "fastlege", "brobygger"})
TEAM_ROLES = NAV_ROLES | HEALTH_ROLES          # the roles a case team can hold
ROLES = TEAM_ROLES | {"prosjektleder", "auditor", BRUKER, SYSTEM_ROLE}
SIDES: Mapping[str, frozenset[str]] = {
    r: frozenset(s for s, roles in (("nav", NAV_ROLES), ("health", HEALTH_ROLES)) if r in roles)
    for r in TEAM_ROLES}
REFERRER_ROLES = frozenset({"nav_veileder", "syfo_veileder", "brobygger", "kognitiv_terapeut",
                            "rph_behandler", "fastlege"})

P, R = Permission, Relation
_ANY_CASE = frozenset({R.MEMBER, R.OWN, R.FOREIGN})
_MEMBER = frozenset({R.MEMBER})
_TEAM_WORK = dict.fromkeys((P.VIEW_METADATA, P.VIEW_CASE, P.VIEW_HISTORY, P.ADVANCE_CASE,
                            P.WITHDRAW_CASE, P.MANAGE_TEAM, P.MANAGE_CONSENT,
                            P.VIEW_CONSENT_LOG, P.SHARE_DATA), _MEMBER)


def _team_role(role: str) -> dict[Permission, frozenset[Relation]]:
    return {**_TEAM_WORK, **({P.OPEN_CASE: frozenset({R.NONE})} if role in REFERRER_ROLES
                             else {})}


TABLE: Mapping[str, Mapping[Permission, frozenset[Relation]]] = {
    **{role: _team_role(role) for role in TEAM_ROLES},
    BRUKER: {p: frozenset({R.OWN}) for p in (
        P.OPEN_CASE, P.VIEW_METADATA, P.VIEW_CASE, P.VIEW_HISTORY, P.WITHDRAW_CASE,
        P.MANAGE_CONSENT, P.VIEW_CONSENT_LOG, P.VIEW_ACCESS_LOG)},
    "auditor": {**dict.fromkeys((P.VIEW_METADATA, P.VIEW_HISTORY, P.VIEW_CONSENT_LOG,
                                 P.VIEW_ACCESS_LOG), _ANY_CASE),
                P.LIST_CASES: frozenset({R.NONE}), P.VIEW_AGGREGATES: frozenset({R.NONE}),
                P.AUDIT: frozenset({R.NONE})},
    "prosjektleder": {P.VIEW_AGGREGATES: frozenset({R.NONE}),
                      P.OVERSEE_REMINDERS: frozenset({R.NONE})},
    SYSTEM_ROLE: {p: frozenset(Relation) for p in Permission},
}


class Principal(Protocol):
    """Anyone acting: ``cases.model.Actor`` fits."""

    @property
    def id(self) -> str: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def decide(actor: Principal, permission: Permission | str,
           relation: Relation | str) -> Decision:
    """Whether ``actor`` may do ``permission`` on a case it stands in ``relation`` to."""
    try:
        perm, rel = Permission(permission), Relation(relation)
    except ValueError:
        return Decision(False, f"unknown permission {permission!r} or relation {relation!r}")
    grants = TABLE.get(actor.role)
    if grants is None:
        return Decision(False, f"unknown role {actor.role!r}")
    if rel in grants.get(perm, frozenset()):
        return Decision(True, f"{actor.role} may {perm} ({rel})")
    return Decision(False, f"{actor.role} may not {perm} ({rel})")


def relation_of(actor: Principal, subject_id: str | None,
                team: Iterable[tuple[str, str]]) -> Relation:
    """How ``actor`` stands to a case about ``subject_id`` whose team is (actor id, role)
    pairs. Membership counts only in the role it was granted for; only a ``bruker`` owns."""
    if actor.role == BRUKER:
        return Relation.OWN if subject_id is not None and subject_id == actor.id \
            else Relation.FOREIGN
    if (actor.id, actor.role) in set(team):
        return Relation.MEMBER
    return Relation.FOREIGN


def trigger_permission(trigger: str) -> Permission:
    """Firing ``withdraw`` is the person's own choice; every other trigger advances."""
    return Permission.WITHDRAW_CASE if trigger == "withdraw" else Permission.ADVANCE_CASE
