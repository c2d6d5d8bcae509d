"""Encrypted documents over HTTP, with real tokens on a migrated SQLite file.

A Nav role without consent cannot get a health document's text from any route: not from
the document routes (every method), not from any other GET route of the app that names
the case (the case page, the history, the logs, …). With a share and a consent it reads
the text; the next read after the consent is withdrawn, or the share revoked, is refused.
An erased case's document answers 410 problem+json."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from coordinator.bootstrap import build
from coordinator.cases.commands import GrantConsent, OpenCase, WithdrawConsent
from coordinator.cases.model import SYSTEM, Actor
from coordinator.demo import referral
from coordinator.http.app import create_app
from coordinator.http.auth import Authenticator
from coordinator.persistence import migrate
from coordinator.persistence.database import make_engine
from coordinator.service import Coordinator
from coordinator.testing import FakeClock, InMemoryKeyProvider
from tests.e2e.test_auth import DevKey, settings_for
from tests.security.test_authorization_matrix import _route_keys

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PLAINTEXT = "Pasienten beskriver tvangstanker og ønsker ikke at Nav får vite det."
THERAPIST = Actor("kt-1", "kognitiv_terapeut")
NAV = Actor("nav-1", "nav_veileder")
PERSON = "person-1"
SCOPE = (frozenset({"share_kartlegging"}), frozenset({"kartlegging"}), frozenset({"nav"}))


@dataclass
class Api:
    client: TestClient
    coordinator: Coordinator
    tokens: dict[str, str]
    case_id: uuid.UUID
    doc_id: uuid.UUID
    clock: FakeClock

    def call(self, method: str, url: str, who: Actor, body: Any = None) -> Any:
        return self.client.request(method, url, json=body, headers={
            "Authorization": f"Bearer {self.tokens[who.id]}"})

    @property
    def doc_url(self) -> str:
        return f"/api/v1/cases/{self.case_id}/documents/{self.doc_id}"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    clock = FakeClock()
    settings = settings_for(tmp_path, auth_failure_limit=100_000)
    dev = DevKey(settings.data_dir)
    engine = make_engine(f"sqlite:///{tmp_path / 'coordinator.db'}")
    migrate.upgrade(engine)
    c = build(engine=engine, clock=clock, keys=InMemoryKeyProvider())
    _ch, profile = referral("ringsaker", clock.now().date())
    case_id = c.open_case(OpenCase("ringsaker", "fastlege", profile, SYSTEM,
                                   subject_id=PERSON, team=(THERAPIST, NAV))).id
    app = create_app(c, authenticator=Authenticator.from_settings(settings, clock=clock))
    now = clock.now().timestamp()
    tokens = {a.id: dev.token(now, sub=a.id, role=a.role) for a in (THERAPIST, NAV)}
    with TestClient(app) as client:
        created = client.post(f"/api/v1/cases/{case_id}/documents", json={
            "kind": "kartleggingsskjema", "category": "kartlegging", "text": PLAINTEXT},
            headers={"Authorization": f"Bearer {tokens[THERAPIST.id]}"})
        assert created.status_code == 201, created.text
        assert created.json()["text"] is None and PLAINTEXT not in created.text
        yield Api(client, c, tokens, case_id, uuid.UUID(created.json()["id"]), clock)
    engine.dispose()


def concrete(path: str, api: Api) -> str | None:
    """``path`` with its parameters filled in for the case and its document; None when it
    takes a parameter naming something else (a meeting, a pilot, …)."""
    filled = path.replace("{case_id}", str(api.case_id)).replace(
        "{document_id}", str(api.doc_id)).replace("{party}", "nav")
    return None if "{" in filled else filled


def test_no_route_gives_a_nav_role_the_text_without_consent(api: Api) -> None:
    routes = _route_keys(api.client.app)  # type: ignore[arg-type]
    document_routes = {(m, p) for m, p in routes if "/documents" in p}
    assert len(document_routes) == 6
    seen = 0
    for method, path in sorted(routes):
        url = concrete(path, api)
        if url is None or (method != "GET" and (method, path) not in document_routes):
            continue
        body = {"text": PLAINTEXT} if method == "PUT" else {"party": "nav"} \
            if path.endswith("/shares") else {"kind": "note", "category": "kartlegging",
                                              "text": "x"} if method == "POST" else None
        if path.startswith("/fhir/Observation"):
            url = f"{url}?case={api.case_id}"
        r = api.call(method, url, NAV, body)
        seen += 1
        assert PLAINTEXT not in r.text, (method, path)
        if (method, path) in document_routes and not path.endswith("/documents"):
            assert r.status_code == 403, (method, path, r.text)
    assert seen >= 12
    listed = api.call("GET", f"/api/v1/cases/{api.case_id}/documents", NAV).json()
    assert listed["items"] == []
    refused = api.call("GET", api.doc_url, NAV)
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/document-not-shared"
    # the writes above were all refused: the therapist still reads the first revision
    mine = api.call("GET", api.doc_url, THERAPIST).json()
    assert (mine["text"], mine["revision"], mine["shares"]) == (PLAINTEXT, 1, [])


def test_share_consent_withdrawal_and_revocation_over_http(api: Api) -> None:
    c = api.coordinator
    shares = f"{api.doc_url}/shares"
    no_consent = api.call("POST", shares, THERAPIST, {"party": "nav"})
    assert (no_consent.status_code, no_consent.json()["type"]) == (
        403, "/problems/consent-required")
    c.grant_consent(GrantConsent(api.case_id, THERAPIST, *SCOPE, "digital", "v1"))
    shared = api.call("POST", shares, THERAPIST, {"party": "nav"})
    assert shared.status_code == 201 and shared.json()["purpose"] == "share_kartlegging"
    got = api.call("GET", api.doc_url, NAV)
    assert got.status_code == 200 and got.json()["text"] == PLAINTEXT
    assert got.json()["audience"] == "shared"
    c.withdraw_consent(WithdrawConsent(api.case_id, THERAPIST, *SCOPE, "digital"))
    after = api.call("GET", api.doc_url, NAV)
    assert (after.status_code, after.json()["type"]) == (403, "/problems/consent-required")
    assert PLAINTEXT not in after.text
    api.clock.advance(minutes=1)        # a new consent, given after the withdrawal
    c.grant_consent(GrantConsent(api.case_id, THERAPIST, *SCOPE, "digital", "v1"))
    assert api.call("GET", api.doc_url, NAV).status_code == 200
    assert api.call("DELETE", f"{shares}/nav", NAV).status_code == 403
    assert api.call("DELETE", f"{shares}/nav", THERAPIST).status_code == 204
    revoked = api.call("GET", api.doc_url, NAV)
    assert (revoked.status_code, revoked.json()["type"]) == (
        403, "/problems/document-not-shared")


def test_an_erased_case_answers_410(api: Api) -> None:
    api.coordinator.documents.erase(api.case_id, actor=SYSTEM, reason="Krav om sletting")
    for method, url in (("GET", api.doc_url),
                        ("GET", f"/api/v1/cases/{api.case_id}/documents")):
        r = api.call(method, url, THERAPIST)
        assert r.status_code == 410
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "/problems/case-erased"
    stranger = api.call("GET", f"/api/v1/cases/{uuid.uuid4()}/documents/{api.doc_id}",
                        THERAPIST)
    assert stranger.status_code == 404
