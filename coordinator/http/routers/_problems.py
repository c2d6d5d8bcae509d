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
    409: "Conflicts with the case's state (not allowed now, a guard failed, already done, "
         "or changed concurrently: retry)",
    412: "The case is no longer at the version given in If-Match / expected_version",
    422: "The request is not valid",
}


def problems(*statuses: int, auth: bool = True) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the given statuses, plus 401/429/503 when it needs a
    token."""
    out: dict[int | str, dict[str, Any]] = dict(AUTH_RESPONSES) if auth else {}
    for status in (*statuses, 422):
        out[status] = {"model": ProblemRead, "content": {PROBLEM_JSON: {}},
                       "description": _TEXT[status]}
    return out
