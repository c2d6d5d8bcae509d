"""Audit events for what the use cases do (pure): case changes, consent changes, reads,
disclosures, emergency access and denials. The unit of work turns every case event and
consent record into one of these on commit, so no change can skip the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from coordinator.audit.events import (
    ACCESS_DENIED,
    CASE_PREFIX,
    CONSENT_GRANTED,
    CONSENT_WITHDRAWN,
    AuditEvent,
)
from coordinator.cases.model import Actor, CaseEvent
from coordinator.consent.model import ConsentRecord


def for_case_event(e: CaseEvent, person_key: str | None) -> AuditEvent:
    data: dict[str, Any] = {"from": e.from_state, "to": e.to_state, "trigger": e.trigger,
                            "workflow": [e.workflow_key, e.workflow_version]}
    if e.kind in ("member_added", "migrated"):
        data.update({k: v for k, v in e.data.items() if isinstance(v, str | int)})
    return AuditEvent(CASE_PREFIX + e.kind, e.occurred_at, e.actor_id, e.actor_role,
                      case_id=e.case_id, actor_org=e.actor_org, person_key=person_key,
                      data=data)


def for_consent(r: ConsentRecord, person_key: str | None) -> AuditEvent:
    kind = CONSENT_GRANTED if r.kind == "grant" else CONSENT_WITHDRAWN
    data: dict[str, Any] = {
        "purposes": sorted(r.purposes), "categories": sorted(r.categories),
        "parties": sorted(r.parties), "method": r.method, "form": r.form_version,
        "form_digest": r.form_digest, "given_by": r.given_by, "channel": r.channel,
        "valid_from": r.valid_from, "valid_to": r.valid_to}
    return AuditEvent(kind, r.recorded_at, r.recorded_by, r.recorded_role, case_id=r.case_id,
                      actor_org=r.recorded_org, person_key=person_key, consent_id=r.id,
                      data={k: v for k, v in data.items() if v is not None})


def access(kind: str, actor: Actor, now: datetime, *, case_id: UUID | None,
           person_key: str | None = None, purpose: str | None = None,
           category: str | None = None, audience: str | None = None,
           consent_id: UUID | None = None, outcome: str = "ok",
           data: Mapping[str, Any] | None = None) -> AuditEvent:
    return AuditEvent(kind, now, actor.id, actor.role, case_id=case_id, actor_org=actor.org,
                      person_key=person_key, purpose=purpose, category=category,
                      audience=audience, consent_id=consent_id, outcome=outcome,
                      data=dict(data or {}))


def denied(actor: Actor, now: datetime, *, action: str, code: str, case_id: UUID | None,
           person_key: str | None = None, purpose: str | None = None,
           category: str | None = None, audience: str | None = None) -> AuditEvent:
    return access(ACCESS_DENIED, actor, now, case_id=case_id, person_key=person_key,
                  purpose=purpose, category=category, audience=audience, outcome="denied",
                  data={"action": action, "code": code})
