"""Outcome measures as FHIR R4B Observations (checked by fhir.resources)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.observation import Observation

from coordinator.intake import measures
from coordinator.intake.model import MeasureRecord

LOINC = "http://loinc.org"
BAND_SYSTEM = "urn:coordinator:severity-band"
WORK_STATUS_SYSTEM = "urn:coordinator:work-status"
PHASE_SYSTEM = "urn:coordinator:measure-phase"


def observation(record: MeasureRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation", "id": str(record.id), "status": "final",
        "subject": {"reference": f"urn:coordinator:case:{record.case_id}",
                    "display": "saken"},
        "effectiveDateTime": record.recorded_at.isoformat(),
        "issued": record.recorded_at.isoformat(),
        "performer": [{"display": record.recorded_role}],
        "extension": [{"url": PHASE_SYSTEM, "valueCode": record.phase}],
    }
    spec = measures.INSTRUMENTS.get(record.instrument)
    if spec is not None:
        body["code"] = {"coding": [{"system": LOINC, "code": spec.loinc_total,
                                    "display": f"{spec.title} total score"}],
                        "text": spec.title}
        body["valueInteger"] = record.total
        body["interpretation"] = [{"coding": [{"system": BAND_SYSTEM, "code": record.band}]}]
        body["component"] = [{"code": {"text": f"{spec.title} item {n}"}, "valueInteger": v}
                             for n, v in enumerate(record.items, start=1)]
    else:
        body["code"] = {"coding": [{"system": WORK_STATUS_SYSTEM, "code": "work-status"}],
                        "text": "Arbeidsstatus"}
        body["valueCodeableConcept"] = {"coding": [{"system": WORK_STATUS_SYSTEM,
                                                    "code": record.value}]}
    Observation.model_validate(body)
    return body


def search_bundle(records: list[MeasureRecord]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(records),
            "entry": [{"fullUrl": f"urn:uuid:{r.id}", "resource": observation(r)}
                      for r in records]}
