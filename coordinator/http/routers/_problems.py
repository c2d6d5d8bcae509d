"""OpenAPI declarations of the problem+json answers a route can give."""

from __future__ import annotations

from typing import Any

from coordinator.http.auth import AUTH_RESPONSES
from coordinator.http.errors import PROBLEM_JSON
from coordinator.http.schemas import ProblemRead

_TEXT = {
    400: "Bad request",
    403: "The caller's role may not do this on this case",
    404: "No such case, or the caller may not know it exists",
    410: "The case's documents were erased (their keys destroyed); they are gone for good",
    409: "Conflicts with the case's state (not allowed now, a guard failed, already done, "
         "or changed concurrently: retry)",
    412: "The case is no longer at the version given in If-Match / expected_version",
    413: "The request body is too large",
    422: "The request is not valid",
}


def problems(*statuses: int, body: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route needing a token: the given statuses, 401/429/503 and
    422, plus 400 (unparsable) and 413 (too large) when it takes a ``body``."""
    out: dict[int | str, dict[str, Any]] = dict(AUTH_RESPONSES)
    for status in (*statuses, *((400, 413) if body else ()), 422):
        out[status] = {"model": ProblemRead, "content": {PROBLEM_JSON: {}},
                       "description": _TEXT[status]}
    return out
