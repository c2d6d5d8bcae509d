"""Which consent scopes are live at a moment. Pure; fails closed on anything unknown."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from coordinator.consent.model import ConsentRecord

Scope = tuple[str, str, str]     # (purpose, category, party)


def live_scopes(records: Iterable[ConsentRecord], now: datetime) -> frozenset[Scope]:
    """Scopes granted, in force at ``now``, and not withdrawn by a record made by ``now``."""
    live: set[Scope] = set()
    for r in sorted(records, key=lambda r: (r.recorded_at, r.kind != "grant")):
        if r.recorded_at > now:
            continue
        scopes = {(p, c, a) for p in r.purposes for c in r.categories for a in r.parties}
        if r.kind == "withdrawal":
            live -= scopes
        elif r.kind == "grant" and r.valid_from <= now and (r.valid_to is None or now < r.valid_to):
            live |= scopes
    return frozenset(live)


def purposes_by_party(scopes: Iterable[Scope]) -> frozenset[tuple[str, str]]:
    """(purpose, party) pairs covered for at least one category: what workflow guards see."""
    return frozenset((p, a) for p, _c, a in scopes)
