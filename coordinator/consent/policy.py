"""Which consent scopes are live at a moment, and whether one request is covered.

Pure; fails closed: an unknown purpose, category or party, or a record of unknown kind,
covers nothing. A withdrawal takes effect from the moment it is recorded, for every
request decided at or after that moment (nothing is cached across decisions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from coordinator.consent.model import CATEGORIES, PARTIES, PURPOSES, ConsentRecord

Scope = tuple[str, str, str]     # (purpose, category, party)


def _ordered(records: Iterable[ConsentRecord]) -> list[ConsentRecord]:
    return sorted(records, key=lambda r: (r.recorded_at, r.kind != "grant"))


def live_grants(records: Iterable[ConsentRecord], now: datetime) -> dict[Scope, UUID]:
    """Each live scope and the grant that gives it (the latest grant covering it)."""
    live: dict[Scope, UUID] = {}
    for r in _ordered(records):
        if r.recorded_at > now:
            continue
        if r.kind == "withdrawal":
            for scope in r.scopes():
                live.pop(scope, None)
        elif r.kind == "grant" and r.valid_from <= now and (r.valid_to is None
                                                             or now < r.valid_to):
            for scope in r.scopes():
                live[scope] = r.id
    return live


def live_scopes(records: Iterable[ConsentRecord], now: datetime) -> frozenset[Scope]:
    """Scopes granted, in force at ``now``, and not withdrawn by a record made by ``now``."""
    return frozenset(live_grants(records, now))


def purposes_by_party(scopes: Iterable[Scope]) -> frozenset[tuple[str, str]]:
    """(purpose, party) pairs covered for at least one category: what workflow guards see."""
    return frozenset((p, a) for p, _c, a in scopes)


@dataclass(frozen=True)
class ConsentDecision:
    allowed: bool
    reason: str
    consent_id: UUID | None = None

    def __bool__(self) -> bool:
        return self.allowed


def decide(records: Iterable[ConsentRecord], *, purpose: str, category: str, party: str,
           now: datetime) -> ConsentDecision:
    """Whether a live consent covers ``(purpose, category, party)`` at ``now``."""
    if purpose not in PURPOSES or category not in CATEGORIES or party not in PARTIES:
        return ConsentDecision(False, f"unknown scope ({purpose}, {category}, {party})")
    try:
        grant = live_grants(records, now).get((purpose, category, party))
    except Exception as exc:        # fail closed (ASVS 16.5.3): a policy error is a denial
        return ConsentDecision(False, f"consent policy error: {type(exc).__name__}")
    if grant is None:
        return ConsentDecision(False, f"no live consent covers {purpose}/{category} "
                                      f"for {party}")
    return ConsentDecision(True, f"consent {grant} covers {purpose}/{category} for {party}",
                           grant)
