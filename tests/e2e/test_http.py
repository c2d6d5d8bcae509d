"""The HTTP API through FastAPI's TestClient on a real, migrated SQLite database.

Expected values come from the workflow registry and the package metadata, never from the
code under test. ``problem_for`` is checked for every error class the library defines.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from sqlalchemy import Engine

from coordinator import errors
from coordinator.bootstrap import build
from coordinator.http.app import create_app
from coordinator.http.errors import problem_for
from coordinator.persistence.database import make_engine
from coordinator.testing import FakeClock
from coordinator.workflows.registry import WorkflowRegistry

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient; the project pins httpx.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REGISTRY = WorkflowRegistry.builtin()
PROBLEM = "application/problem+json"


@pytest.fixture
def app(sqlite_engine: Engine, clock: FakeClock) -> FastAPI:
    return create_app(build(engine=sqlite_engine, clock=clock))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    return body


# -- health, OpenAPI, docs ------------------------------------------------------------------
def test_health_checks_the_database_and_reports_the_package_version(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok",
                               "version": importlib.metadata.version("coordinator")}


def test_health_is_503_problem_when_the_database_is_not_usable(tmp_path: Path,
                                                               clock: FakeClock) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'never-migrated.db'}")   # no tables at all
    try:
        with TestClient(create_app(build(engine=engine, clock=clock))) as c:
            body = assert_problem(c.get("/health"), 503, "database-unavailable")
        assert body["database"] == "unavailable"
        assert "no such table" not in str(body)        # internals stay in the log
    finally:
        engine.dispose()


def test_openapi_is_3_1_and_case_data_needs_a_token(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["title"] == "coordinator"
    assert spec["info"]["version"] == importlib.metadata.version("coordinator")
    assert {"/health", "/api/v1/pilots", "/api/v1/pilots/{key}",
            "/api/v1/pilots/{key}/versions/{version}/diagram"} <= set(spec["paths"])
    case_ops = [op for path, ops in spec["paths"].items() if "case" in path
                for op in ops.values()]
    assert case_ops                                       # case data only behind a token
    assert all(op.get("security") == [{"HTTPBearer": []}] for op in case_ops)
    assert all("401" in op["responses"] for op in case_ops)


def test_swagger_ui_is_served_at_docs(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


# -- pilots ---------------------------------------------------------------------------------
def test_pilot_list_has_every_registered_pilot_with_its_versions(client: TestClient) -> None:
    body = client.get("/api/v1/pilots").json()
    assert body["total"] == len(REGISTRY.keys())
    assert [p["key"] for p in body["items"]] == REGISTRY.keys()
    for item in body["items"]:
        latest = REGISTRY.latest(item["key"]).definition
        assert item["latest_version"] == latest.version
        assert item["model"] == latest.model
        assert item["title"] == latest.title
        assert max(item["versions"]) == latest.version


def test_pilot_pages_cover_every_pilot_exactly_once(client: TestClient) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        body = client.get("/api/v1/pilots", params={"limit": 2, "offset": offset}).json()
        assert len(body["items"]) <= 2
        if not body["items"]:
            break
        seen += [p["key"] for p in body["items"]]
        offset += 2
    assert seen == REGISTRY.keys()


@pytest.mark.parametrize("params", [{"limit": 1000}, {"limit": 101}, {"limit": 0},
                                    {"offset": -1}, {"limit": "many"}])
def test_bad_paging_parameters_are_422_problems(client: TestClient,
                                                params: dict[str, object]) -> None:
    body = assert_problem(client.get("/api/v1/pilots", params=params), 422, "validation-error")
    assert body["errors"][0]["loc"] == ["query", next(iter(params))]


def test_unknown_query_parameters_are_ignored(client: TestClient) -> None:
    assert client.get("/api/v1/pilots", params={"colour": "blue"}).status_code == 200


@pytest.mark.parametrize("key", REGISTRY.keys())
def test_pilot_detail_is_the_latest_definition(client: TestClient, key: str) -> None:
    d = REGISTRY.latest(key).definition
    body = client.get(f"/api/v1/pilots/{key}").json()
    assert (body["key"], body["version"], body["model"]) == (key, d.version, d.model)
    assert body["states"] == [str(s) for s in d.states]
    assert body["triggers"] == list(d.triggers())
    assert body["referrers"] == list(d.referrers)
    assert body["eligibility"]["min_age"] == d.eligibility.min_age
    assert body["eligibility"]["max_age"] == d.eligibility.max_age
    assert sorted(body["eligibility"]["target_groups"]) == sorted(d.eligibility.target_groups)
    assert [x["name"] for x in body["deadlines"]] == [x.name for x in d.deadlines]
    assert [c["meeting"] for c in body["cadences"]] == [c.meeting for c in d.cadences]
    assert body["closing_sides"] == list(d.closing_sides)
    assert body["sources"] == dict(d.sources)
    assert len(body["transitions"]) == len(d.transitions)


def test_unknown_pilot_is_a_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/api/v1/pilots/atlantis"), 404, "unknown-workflow")
    assert "atlantis" in body["detail"]


def test_diagram_is_mermaid_text_with_every_state(client: TestClient) -> None:
    for wf in REGISTRY.all():
        key, version = wf.ref
        response = client.get(f"/api/v1/pilots/{key}/versions/{version}/diagram")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text.startswith("stateDiagram-v2")
        for state in wf.definition.states:
            assert f" {state}" in response.text


def test_diagram_of_an_unknown_version_is_a_404_problem(client: TestClient) -> None:
    key = REGISTRY.keys()[0]
    missing = REGISTRY.latest(key).definition.version + 1
    assert_problem(client.get(f"/api/v1/pilots/{key}/versions/{missing}/diagram"), 404,
                   "unknown-workflow")


# -- problem+json for everything else ---------------------------------------------------------
def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/no/such/thing"), 404, "not-found")


def test_wrong_method_is_a_405_problem_with_allow(client: TestClient) -> None:
    response = client.delete("/api/v1/pilots")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET"


def test_oversize_body_is_413_problem(client: TestClient) -> None:
    response = client.post("/api/v1/pilots", content=b"x" * (1024 * 1024 + 1))
    assert_problem(response, 413, "content-too-large")


def test_body_of_exactly_the_limit_passes_the_size_check(client: TestClient) -> None:
    response = client.post("/api/v1/pilots", content=b"x" * (1024 * 1024))
    assert response.status_code == 405           # reaches routing: only GET exists there


def test_streamed_oversize_body_is_413_problem(app: FastAPI) -> None:
    @app.post("/test-echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    def chunks() -> Iterator[bytes]:               # no Content-Length: chunked upload
        for _ in range(20):
            yield b"y" * 65536

    with TestClient(app) as c:
        assert c.post("/test-echo", content=b"small").json() == {"size": 5}
        assert_problem(c.post("/test-echo", content=chunks()), 413, "content-too-large")


def test_unexpected_error_is_a_500_with_only_a_request_id(app: FastAPI) -> None:
    @app.get("/test-boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app) as c:
        response = c.get("/test-boom")
    body = assert_problem(response, 500, "internal-error")
    assert set(body) <= {"type", "title", "status", "detail", "instance", "request_id"}
    assert "secret" not in response.text and "RuntimeError" not in response.text


# -- headers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/health", "/api/v1/pilots", "/api/v1/pilots/atlantis",
                                  "/nowhere"])
def test_api_answers_carry_security_headers(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    if path.startswith(("/api/", "/health")):
        assert headers["cache-control"] == "no-store"


def test_docs_get_the_basic_security_headers_too(client: TestClient) -> None:
    headers = client.get("/docs").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_a_safe_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/health", headers={"X-Request-ID": "trace-123.abc"})
    assert response.headers["x-request-id"] == "trace-123.abc"


@pytest.mark.parametrize("given", ["has spaces", "x" * 200, "<script>"])
def test_an_unsafe_request_id_is_replaced(client: TestClient, given: str) -> None:
    rid = client.get("/health", headers={"X-Request-ID": given}).headers["x-request-id"]
    assert rid != given
    assert len(rid) == 32 and int(rid, 16) >= 0


def test_each_request_gets_its_own_id(client: TestClient) -> None:
    ids = {client.get("/health").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


# -- problem_for: every error class -------------------------------------------------------------
ErrorFactory = Callable[[], errors.CoordinatorError]
# (factory, expected status) per ARCHITECTURE.md §6: not found (or foreign case) 404, permission
# denied 403, refused or concurrent 409,
# stale If-Match 412, invalid input 422; errors that are nobody's input are 500.
CASES: dict[type[errors.CoordinatorError], tuple[ErrorFactory, int]] = {
    errors.CoordinatorError: (lambda: errors.CoordinatorError("boom"), 500),
    errors.InvalidDefinition: (lambda: errors.InvalidDefinition("x_v1", ["bad"]), 500),
    errors.NotFound: (lambda: errors.NotFound("gone"), 404),
    errors.CaseNotFound: (lambda: errors.CaseNotFound("c-1"), 404),
    errors.NotCaseMember: (lambda: errors.NotCaseMember("c-1"), 404),
    errors.PermissionDenied: (lambda: errors.PermissionDenied("no", permission="view_case"), 403),
    errors.ConsentRequired: (lambda: errors.ConsentRequired("no consent", permission="read"),
                             403),
    errors.EmergencyAccessRefused: (lambda: errors.EmergencyAccessRefused("nav"), 403),
    errors.AlreadyMember: (lambda: errors.AlreadyMember("twice", actor_id="a"), 409),
    errors.UnknownWorkflow: (lambda: errors.UnknownWorkflow("no pilot", key="x"), 404),
    errors.InvalidInput: (lambda: errors.InvalidInput("bad", field="limit"), 422),
    errors.NotEligible: (lambda: errors.NotEligible("ha", ["too_old"]), 422),
    errors.ReferrerNotAllowed: (lambda: errors.ReferrerNotAllowed("no", pilot="ha"), 422),
    errors.Conflict: (lambda: errors.Conflict("conflict"), 409),
    errors.UnknownTrigger: (lambda: errors.UnknownTrigger("ha", "fly"), 409),
    errors.TransitionNotAllowed: (lambda: errors.TransitionNotAllowed("close", "intake"), 409),
    errors.GuardFailed: (lambda: errors.GuardFailed("close", "closing", ["a=b", "c=d"]), 409),
    errors.WorkflowMismatch: (lambda: errors.WorkflowMismatch("mismatch"), 409),
    errors.ConcurrentUpdate: (lambda: errors.ConcurrentUpdate(), 409),
    errors.StaleVersion: (lambda: errors.StaleVersion(3, 4), 412),
    errors.MigrationBlocked: (lambda: errors.MigrationBlocked("no", pilot="ha", version=2), 409),
    errors.IdempotencyInFlight: (lambda: errors.IdempotencyInFlight("busy", key="k"), 409),
    errors.IdempotencyKeyReused: (lambda: errors.IdempotencyKeyReused("other", key="k"), 422),
    errors.AlreadyRecorded: (lambda: errors.AlreadyRecorded("twice", phase="end"), 409),
    errors.MeetingNotFound: (lambda: errors.MeetingNotFound("m-1"), 404),
    errors.MeetingClosed: (lambda: errors.MeetingClosed("held", status="held"), 409),
    errors.ReminderNotFound: (lambda: errors.ReminderNotFound("r-1"), 404),
    # no caller's fault: a 500 that names nothing (key ids and causes stay in the log)
    errors.KeyUnavailable: (lambda: errors.KeyUnavailable("kek-1 is retired"), 500),
    errors.DecryptionFailed: (lambda: errors.DecryptionFailed("tag mismatch"), 500),
}


def _all_error_classes() -> set[type[errors.CoordinatorError]]:
    found: set[type[errors.CoordinatorError]] = set()
    todo: list[type[errors.CoordinatorError]] = [errors.CoordinatorError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("coordinator."):
            found.add(cls)
        todo += cls.__subclasses__()
    return found


def test_every_library_error_class_has_an_expected_problem() -> None:
    assert _all_error_classes() == set(CASES), "add new error classes to CASES"


@pytest.mark.parametrize("cls", sorted(CASES, key=lambda c: c.__name__),
                         ids=lambda c: c.__name__)
def test_problem_for_maps_each_error_class(cls: type[errors.CoordinatorError]) -> None:
    factory, status = CASES[cls]
    exc = factory()
    assert type(exc) is cls
    problem = problem_for(exc)
    body = problem.body(instance="/x", request_id="rid")
    assert (problem.status, body["status"]) == (status, status)
    assert body["request_id"] == "rid" and body["instance"] == "/x"
    if status == 500:
        assert body["type"] == "/problems/internal-error"
        assert exc.message not in str(body)          # nothing internal leaks
        return
    assert body["type"] == f"/problems/{exc.code}"
    assert body["detail"] == exc.message
    if isinstance(exc, errors.GuardFailed):
        assert body["failed_guards"] == ["a=b", "c=d"]
    if isinstance(exc, errors.StaleVersion):
        assert (body["expected_version"], body["current_version"]) == (3, 4)


def test_error_details_cannot_overwrite_problem_fields() -> None:
    exc = errors.InvalidInput("bad", status=200, type="evil", field="x")
    body = problem_for(exc).body(instance="/x", request_id=None)
    assert (body["status"], body["type"], body["field"]) == (422, "/problems/invalid-input", "x")
