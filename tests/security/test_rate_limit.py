"""The failed-authentication limit also guards the case endpoints: token-less and bad-token
requests count per address, and over the limit even a valid token is turned away with 429
before any case is looked up."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from coordinator.bootstrap import build
from coordinator.http.app import create_app
from coordinator.http.auth import Authenticator
from coordinator.testing import FakeClock
from tests.e2e.test_auth import DevKey, settings_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")     # Starlette prefers httpx2; the project pins httpx
    from fastapi.testclient import TestClient

LIMIT = 4
WINDOW = 30


@pytest.fixture
def dev(tmp_path: Path) -> DevKey:
    return DevKey(settings_for(tmp_path).data_dir)


@pytest.fixture
def app(tmp_path: Path, sqlite_engine: Engine, clock: FakeClock) -> FastAPI:
    settings = settings_for(tmp_path, auth_failure_limit=LIMIT,
                            auth_failure_window_seconds=WINDOW)
    return create_app(build(engine=sqlite_engine, clock=clock),
                      authenticator=Authenticator.from_settings(settings, clock=clock))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def case_paths() -> list[tuple[str, str]]:
    case = uuid.UUID(int=7)         # fixed: xdist workers must collect the same test ids
    return [("GET", "/api/v1/me/cases"), ("GET", "/api/v1/cases"),
            ("GET", f"/api/v1/cases/{case}"), ("POST", f"/api/v1/cases/{case}/transitions"),
            ("GET", "/api/v1/stats/cases")]


@pytest.mark.parametrize(("method", "path"), case_paths())
def test_token_less_requests_are_limited(client: TestClient, dev: DevKey, clock: FakeClock,
                                         method: str, path: str) -> None:
    for _ in range(LIMIT):
        assert client.request(method, path, json={}).status_code == 401
    good = {"Authorization": f"Bearer {dev.token(clock.now().timestamp())}"}
    limited = client.request(method, path, json={}, headers=good)
    assert limited.status_code == 429
    assert limited.json()["type"] == "/problems/too-many-requests"
    assert 1 <= int(limited.headers["retry-after"]) <= WINDOW


def test_failed_tokens_are_limited_and_the_limit_passes(client: TestClient, dev: DevKey,
                                                        clock: FakeClock) -> None:
    expired = dev.token(clock.now().timestamp() - 3600)
    for method, path in case_paths()[:LIMIT]:
        r = client.request(method, path, json={}, headers={"Authorization": f"Bearer {expired}"})
        assert r.status_code == 401
    good = {"Authorization": f"Bearer {dev.token(clock.now().timestamp())}"}
    limited = client.get("/api/v1/me/cases", headers=good)
    assert limited.status_code == 429
    clock.advance(seconds=int(limited.headers["retry-after"]))
    fresh = {"Authorization": f"Bearer {dev.token(clock.now().timestamp())}"}
    assert client.get("/api/v1/me/cases", headers=fresh).status_code == 200


def test_refused_case_access_with_a_valid_token_does_not_count(
        client: TestClient, dev: DevKey, clock: FakeClock) -> None:
    """A 404 or 403 is an authorization answer, not a failed authentication."""
    good = {"Authorization": f"Bearer {dev.token(clock.now().timestamp())}"}
    for _ in range(LIMIT * 3):
        assert client.get(f"/api/v1/cases/{uuid.uuid4()}", headers=good).status_code == 404
        assert client.get("/api/v1/cases", headers=good).status_code == 403
    assert client.get("/api/v1/me/cases", headers=good).status_code == 200
