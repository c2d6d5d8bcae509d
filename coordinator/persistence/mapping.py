"""Imperative mapping of the domain classes onto the Core tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import registry

from coordinator.cases.model import Case
from coordinator.persistence.tables import cases

mapper_registry = registry()
_mapped = False


def _init_events(target: Case, _context: Any) -> None:
    target.events = []


def start_mappers() -> None:
    """Map once per process; safe to call again."""
    global _mapped
    if _mapped:
        return
    mapper_registry.map_imperatively(
        Case, cases, version_id_col=cases.c.version,
        exclude_properties=["events"],
    )
    event.listen(Case, "load", _init_events)
    _mapped = True
