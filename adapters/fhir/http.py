"""FHIR endpoints: ``POST /fhir/Bundle`` (GP referrals), ``GET /fhir/Observation?case=``,
``GET /fhir/Questionnaire/{id}``. Installed by ``create_app`` from ``Settings.http_extensions``.

Every error here is an OperationOutcome (``application/fhir+json``); only authentication
failures stay problem+json, as everywhere in the API.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from adapters.fhir import jsonbody, observations
from adapters.fhir import questionnaires as q
from adapters.fhir.bundle import parse_referral, request_hash
from adapters.fhir.outcome import FhirError, Issue, outcome
from coordinator.cases.model import Actor
from coordinator.config import Settings
from coordinator.errors import CoordinatorError, NotEligible
from coordinator.http.auth import AUTH_RESPONSES, CurrentActor
from coordinator.http.errors import problem_for
from coordinator.intake.model import IdempotencyKey, ReferralReceipt
from coordinator.intake.service import Intake
from coordinator.service import Coordinator

FHIR_JSON = "application/fhir+json"
ACCEPTED_TYPES = (FHIR_JSON, "application/json")
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_ISSUE_CODE = {403: "forbidden", 404: "not-found", 409: "conflict", 412: "conflict",
               422: "business-rule"}

router = APIRouter(prefix="/fhir", tags=["fhir"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    **{s: {"content": {FHIR_JSON: {}}, "description": d} for s, d in (
        (201, "The referral became a case (or this is a replay of the request that did)"),
        (400, "Not a well-formed referral Bundle (OperationOutcome)"),
        (403, "The caller is not a GP (fastlege)"),
        (409, "A request with this idempotency key is still being processed"),
        (413, "Body larger than 1 MiB"), (415, "Not application/fhir+json"),
        (422, "Invalid identifiers, unknown organisation, not eligible, or an idempotency "
              "key reused with another body"))}}


def fhir_response(body: dict[str, Any], status: int,
                  headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def error_response(exc: FhirError) -> JSONResponse:
    return fhir_response(outcome(*exc.issues), exc.status)


def from_library(exc: CoordinatorError) -> FhirError:
    status = problem_for(exc).status
    if status >= 500:
        raise exc
    if isinstance(exc, NotEligible):
        return FhirError(422, *(Issue("business-rule", f"personen oppfyller ikke pilotens "
                                      f"kriterier: {r}", "Bundle", r) for r in exc.reasons))
    return FhirError(status, Issue(_ISSUE_CODE.get(status, "processing"), exc.message,
                                   None, exc.code))


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes the limit (before any parsing)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > jsonbody.MAX_BYTES:
        raise jsonbody.too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > jsonbody.MAX_BYTES:
            raise jsonbody.too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def receipt_body(r: ReferralReceipt) -> dict[str, Any]:
    text = f"Henvisningen er registrert som sak {r.case_id} i piloten {r.pilot}."
    return outcome(Issue("informational", text, None, f"case:{r.case_id}",
                         severity="information"))


def _content_type_ok(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media in ACCEPTED_TYPES


def _key(request: Request, bundle_key: str | None, actor: Actor, document: Any
         ) -> IdempotencyKey:
    header = request.headers.get("idempotency-key")
    if header is not None:
        value = header.strip().strip('"')
        if not _KEY.match(value):
            raise FhirError(400, Issue("value", "Idempotency-Key må være 1-255 synlige "
                                       "ASCII-tegn", None, "bad_idempotency_key"))
        key = f"header:{value}"
    elif bundle_key is not None:
        key = f"bundle:{bundle_key}"[:300]
    else:
        raise FhirError(400, Issue("required", "send en Idempotency-Key-header eller "
                                   "Bundle.identifier, så en gjentatt henvisning ikke gir "
                                   "to saker", "Bundle.identifier", "no_idempotency_key"))
    return IdempotencyKey(actor.id[:200], key, request_hash(document))


@router.post("/Bundle", status_code=201, responses=_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {
                 FHIR_JSON: {"schema": {"type": "object"}}}}})
async def post_bundle(request: Request, actor: CurrentActor) -> JSONResponse:
    """A GP's referral: a FHIR R4B message or transaction Bundle with one ServiceRequest,
    its Patient, Practitioner and Organization, and optionally QuestionnaireResponses
    (kartleggingsskjema, PHQ-9, GAD-7). Idempotent per Idempotency-Key or
    Bundle.identifier. Nothing is written unless the answer is 201."""
    state = request.app.state
    try:
        if actor.role != "fastlege":
            raise FhirError(403, Issue("forbidden", "bare fastleger kan sende henvisninger",
                                       None, "not_a_gp"))
        if not _content_type_ok(request):
            raise FhirError(415, Issue("not-supported", "Content-Type må være "
                                       "application/fhir+json", None, "bad_content_type"))
        document = jsonbody.parse(await read_body(request))
        settings: Settings = state.fhir_settings
        intake: Intake = state.intake
        parsed = parse_referral(document, organisations=settings.referral_organisations,
                                today=intake.coordinator.clock.now().date(),
                                allow_synthetic=settings.synthetic_identifiers_allowed)
        key = _key(request, parsed.bundle_key, actor, document)
        try:
            receipt = await run_in_threadpool(intake.receive_referral, parsed.referral, actor,
                                              key)
        except CoordinatorError as exc:
            raise from_library(exc) from None
    except FhirError as exc:
        return error_response(exc)
    return fhir_response(receipt_body(receipt), 201,
                         {"Location": f"/api/v1/cases/{receipt.case_id}"})


def _case_param(case: str | None) -> UUID:
    """The ``case`` search parameter, checked here so that even a missing or malformed one
    is answered with an OperationOutcome (FastAPI's own validation answers problem+json)."""
    if case is None or not case.strip():
        raise FhirError(400, Issue("required", "søkeparameteren 'case' mangler", "case",
                                   "missing_case_parameter"))
    try:
        return UUID(case)
    except ValueError:
        raise FhirError(400, Issue("value", "søkeparameteren 'case' er ikke en gyldig "
                                   "saks-id", "case", "invalid_case_parameter")) from None


@router.get("/Observation", responses=_RESPONSES)
def get_observations(actor: CurrentActor, request: Request,
                     case: Annotated[str | None, Query(description="The case id")] = None,
                     ) -> JSONResponse:
    """A case's outcome measures as a searchset of Observations. Health roles on the team
    see all; other team members only the work status."""
    intake: Intake = request.app.state.intake
    try:
        records = intake.measures(_case_param(case), actor)
    except FhirError as exc:
        return error_response(exc)
    except CoordinatorError as exc:
        return error_response(from_library(exc))
    return fhir_response(observations.search_bundle(records), 200)


@router.get("/Questionnaire/{name}", responses={404: {"content": {FHIR_JSON: {}}}})
def get_questionnaire(name: str) -> JSONResponse:
    """The kartleggingsskjema, PHQ-9 and GAD-7 Questionnaires (public definitions)."""
    for canonical in q.FORMS:
        if canonical.split("|")[0].rsplit(":", 1)[1] == name:
            return fhir_response(q.questionnaire(canonical), 200)
    return error_response(FhirError(404, Issue("not-found", f"ukjent skjema {name!r}", None,
                                               "unknown_questionnaire")))


def install(app: FastAPI, coordinator: Coordinator, settings: Settings) -> None:
    app.state.intake = Intake(coordinator)
    app.state.fhir_settings = settings
    app.include_router(router)
