"""The consent-log, access-log and audit-status endpoints: the person sees their own
case's logs, an auditor every case's and the verification status, others get 403/404."""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from coordinator.bootstrap import build
from coordinator.cases.commands import GrantConsent, OpenCase
from coordinator.cases.model import Actor
from coordinator.config import Settings
from coordinator.crypto.signing import load_or_create_dev_key, mint_dev_token
from coordinator.demo import referral
from coordinator.http.app import create_app
from coordinator.http.auth import Authenticator, dev_claims
from coordinator.service import Coordinator
from coordinator.testing import FakeClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore")     # Starlette prefers httpx2; the project pins httpx
    from fastapi.testclient import TestClient

GP = Actor("gp-1", "fastlege")
NAV = Actor("nav-1", "nav_veileder", "889640782")


@pytest.fixture
def world(sqlite_engine: Engine, clock: FakeClock,
          tmp_path: Path) -> Iterator[tuple[TestClient, Coordinator, Settings]]:
    settings = Settings(data_dir=tmp_path / "data", dev_issuer_enabled=True)
    c = build(engine=sqlite_engine, clock=clock)
    app = create_app(c, authenticator=Authenticator.from_settings(settings, clock=clock))
    with TestClient(app) as client:
        yield client, c, settings


def token(settings: Settings, clock: FakeClock, sub: str, role: str) -> dict[str, str]:
    key = load_or_create_dev_key(settings.data_dir)
    claims = dev_claims(sub=sub, role=role, org=None, pilot=None,
                        audience=settings.api_audience, now=clock.now().timestamp(),
                        ttl_seconds=600)
    return {"Authorization": f"Bearer {mint_dev_token(key, claims)}"}


def test_logs_and_status_over_http(world: tuple[TestClient, Coordinator, Settings],
                                   clock: FakeClock) -> None:
    client, c, settings = world
    _ch, profile = referral("ringsaker", clock.now().date(), random.Random(2))
    case_id = c.open_case(OpenCase("ringsaker", "fastlege", profile, GP, subject_id="p-1",
                                   team=(NAV,))).id
    record = c.grant_consent(GrantConsent(case_id, GP, frozenset({"coordination"}),
                                          frozenset({"kartlegging"}), frozenset({"nav"}),
                                          "digital", "v1"))
    c.read_data(case_id, actor=NAV, purpose="coordination", category="kartlegging")
    person = token(settings, clock, "p-1", "bruker")
    auditor = token(settings, clock, "rev-1", "auditor")
    consents = client.get(f"/api/v1/cases/{case_id}/consents", headers=person)
    assert consents.status_code == 200, consents.text
    assert [r["id"] for r in consents.json()["items"]] == [str(record.id)]
    log = client.get(f"/api/v1/cases/{case_id}/access-log", headers=person).json()["items"]
    assert [(e["actor_id"], e["actor_org"], e["action"], e["consent_id"]) for e in log] == [
        (NAV.id, NAV.org, "read", str(record.id))]
    assert client.get(f"/api/v1/cases/{case_id}/access-log",
                      headers=token(settings, clock, "p-2", "bruker")).status_code == 404
    assert client.get(f"/api/v1/cases/{case_id}/access-log",
                      headers=token(settings, clock, NAV.id, NAV.role)).status_code == 403
    status = client.get("/api/v1/audit/verify", headers=auditor)
    assert status.status_code == 200 and status.json()["intact"] is True
    assert client.get("/api/v1/audit/verify", headers=person).status_code == 403


def _pages(client: TestClient, url: str, headers: dict[str, str]) -> list[dict[str, object]]:
    """Every page of a paged list, following ``next``; checks the page fields on the way."""
    pages: list[dict[str, object]] = []
    while url:
        page = client.get(url, headers=headers)
        assert page.status_code == 200, page.text
        pages.append(page.json())
        url = page.json()["next"] or ""
        assert len(pages) < 20
    return pages


def test_the_access_log_and_the_consent_log_come_in_pages(
        world: tuple[TestClient, Coordinator, Settings], clock: FakeClock) -> None:
    client, c, settings = world
    _ch, profile = referral("ringsaker", clock.now().date(), random.Random(4))
    case_id = c.open_case(OpenCase("ringsaker", "fastlege", profile, GP, subject_id="p-1",
                                   team=(NAV,))).id
    for _ in range(5):
        c.grant_consent(GrantConsent(case_id, GP, frozenset({"coordination"}),
                                     frozenset({"kartlegging"}), frozenset({"nav"}),
                                     "digital", "v1"))
        clock.advance(minutes=1)
        c.read_data(case_id, actor=NAV, purpose="coordination", category="kartlegging")
        clock.advance(minutes=1)
    person = token(settings, clock, "p-1", "bruker")
    for path, total in (("access-log", 5), ("consents", 5)):
        whole = client.get(f"/api/v1/cases/{case_id}/{path}?limit=500", headers=person).json()
        assert whole["total"] == total and len(whole["items"]) == total and not whole["next"]
        pages = _pages(client, f"/api/v1/cases/{case_id}/{path}?limit=2", person)
        assert [len(p["items"]) for p in pages] == [2, 2, 1]
        assert [p["offset"] for p in pages] == [0, 2, 4]
        assert [i for p in pages for i in p["items"]] == whole["items"]
        assert "limit=2" in str(pages[0]["next"])
        for bad in ("limit=0", "limit=501", "offset=-1"):
            answer = client.get(f"/api/v1/cases/{case_id}/{path}?{bad}", headers=person)
            assert answer.status_code == 422
            assert answer.headers["content-type"].startswith("application/problem+json")
    times = [e["at"] for e in client.get(f"/api/v1/cases/{case_id}/access-log?limit=500",
                                         headers=person).json()["items"]]
    assert times == sorted(times)                                    # oldest first
