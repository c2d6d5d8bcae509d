"""The FastAPI application. ``create_app(coordinator)`` is a factory: nothing happens at import.

``create_app_from_settings`` is the zero-argument factory uvicorn imports by name when it
runs several worker processes (``coordinator serve --workers N``).
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from fastapi import FastAPI

from coordinator.http import auth, errors
from coordinator.http.auth import Authenticator
from coordinator.http.middleware import (
    BodySizeLimitMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
)
from coordinator.http.routers import audit, health, me, pilots
from coordinator.service import Coordinator

MAX_BODY_BYTES = 1024 * 1024

DESCRIPTION = """\
Consent-gated, audited case coordination between Nav and health services for the nine
"arbeid og helse" pilots.

This version publishes the pilots' workflow definitions (public) and tells a caller who
its bearer token says it is (`/api/v1/me`). Case endpoints build on that authentication.
Every error is `application/problem+json` (RFC 9457).
"""


def coordinator_version() -> str:
    try:
        return package_version("coordinator")
    except PackageNotFoundError:      # running from a source tree without installing
        return "0+unknown"


def create_app(coordinator: Coordinator, *,
               authenticator: Authenticator | None = None) -> FastAPI:
    """The HTTP API over ``coordinator``. Bearer tokens are checked by ``authenticator``;
    by default one built from the environment's settings, on ``coordinator``'s clock."""
    if authenticator is None:
        from coordinator.config import Settings

        authenticator = Authenticator.from_settings(Settings(), clock=coordinator.clock)
    app = FastAPI(
        title="coordinator",
        version=coordinator_version(),
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.coordinator = coordinator
    errors.install(app)
    auth.install(app, authenticator)
    app.include_router(health.router)
    app.include_router(pilots.router)
    app.include_router(me.router)
    app.include_router(audit.router)
    # Added innermost first: the request id wraps everything, so even a 413 or a 500
    # carries it, and security headers apply to every answer.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app


def create_app_from_settings() -> FastAPI:
    """Build the Coordinator from the environment (``COORDINATOR_*``) and its app.

    Runs in each uvicorn worker process, so it also sets up logging there
    (``COORDINATOR_LOG_LEVEL``, default info)."""
    from coordinator.bootstrap import build
    from coordinator.config import Settings
    from coordinator.logging import configure

    configure(os.environ.get("COORDINATOR_LOG_LEVEL", "info"))
    settings = Settings()
    coordinator = build(settings)
    return create_app(coordinator, authenticator=Authenticator.from_settings(
        settings, clock=coordinator.clock))
