"""A GP's referral Bundle (FHIR R4B) to a ``Referral``, or a ``FhirError`` naming each problem.

fhir.resources checks the structure, but converts wrong JSON types, checks no code lists,
resolves no references and no cross-element rules (see the issue's known traps). So we also
check: ``resourceType`` of the Bundle and of each entry, Bundle.type, unique fullUrls, the
MessageHeader first in a message and ``request`` in a transaction, the status/intent/gender
codes, that references resolve to entries of the right type, and the JSON type of every
value we read (read from the raw JSON, not the converted model).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pydantic
from fhir.resources.R4B.bundle import Bundle

from adapters.fhir import questionnaires as q
from adapters.fhir.outcome import FhirError, Issue
from coordinator import identifiers as ids
from coordinator.intake.model import Referral, StartMeasures
from coordinator.workflows.facts import Profile

PROBLEM_SYSTEM = "urn:coordinator:problem-group"
PROBLEM_GROUPS = frozenset({"mental_mild_moderate", "msk", "substance", "sleep"})
ENTRY_TYPES = frozenset({"MessageHeader", "ServiceRequest", "Patient", "Practitioner",
                         "Organization", "QuestionnaireResponse"})
SR_STATUS = frozenset({"active"})
SR_INTENT = frozenset({"order", "original-order", "proposal", "plan"})
GENDERS = frozenset({"male", "female", "other", "unknown"})


def bad(status: int, code: str, text: str, where: str | None, reason: str) -> FhirError:
    return FhirError(status, Issue(code, text, where, reason))


@dataclass(frozen=True)
class Entry:
    index: int
    full_url: str
    resource: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.resource["resourceType"])

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}].resource"


@dataclass(frozen=True)
class Parsed:
    referral: Referral
    bundle_key: str | None        # Bundle.identifier as system|value, if any


def request_hash(document: Any) -> str:
    """SHA-256 of the canonical JSON (key order and whitespace do not matter)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _string(obj: Mapping[str, Any], name: str, where: str, *, required: bool = True
            ) -> str | None:
    value = obj.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad(400 if required else 422, "required" if value is None else "value",
                  f"{name} må være en tekst", f"{where}.{name}", f"bad_{name}")
    return value


def _entries(doc: dict[str, Any]) -> list[Entry]:
    """Raises: FhirError (400) for structure the model does not check."""
    if doc.get("resourceType") != "Bundle":
        raise bad(400, "structure", "ressursen må være en Bundle", "Bundle.resourceType",
                  "not_a_bundle")
    kind = doc.get("type")
    if kind not in ("message", "transaction"):
        raise bad(400, "value", "Bundle.type må være message eller transaction", "Bundle.type",
                  "bad_bundle_type")
    raw = doc.get("entry")
    if not isinstance(raw, list) or not raw:
        raise bad(400, "required", "Bundle har ingen entry", "Bundle.entry", "no_entries")
    entries, seen = [], set()
    for n, e in enumerate(raw):
        where = f"Bundle.entry[{n}]"
        res = e.get("resource") if isinstance(e, dict) else None
        rtype = res.get("resourceType") if isinstance(res, dict) else None
        if not isinstance(res, dict) or not isinstance(rtype, str) or rtype not in ENTRY_TYPES:
            raise bad(400, "not-supported", f"ressurstypen {rtype!r} støttes ikke i en henvisning",
                      f"{where}.resource.resourceType", "unsupported_resource")
        url = e.get("fullUrl")
        if not isinstance(url, str) or not url:
            raise bad(400, "required", "hver entry må ha fullUrl", f"{where}.fullUrl",
                      "no_full_url")
        if url in seen:
            raise bad(400, "duplicate", f"fullUrl {url} finnes to ganger", f"{where}.fullUrl",
                      "duplicate_full_url")
        seen.add(url)
        req = e.get("request")
        if kind == "transaction" and not (isinstance(req, dict) and req.get("method") == "POST"
                                          and req.get("url") == rtype):
            raise bad(400, "required", f"en transaction-entry må ha request POST {rtype}",
                      f"{where}.request", "bad_request")
        entries.append(Entry(n, url, res))
    if kind == "message" and entries[0].type != "MessageHeader":
        raise bad(400, "structure", "første entry i en message må være MessageHeader",
                  "Bundle.entry[0]", "message_header_first")
    return entries


def _validate_model(doc: dict[str, Any]) -> None:
    try:
        Bundle.model_validate(doc)
    except pydantic.ValidationError as exc:
        issues = [Issue("structure", f"{e['msg']}",
                        "Bundle" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                           for p in e["loc"]), "fhir_validation")
                  for e in exc.errors()[:20]]
        raise FhirError(400, *issues) from None
    except (KeyError, TypeError, ValueError) as exc:      # unknown types deep inside
        raise bad(400, "structure", f"ugyldig FHIR: {type(exc).__name__}", "Bundle",
                  "fhir_validation") from None


def _one(entries: list[Entry], rtype: str, *, required: bool = True) -> Entry | None:
    found = [e for e in entries if e.type == rtype]
    if len(found) > 1:
        raise bad(400, "structure", f"Bundle har mer enn én {rtype}", found[1].where,
                  f"many_{rtype.lower()}")
    if not found and required:
        raise bad(400, "required", f"Bundle mangler {rtype}", "Bundle.entry",
                  f"no_{rtype.lower()}")
    return found[0] if found else None


def _resolve(entries: list[Entry], holder: Entry, field: str, rtype: str) -> Entry:
    ref = holder.resource.get(field)
    target = ref.get("reference") if isinstance(ref, dict) else None
    where = f"{holder.where}.{field}.reference"
    for e in entries:
        if e.full_url == target:
            if e.type != rtype:
                raise bad(422, "invalid", f"{field} peker på {e.type}, ikke {rtype}", where,
                          "wrong_reference_type")
            return e
    raise bad(422, "invalid", f"{field} peker ikke på en ressurs i Bundle", where,
              "unresolved_reference")


def _identifier(entry: Entry, systems: frozenset[str]) -> tuple[str, str, str]:
    """(system, value, FHIRPath) of the one identifier in ``systems``."""
    found = []
    raw = entry.resource.get("identifier")
    for n, ident in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(ident, dict) and ident.get("system") in systems:
            where = f"{entry.where}.identifier[{n}]"
            value = _string(ident, "value", where, required=False)
            if value is None:
                raise bad(422, "required", "identifikatoren mangler value", f"{where}.value",
                          "no_identifier_value")
            found.append((str(ident["system"]), value, f"{where}.value"))
    if len(found) != 1:
        names = " eller ".join(sorted(systems))
        raise bad(422, "required", f"{entry.type} må ha nøyaktig én identifikator med "
                  f"system {names}", f"{entry.where}.identifier", "identifier_missing")
    return found[0]


def _id_error(exc: ids.IdentifierError, where: str) -> FhirError:
    return bad(422, "value", exc.message, where, exc.reason)


def _patient(entry: Entry, today: date, allow_synthetic: bool) -> date:
    system, value, where = _identifier(entry, frozenset(ids.PERSON_SYSTEMS))
    try:
        person = ids.parse_person_id(value, system, today=today, allow_synthetic=allow_synthetic)
    except ids.IdentifierError as exc:
        raise _id_error(exc, where) from None
    birth = _string(entry.resource, "birthDate", entry.where)
    if birth != person.birth_date.isoformat():
        raise bad(422, "value", "birthDate stemmer ikke med fødselsdatoen i nummeret",
                  f"{entry.where}.birthDate", "birth_date_mismatch")
    gender = entry.resource.get("gender")
    if gender is not None and gender not in GENDERS:
        raise bad(422, "code-invalid", f"gender må være en av {', '.join(sorted(GENDERS))}",
                  f"{entry.where}.gender", "bad_gender")
    return person.birth_date


def _problems(sr: Entry) -> frozenset[str]:
    codes: set[str] = set()
    raw = sr.resource.get("reasonCode")
    for n, concept in enumerate(raw if isinstance(raw, list) else []):
        codings = concept.get("coding") if isinstance(concept, dict) else None
        for k, coding in enumerate(codings if isinstance(codings, list) else []):
            if isinstance(coding, dict) and coding.get("system") == PROBLEM_SYSTEM:
                code = coding.get("code")
                if code not in PROBLEM_GROUPS:
                    raise bad(422, "code-invalid", f"ukjent problemgruppe {code!r}",
                              f"{sr.where}.reasonCode[{n}].coding[{k}].code", "bad_problem")
                codes.add(str(code))
    if not codes:
        raise bad(422, "required", f"henvisningen må ha reasonCode fra {PROBLEM_SYSTEM} "
                  f"({', '.join(sorted(PROBLEM_GROUPS))})", f"{sr.where}.reasonCode",
                  "no_problem_group")
    return frozenset(codes)


def _service_request(sr: Entry) -> None:
    for name, allowed in (("status", SR_STATUS), ("intent", SR_INTENT)):
        if sr.resource.get(name) not in allowed:
            raise bad(422, "code-invalid", f"ServiceRequest.{name} må være en av "
                      f"{', '.join(sorted(allowed))}", f"{sr.where}.{name}", f"bad_{name}")


def _forms(entries: list[Entry], patient: Entry) -> dict[str, dict[str, Any]]:
    forms: dict[str, dict[str, Any]] = {}
    for e in (x for x in entries if x.type == "QuestionnaireResponse"):
        canonical = e.resource.get("questionnaire")
        if canonical not in q.FORMS:
            raise bad(422, "not-supported", f"ukjent skjema {canonical!r}; kjente: "
                      f"{', '.join(q.FORMS)}", f"{e.where}.questionnaire", "unknown_form")
        if canonical in forms:
            raise bad(422, "duplicate", f"skjemaet {canonical} finnes to ganger", e.where,
                      "duplicate_form")
        if e.resource.get("status") != "completed":
            raise bad(422, "code-invalid", "QuestionnaireResponse.status må være completed",
                      f"{e.where}.status", "form_not_completed")
        _resolve(entries, e, "subject", "Patient")
        forms[str(canonical)] = q.read_answers(str(canonical), e.resource.get("item"), e.where)
    del patient
    return forms


def _profile(birth: date, problems: frozenset[str], kartlegging: Mapping[str, Any] | None
             ) -> Profile:
    k = kartlegging or {}
    situation = k.get("work_situation")
    start = k.get("sick_leave_start")
    grade = {"graded_sick_leave": "partial", "full_sick_leave": "full"}.get(str(situation),
                                                                          "none")
    if grade == "none" and k.get("sick_leave_pending"):
        grade = "pending"
    return Profile(birth_date=birth, problems=problems,
                   employed=situation in ("in_work", "graded_sick_leave", "full_sick_leave"),
                   sick_leave_start=date.fromisoformat(start) if start else None,
                   sick_leave_grade=grade, in_rph_treatment=bool(k.get("in_rph_treatment")))


def _start(forms: Mapping[str, Mapping[str, Any]]) -> StartMeasures:
    scores = {}
    for canonical, instrument in q.INSTRUMENT_OF.items():
        if canonical in forms:
            _, items = q.FORMS[canonical]
            scores[instrument] = tuple(int(forms[canonical][i.link_id]) for i in items)
    situation = forms.get(q.KARTLEGGING, {}).get("work_situation")
    return StartMeasures(scores, situation if situation != "not_working" else None)


def _bundle_key(doc: dict[str, Any]) -> str | None:
    ident = doc.get("identifier")
    if not isinstance(ident, dict):
        return None
    system, value = ident.get("system"), ident.get("value")
    if not (isinstance(system, str) and isinstance(value, str) and system and value):
        raise bad(400, "value", "Bundle.identifier må ha system og value",
                  "Bundle.identifier", "bad_bundle_identifier")
    return f"{system}|{value}"


def parse_referral(doc: Any, *, organisations: Mapping[str, str], today: date,
                   allow_synthetic: bool) -> Parsed:
    """Raises: FhirError (400 structure, 422 content)."""
    if not isinstance(doc, dict):
        raise bad(400, "structure", "innholdet må være et JSON-objekt", None, "not_an_object")
    entries = _entries(doc)
    _validate_model(doc)
    sr = _one(entries, "ServiceRequest")
    assert sr is not None  # noqa: S101 - required above
    _service_request(sr)
    patient = _resolve(entries, sr, "subject", "Patient")
    practitioner = _resolve(entries, sr, "requester", "Practitioner")
    org = _one(entries, "Organization")
    assert org is not None  # noqa: S101 - required above
    birth = _patient(patient, today, allow_synthetic)
    _, hpr, where = _identifier(practitioner, frozenset({ids.OID_HPR}))
    _, orgnr, org_where = _identifier(org, frozenset({ids.OID_ORGNR}))
    try:
        hpr = ids.parse_hpr(hpr)
    except ids.IdentifierError as exc:
        raise _id_error(exc, where) from None
    try:
        orgnr = ids.parse_orgnr(orgnr)
    except ids.IdentifierError as exc:
        raise _id_error(exc, org_where) from None
    pilot = organisations.get(orgnr)
    if pilot is None:
        raise bad(422, "business-rule", f"organisasjonen {orgnr} er ikke med i noen pilot som "
                  "tar imot henvisninger", org_where, "unknown_organisation")
    problems = _problems(sr)
    forms = _forms(entries, patient)
    referral = Referral(pilot=pilot, profile=_profile(birth, problems, forms.get(q.KARTLEGGING)),
                        organisation=orgnr, practitioner_hpr=hpr,
                        forms=tuple(sorted(forms.items())), start=_start(forms))
    return Parsed(referral, _bundle_key(doc))
