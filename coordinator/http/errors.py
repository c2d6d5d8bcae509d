"""RFC 9457 problem details: the one mapping from errors to HTTP responses.

Every error response of the API is ``application/problem+json`` with ``type``
``/problems/<slug>``, ``title``, ``status``, ``detail`` and ``instance`` (the request path),
plus ``request_id``. ``problem_for`` maps the library's ``CoordinatorError`` tree
(ARCHITECTURE.md §6); the handlers below cover routing, validation and everything else.
A 500 says nothing but its request id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from coordinator.errors import (
    CaseErased,
    ConcurrentUpdate,
    Conflict,
    CoordinatorError,
    GuardFailed,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StaleVersion,
)

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("coordinator.http")

# Fields of a problem body that details of an error may not overwrite.
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "request_id"})


@dataclass(frozen=True)
class Problem:
    status: int
    slug: str
    detail: str | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)
    title: str = ""

    @property
    def type(self) -> str:
        return f"/problems/{self.slug}"

    def body(self, *, instance: str | None, request_id: str | None) -> dict[str, Any]:
        title = self.title or self.slug.replace("-", " ").capitalize()
        out: dict[str, Any] = {"type": self.type, "title": title, "status": self.status}
        if self.detail is not None:
            out["detail"] = self.detail
        if instance is not None:
            out["instance"] = instance
        out.update({k: v for k, v in self.extensions.items() if k not in _RESERVED})
        if request_id is not None:
            out["request_id"] = request_id
        return out


def internal_error() -> Problem:
    return Problem(500, "internal-error", "An unexpected error occurred; quote the request id.",
                   title="Internal server error")


def _json_safe(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return str(value)


def _status_for(exc: CoordinatorError) -> int | None:
    if isinstance(exc, StaleVersion):           # before ConcurrentUpdate/Conflict: it is one
        return 412
    if isinstance(exc, CaseErased):
        return 410
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidInput):
        return 422
    return None


def problem_for(exc: CoordinatorError) -> Problem:
    """The problem a library error becomes. Errors that are no caller's fault become a 500."""
    status = _status_for(exc)
    if status is None:
        return internal_error()
    extensions = {k: _json_safe(v) for k, v in exc.details.items()}
    if isinstance(exc, GuardFailed):
        extensions["failed_guards"] = list(exc.failed_guards)
    if isinstance(exc, StaleVersion):
        extensions.update(expected_version=exc.expected, current_version=exc.actual)
    elif isinstance(exc, ConcurrentUpdate):
        extensions["retry"] = True
    return Problem(status, exc.code, exc.message, extensions)


# RFC 9110 names, where Python's HTTPStatus still has the older ones.
_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


def _phrase(status: int) -> str:
    try:
        return _PHRASES.get(status) or HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _stdlib_phrase(status: int) -> str | None:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


def problem_for_status(status: int, detail: str | None = None) -> Problem:
    """A problem for a plain HTTP status (unknown route, wrong method, too large, ...)."""
    phrase = _phrase(status)
    slug = phrase.lower().replace(" ", "-").replace("'", "")
    return Problem(status, slug, detail, title=phrase)


def problem_response(problem: Problem, *, instance: str | None, request_id: str | None,
                     headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(problem.body(instance=instance, request_id=request_id),
                        status_code=problem.status, media_type=PROBLEM_JSON,
                        headers=dict(headers or {}))


def request_id_of(request: Request) -> str | None:
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else None


def _respond(request: Request, problem: Problem,
             headers: Mapping[str, str] | None = None) -> JSONResponse:
    return problem_response(problem, instance=request.url.path,
                            request_id=request_id_of(request), headers=headers)


async def _coordinator_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CoordinatorError)  # noqa: S101 - registered for this class only
    problem = problem_for(exc)
    if problem.status >= 500:
        log.error("unmapped library error", exc_info=exc,
                  extra={"request_id": request_id_of(request), "code": exc.code})
    return _respond(request, problem)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this class
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if detail in (_phrase(exc.status_code), _stdlib_phrase(exc.status_code)):
        detail = None                       # Starlette's default detail repeats the title
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
    return _respond(request, problem_for_status(exc.status_code, detail), headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this class
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    problem = Problem(422, "validation-error", "The request is not valid; see errors.",
                      {"errors": errors}, title="Validation error")
    return _respond(request, problem)


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""
    app.add_exception_handler(CoordinatorError, _coordinator_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
