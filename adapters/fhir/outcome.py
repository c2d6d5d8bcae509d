"""OperationOutcome answers: ``FhirError`` carries HTTP status and issues."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome


@dataclass(frozen=True)
class Issue:
    code: str                  # FHIR issue-type: invalid, structure, required, value, ...
    text: str                  # for the person who sent it (bokmål)
    expression: str | None = None   # FHIRPath of the element, e.g. Bundle.entry[2].resource
    reason: str | None = None       # a stable machine code (diagnostics)
    severity: str = "error"


class FhirError(Exception):
    def __init__(self, status: int, *issues: Issue) -> None:
        super().__init__("; ".join(i.text for i in issues))
        self.status = status
        self.issues = issues


def outcome(*issues: Issue) -> dict[str, Any]:
    """An OperationOutcome as JSON, checked by fhir.resources."""
    body: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": []}
    for i in issues:
        issue: dict[str, Any] = {"severity": i.severity, "code": i.code,
                                 "details": {"text": i.text}}
        if i.expression:
            issue["expression"] = [i.expression]
        if i.reason:
            issue["diagnostics"] = i.reason
        body["issue"].append(issue)
    OperationOutcome.model_validate(body)
    return body
