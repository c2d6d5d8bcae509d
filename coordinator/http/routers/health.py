"""``GET /health``: the service is up and its database answers."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from coordinator.http.deps import CoordinatorDep
from coordinator.http.errors import PROBLEM_JSON, Problem, problem_response, request_id_of
from coordinator.http.schemas import HealthRead, ProblemRead

router = APIRouter(tags=["health"])
log = logging.getLogger("coordinator.http")


@router.get("/health", response_model=HealthRead,
            responses={503: {"model": ProblemRead, "content": {PROBLEM_JSON: {}},
                             "description": "The database does not answer"}})
def health(request: Request, coordinator: CoordinatorDep) -> HealthRead | JSONResponse:
    try:
        coordinator.ping()
    except Exception:     # any store failure means unhealthy; the log has the cause
        log.exception("health check: database unavailable",
                      extra={"request_id": request_id_of(request)})
        problem = Problem(503, "database-unavailable", "The database does not answer.",
                          {"database": "unavailable"}, title="Service unavailable")
        return problem_response(problem, instance=request.url.path,
                                request_id=request_id_of(request))
    return HealthRead(status="ok", database="ok", version=request.app.version)
