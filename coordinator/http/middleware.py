"""Pure ASGI middleware: request ids (and the last-resort 500), security headers, body limit.

Pure ASGI rather than ``BaseHTTPMiddleware`` so that nothing buffers or re-orders the
response, and so that the outermost layer can still answer a 500 with the request id
after anything below it failed.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coordinator.http.errors import Problem, internal_error, problem_for_status, problem_response

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
log = logging.getLogger("coordinator.http")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _send_problem(scope: Scope, send: Send, problem: Problem,
                        request_id: str | None) -> None:
    response = problem_response(problem, instance=scope.get("path"), request_id=request_id)
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class RequestIdMiddleware:
    """Gives each request an id (a safe incoming ``X-Request-ID`` or a new one), echoes it,
    logs one line per request, and turns any escaped exception into a bare 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _SAFE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started, status = False, 500
        t0 = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if started:
                raise
            await _send_problem(scope, send_with_id, internal_error(), request_id)
        finally:
            log.info("request", extra={
                "request_id": request_id, "method": scope.get("method"),
                "path": scope.get("path"), "status": status,
                "duration_ms": round((time.perf_counter() - t0) * 1000, 2)})


class SecurityHeadersMiddleware:
    """``nosniff`` and ``no-referrer`` everywhere; ``no-store`` and a closed CSP on the API
    (``/docs`` keeps its own needs: it loads Swagger UI)."""

    def __init__(self, app: ASGIApp, *, api_prefixes: Iterable[str] = ("/api/", "/health")
                 ) -> None:
        self.app = app
        self.api_prefixes = tuple(api_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith(self.api_prefixes)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Frame-Options"] = "DENY"
                if api:
                    headers["Cache-Control"] = "no-store"
                    headers["Content-Security-Policy"] = _API_CSP
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _TooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413: at once when Content-Length says
    so, or as soon as a streamed body passes the limit (if nothing was answered yet)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = 1024 * 1024,
                 exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt           # path prefixes whose endpoints bound bodies themselves

    def _problem(self) -> Problem:
        return problem_for_status(413, f"The request body is larger than {self.max_bytes} bytes.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
                self.exempt and str(scope.get("path", "")).startswith(self.exempt)):
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_problem(scope, send, self._problem(), request_id)
            return
        received, started = 0, False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await _send_problem(scope, send, self._problem(), request_id)
