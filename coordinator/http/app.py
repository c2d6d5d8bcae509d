"""The FastAPI application. ``create_app(coordinator)`` is a factory: nothing happens at import.

``create_app_from_settings`` is the zero-argument factory uvicorn imports by name when it
runs several worker processes (``coordinator serve --workers N``).
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING

from fastapi import FastAPI

from coordinator.http import auth, errors
from coordinator.http.auth import Authenticator
from coordinator.http.middleware import (
    BodySizeLimitMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
)
from coordinator.http.routers import (
    audit,
    cases,
    consents,
    documents,
    health,
    me,
    meetings,
    pilots,
    reminders,
    sessions,
    stats,
)
from coordinator.http.routers import inbox as inbox_router
from coordinator.ports import InboxReader
from coordinator.service import Coordinator

if TYPE_CHECKING:
    from coordinator.config import Settings

MAX_BODY_BYTES = 1024 * 1024

DESCRIPTION = """\
Consent-gated, audited case coordination between Nav and health services for the nine
"arbeid og helse" pilots.

The pilots' workflow definitions are public. Everything about people and cases needs an
OAuth2 bearer token, and the caller sees a case only as a member of its team, as the person
it is about, or through an audited role rule (auditor: metadata and logs; prosjektleder:
aggregates). A case the caller may not know of answers 404, exactly like a missing one.
Every list is paged (`limit` plus `after` or `offset`; `next` is the next page's URL).
Changes to a case can be made conditional with `If-Match` (its version, from `ETag`).
Every error is `application/problem+json` (RFC 9457).
"""


def coordinator_version() -> str:
    try:
        return package_version("coordinator")
    except PackageNotFoundError:      # running from a source tree without installing
        return "0+unknown"


def create_app(coordinator: Coordinator, *,
               authenticator: Authenticator | None = None,
               settings: Settings | None = None,
               inbox: InboxReader | None = None) -> FastAPI:
    """The HTTP API over ``coordinator``. Bearer tokens are checked by ``authenticator``;
    by default one built from ``settings`` (default: the environment's), on
    ``coordinator``'s clock. ``settings.http_extensions`` name the adapters' installers
    (such as the FHIR referral endpoint), loaded by import path: coordinator never
    imports adapters. ``inbox`` reads the in-app inbox; by default the coordinator's
    outbox store when it can (the SQL one does)."""
    if settings is None:
        from coordinator.config import Settings

        settings = Settings()
    if authenticator is None:
        authenticator = Authenticator.from_settings(settings, clock=coordinator.clock)
    app = FastAPI(
        title="coordinator",
        version=coordinator_version(),
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.coordinator = coordinator
    store = coordinator.outbox_store
    app.state.inbox = inbox if inbox is not None else (
        store if isinstance(store, InboxReader) else None)
    errors.install(app)
    auth.install(app, authenticator)
    app.include_router(health.router)
    app.include_router(pilots.router)
    app.include_router(me.router)
    app.include_router(cases.router)
    app.include_router(consents.router)
    app.include_router(stats.router)
    app.include_router(audit.router)
    app.include_router(meetings.router)
    app.include_router(inbox_router.router)
    app.include_router(sessions.router)
    app.include_router(documents.router)
    app.include_router(reminders.router)
    for path in settings.http_extensions:
        module, _, name = path.partition(":")
        getattr(importlib.import_module(module), name)(app, coordinator, settings)
    # Added innermost first: the request id wraps everything, so even a 413 or a 500
    # carries it, and security headers apply to every answer.
    # FHIR endpoints bound their bodies themselves, to answer with an OperationOutcome.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES, exempt=("/fhir/",))
    app.add_middleware(SecurityHeadersMiddleware, api_prefixes=("/api/", "/health", "/fhir/"))
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
        settings, clock=coordinator.clock), settings=settings)
