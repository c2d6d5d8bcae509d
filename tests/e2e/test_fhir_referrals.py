"""POST /fhir/Bundle end to end: real FHIR parsing, real SQLite (and PostgreSQL), real tokens.

Every bad input gets an OperationOutcome and leaves every table's row count unchanged.
"""

from __future__ import annotations

import copy
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from sqlalchemy import Engine, func, select

from coordinator.bootstrap import build
from coordinator.cases.model import Actor
from coordinator.config import Settings
from coordinator.crypto.signing import dev_key_path, load_or_create_dev_key
from coordinator.http.app import create_app
from coordinator.http.auth import DEV_ISSUER, Authenticator
from coordinator.identifiers import OID_DNR, OID_FNR
from coordinator.intake.service import Intake
from coordinator.persistence.tables import metadata
from coordinator.testing import FakeClock, synthetic_person_id
from coordinator.workflows.registry import WorkflowRegistry

with warnings.catch_warnings():
    warnings.simplefilter("ignore")     # Starlette prefers httpx2; the project pins httpx
    from fastapi.testclient import TestClient

FIXTURES = Path(__file__).parent.parent / "fixtures" / "fhir"
AUDIENCE = "coordinator-test"
GP_PILOTS = sorted({wf.definition.key for wf in WorkflowRegistry.builtin().all()
                    if "fastlege" in wf.definition.referrers})
FHIR = {"Content-Type": "application/fhir+json"}


def fixture(pilot: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"referral_{pilot}.json").read_text())
    return data


def entry(bundle: dict[str, Any], rtype: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e["resource"] for e in bundle["entry"]
                                 if e["resource"]["resourceType"] == rtype)
    return found


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    db: Engine = request.getfixturevalue({"sqlite": "sqlite_engine",
                                          "postgres": "pg_engine"}[request.param])
    return db


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", dev_issuer_enabled=True, api_audience=AUDIENCE,
                    allow_synthetic_identifiers=True)


@pytest.fixture
def app(engine: Engine, clock: FakeClock, settings: Settings) -> FastAPI:
    return create_app(build(engine=engine, clock=clock), settings=settings,
                      authenticator=Authenticator.from_settings(settings, clock=clock))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def token(settings: Settings, clock: FakeClock) -> Any:
    load_or_create_dev_key(settings.data_dir)
    key = serialization.load_pem_private_key(dev_key_path(settings.data_dir).read_bytes(),
                                             password=None)

    def make(sub: str = "gp-1", role: str = "fastlege") -> dict[str, str]:
        now = int(clock.now().timestamp())
        claims = {"iss": DEV_ISSUER, "aud": AUDIENCE, "sub": sub, "role": role,
                  "iat": now, "exp": now + 600}
        return {"Authorization": f"Bearer {jwt.encode(claims, key, algorithm='EdDSA')}"}

    return make


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
                for t in metadata.sorted_tables}


def post(client: TestClient, body: Any, headers: dict[str, str],
         extra: dict[str, str] | None = None) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/fhir/Bundle", content=content, headers={**FHIR, **headers,
                                                                  **(extra or {})})


def case_id_of(response: Any) -> UUID:
    return UUID(response.headers["Location"].rsplit("/", 1)[1])


# -- good referrals ------------------------------------------------------------------------
def test_there_is_a_fixture_for_every_pilot_taking_gp_referrals() -> None:
    assert GP_PILOTS == ["ha", "lillestrom", "ringsaker", "stovner"]
    assert sorted(p.stem.removeprefix("referral_") for p in FIXTURES.glob("referral_*.json")) \
        == GP_PILOTS


@pytest.mark.parametrize("pilot", GP_PILOTS)
def test_a_referral_becomes_a_case_in_its_pilot_with_the_kartlegging(
        client: TestClient, app: FastAPI, token: Any, pilot: str) -> None:
    r = post(client, fixture(pilot), token())
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert r.json()["resourceType"] == "OperationOutcome"
    case_id = case_id_of(r)
    intake: Intake = app.state.intake
    gp = Actor("gp-1", "fastlege")
    summary = intake.coordinator.summary(case_id, actor=gp)       # the GP is on the team
    assert (summary.pilot, summary.referrer) == (pilot, "fastlege")
    assert summary.state == "referred"
    forms = intake.forms(case_id, gp)
    kartlegging = next(f for f in forms if "kartlegging" in f.questionnaire)
    assert kartlegging.answers["nav_contact"] is True
    assert "work_situation" in kartlegging.answers
    measures = {m.instrument: m for m in intake.measures(case_id, gp)}
    assert measures["work_status"].phase == "start"
    if pilot in ("ringsaker", "stovner"):
        assert (measures["phq9"].total, measures["phq9"].band) == (10, "moderate")
        assert (measures["gad7"].total, measures["gad7"].band) == (6, "mild")


def test_ringsaker_start_measures_mark_the_start_outcome(client: TestClient, app: FastAPI,
                                                         token: Any) -> None:
    r = post(client, fixture("ringsaker"), token())
    view = app.state.intake.coordinator.view(case_id_of(r))
    assert "start" in view.record["outcomes"]
    assert [e.kind for e in view.history] == ["opened", "transitioned"]


def test_observations_are_readable_as_fhir(client: TestClient, token: Any) -> None:
    r = post(client, fixture("stovner"), token())
    obs = client.get(f"/fhir/Observation?case={case_id_of(r)}", headers=token())
    assert obs.status_code == 200
    codes = sorted(e["resource"]["code"]["text"] for e in obs.json()["entry"])
    assert codes == ["Arbeidsstatus", "GAD-7", "PHQ-9"]
    other = client.get(f"/fhir/Observation?case={case_id_of(r)}", headers=token("gp-2"))
    assert other.status_code == 404          # not on the team: indistinguishable from none
    assert other.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(("query", "reason"), [("", "missing_case_parameter"),
                                              ("?case=not-a-uuid", "invalid_case_parameter")])
def test_a_bad_observation_search_is_an_operation_outcome(
        client: TestClient, token: Any, query: str, reason: str) -> None:
    r = client.get(f"/fhir/Observation{query}", headers=token())
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/fhir+json")
    [issue] = r.json()["issue"]
    assert issue["code"] in ("required", "value") and reason in json.dumps(issue)


def test_questionnaires_are_published(client: TestClient) -> None:
    q = client.get("/fhir/Questionnaire/kartlegging").json()
    assert {i["linkId"] for i in q["item"]} >= {"work_situation", "consent_nav_dialogue"}
    assert client.get("/fhir/Questionnaire/nope").status_code == 404


# -- bad input: an OperationOutcome and nothing written ------------------------------------
def _mutate(pilot: str, change: Any) -> dict[str, Any]:
    bundle = copy.deepcopy(fixture(pilot))
    change(bundle)
    return bundle


def _set_person(b: dict[str, Any], value: str, system: str = OID_FNR) -> None:
    entry(b, "Patient")["identifier"] = [{"system": system, "value": value}]


def _bad_checksum(b: dict[str, Any]) -> None:
    good = entry(b, "Patient")["identifier"][0]["value"]
    _set_person(b, good[:10] + str((int(good[10]) + 1) % 10))


def _dnr_as_fnr(b: dict[str, Any]) -> None:
    from datetime import date
    _set_person(b, synthetic_person_id(date(1984, 3, 9), kind="dnr"), OID_FNR)


def _too_old(b: dict[str, Any]) -> None:
    from datetime import date
    _set_person(b, synthetic_person_id(date(1960, 2, 1)))
    entry(b, "Patient")["birthDate"] = "1960-02-01"


def _no_service_request(b: dict[str, Any]) -> None:
    b["entry"] = [e for e in b["entry"] if e["resource"]["resourceType"] != "ServiceRequest"]


def _unknown_org(b: dict[str, Any]) -> None:
    entry(b, "Organization")["identifier"][0]["value"] = "600000055"


def _birth_mismatch(b: dict[str, Any]) -> None:
    entry(b, "Patient")["birthDate"] = "1991-06-03"


def _phq_out_of_range(b: dict[str, Any]) -> None:
    qr = next(e["resource"] for e in b["entry"]
              if "phq9" in str(e["resource"].get("questionnaire")))
    qr["item"][0]["answer"][0]["valueInteger"] = 4


def _phq_string(b: dict[str, Any]) -> None:
    qr = next(e["resource"] for e in b["entry"]
              if "phq9" in str(e["resource"].get("questionnaire")))
    qr["item"][0]["answer"][0]["valueInteger"] = "2"


def _bad_status(b: dict[str, Any]) -> None:
    entry(b, "ServiceRequest")["status"] = "bogus"


def _dangling(b: dict[str, Any]) -> None:
    entry(b, "ServiceRequest")["subject"] = {"reference": "urn:uuid:nowhere"}


def _duplicate_full_url(b: dict[str, Any]) -> None:
    b["entry"][2]["fullUrl"] = b["entry"][1]["fullUrl"]


def _unknown_resource(b: dict[str, Any]) -> None:
    b["entry"].append({"fullUrl": "urn:uuid:x", "resource": {"resourceType": "Foo"}})


DEEP = b'{"resourceType": "Bundle", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
BAD_INPUTS: dict[str, tuple[Any, int, str]] = {
    "not JSON": (b"{not json", 400, "not_json"),
    "non-UTF-8": (b'{"resourceType": "Bundle", "x": "\xff\xfe"}', 400, "not_utf8"),
    "deep nesting": (DEEP, 400, "too_deep"),
    "nesting over 64": (b'{"a":' * 65 + b"1" + b"}" * 65, 400, "too_deep"),
    "oversize body": (b'{"x": "' + b"a" * (1024 * 1024) + b'"}', 413, "body_too_large"),
    "wrong resourceType": ({"resourceType": "Patient"}, 400, "not_a_bundle"),
    "a JSON array": ([1, 2], 400, "not_an_object"),
    "Bundle without ServiceRequest": (_mutate("ringsaker", _no_service_request), 400,
                                      "no_serviceRequest".lower()),
    "unsupported resource": (_mutate("ringsaker", _unknown_resource), 400,
                             "unsupported_resource"),
    "duplicate fullUrl": (_mutate("ringsaker", _duplicate_full_url), 400,
                          "duplicate_full_url"),
    "invalid fnr checksum": (_mutate("ringsaker", _bad_checksum), 422, "bad_checksum"),
    "D-number under the fnr system": (_mutate("ha", _dnr_as_fnr), 422, "kind_mismatch"),
    "birthDate not the number's": (_mutate("ringsaker", _birth_mismatch), 422,
                                   "birth_date_mismatch"),
    "unknown organisation": (_mutate("ringsaker", _unknown_org), 422, "unknown_organisation"),
    "patient outside the pilot's age range": (_mutate("ringsaker", _too_old), 422,
                                              "age_above_55"),
    "PHQ-9 item out of range": (_mutate("ringsaker", _phq_out_of_range), 422,
                                "out_of_range"),
    "PHQ-9 item as a string": (_mutate("ringsaker", _phq_string), 422, "bad_answer"),
    "unknown ServiceRequest.status": (_mutate("ringsaker", _bad_status), 422, "bad_status"),
    "dangling reference": (_mutate("ringsaker", _dangling), 422, "unresolved_reference"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_an_operation_outcome_and_writes_nothing(
        client: TestClient, engine: Engine, token: Any, name: str) -> None:
    body, status, reason = BAD_INPUTS[name]
    before = counts(engine)
    r = post(client, body, token())
    assert r.status_code == status, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert any(reason == i.get("diagnostics") or reason in str(i.get("diagnostics"))
               for i in outcome["issue"]), outcome
    assert all(i["severity"] == "error" and i["details"]["text"] for i in outcome["issue"])
    assert counts(engine) == before


def test_the_phq9_item_issue_names_the_element(client: TestClient, token: Any) -> None:
    r = post(client, _mutate("ringsaker", _phq_string), token())
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[6].resource.item[0].answer[0]"]


def test_synthetic_numbers_need_the_setting(engine: Engine, clock: FakeClock,
                                            settings: Settings, token: Any) -> None:
    strict = settings.model_copy(update={"allow_synthetic_identifiers": False})
    app = create_app(build(engine=engine, clock=clock), settings=strict,
                     authenticator=Authenticator.from_settings(strict, clock=clock))
    with TestClient(app) as c:
        r = post(c, fixture("ha"), token())
    assert r.status_code == 422
    assert r.json()["issue"][0]["diagnostics"] == "synthetic_not_allowed"


def test_only_a_gp_may_refer_and_a_token_is_needed(client: TestClient, engine: Engine,
                                                   token: Any) -> None:
    r = post(client, fixture("ha"), token("nav-1", "nav_veileder"))
    assert r.status_code == 403
    assert r.json()["resourceType"] == "OperationOutcome"
    assert post(client, fixture("ha"), {}).status_code == 401
    assert client.post("/fhir/Bundle", content=b"{}", headers={
        **token(), "Content-Type": "text/plain"}).status_code == 415
    assert counts(engine)["cases"] == 0


def test_a_key_is_required(client: TestClient, token: Any) -> None:
    bundle = fixture("ha")
    del bundle["identifier"]
    r = post(client, bundle, token())
    assert (r.status_code, r.json()["issue"][0]["diagnostics"]) == (400, "no_idempotency_key")
    assert post(client, bundle, token(), {"Idempotency-Key": "k-1"}).status_code == 201


# -- idempotency ---------------------------------------------------------------------------
def test_the_same_referral_twice_is_one_case_and_the_same_answer(
        client: TestClient, engine: Engine, token: Any) -> None:
    first = post(client, fixture("stovner"), token())
    again = post(client, fixture("stovner"), token())
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert counts(engine)["cases"] == 1
    assert counts(engine)["idempotency_keys"] == 1


def test_the_same_key_with_another_body_is_422(client: TestClient, engine: Engine,
                                               token: Any) -> None:
    key = {"Idempotency-Key": "henvisning-42"}
    assert post(client, fixture("stovner"), token(), key).status_code == 201
    before = counts(engine)
    other = _mutate("stovner", lambda b: entry(b, "ServiceRequest").update(
        authoredOn="2027-01-03"))
    r = post(client, other, token(), key)
    assert r.status_code == 422
    assert r.json()["issue"][0]["diagnostics"] == "idempotency-key-reused"
    assert counts(engine) == before


def test_a_retry_while_the_first_is_in_flight_is_409(client: TestClient, app: FastAPI,
                                                     engine: Engine, token: Any) -> None:
    intake: Intake = app.state.intake
    claimed, release = threading.Event(), threading.Event()

    def hold() -> None:
        claimed.set()
        assert release.wait(30)

    intake.hook = hold
    headers = token()
    results: dict[str, Any] = {}
    first = threading.Thread(target=lambda: results.update(
        first=post(client, fixture("ha"), headers)))
    first.start()
    try:
        assert claimed.wait(30)
        intake.hook = None
        retry = post(client, fixture("ha"), headers)
        assert retry.status_code == 409, retry.text
        assert retry.json()["issue"][0]["code"] == "conflict"
        assert counts(engine)["cases"] == 0
    finally:
        release.set()
        first.join(30)
    assert results["first"].status_code == 201
    replay = post(client, fixture("ha"), headers)
    assert (replay.status_code, replay.json()) == (201, results["first"].json())
    assert counts(engine)["cases"] == 1


def test_a_refused_referral_releases_its_key(client: TestClient, engine: Engine,
                                             token: Any) -> None:
    key = {"Idempotency-Key": "k-7"}
    assert post(client, _mutate("ringsaker", _too_old), token(), key).status_code == 422
    assert counts(engine)["idempotency_keys"] == 0
    assert post(client, fixture("ringsaker"), token(), key).status_code == 201


def test_keys_belong_to_their_caller(client: TestClient, engine: Engine, token: Any) -> None:
    assert post(client, fixture("ha"), token("gp-1")).status_code == 201
    assert post(client, fixture("ha"), token("gp-2")).status_code == 201
    assert counts(engine)["cases"] == 2


def test_a_d_number_under_its_own_system_is_accepted(client: TestClient, token: Any) -> None:
    body = fixture("lillestrom")
    assert entry(body, "Patient")["identifier"][0]["system"] == OID_DNR
    assert post(client, body, token()).status_code == 201
