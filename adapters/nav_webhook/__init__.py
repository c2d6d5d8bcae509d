"""Outbound Nav events over HTTPS (stdlib ``urllib``), implementing ``coordinator.ports.Notifier``.

One ``POST`` per message to the configured URL, body the JSON event rendered by
``coordinator.scheduling.messages.webhook_body``. Headers:

- ``X-Coordinator-Timestamp``: Unix seconds when the request was signed.
- ``X-Coordinator-Signature``: ``sha256=<hex>``, HMAC-SHA256 with the shared secret over
  ``<timestamp>.<body>`` (the timestamp, a full stop, the exact body bytes).
- ``X-Coordinator-Delivery`` and ``Idempotency-Key``: the outbox id. A resend after a crash
  or a failed attempt carries the same id, so the receiver can drop the copy.

Any 2xx is delivered; any other status, a timeout or a refused connection is an error text
for that message, so the dispatcher retries it with back-off and finally dead-letters it.
Redirects are not followed (the signature is for the configured URL only).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from uuid import UUID

from coordinator.scheduling.outbox import OutgoingMessage

SIGNATURE_HEADER = "X-Coordinator-Signature"
TIMESTAMP_HEADER = "X-Coordinator-Timestamp"
DELIVERY_HEADER = "X-Coordinator-Delivery"
DEFAULT_TOLERANCE = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float,
           tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """What a receiver checks: a well-formed, recent timestamp and a matching signature
    (compared in constant time)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class WebhookNotifier:
    def __init__(self, url: str, secret: str, *, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("a webhook needs a signing secret")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("a webhook URL must be http(s)")
        self.url, self.secret, self.timeout, self.clock = url, secret, timeout, clock
        self.opener = urllib.request.build_opener(_NoRedirect())

    def request(self, m: OutgoingMessage) -> urllib.request.Request:
        body = m.body.encode()
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "coordinator-nav-webhook",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            DELIVERY_HEADER: str(m.id),
            "Idempotency-Key": str(m.id),
        }
        # The scheme is checked in __init__ (http or https only).
        return urllib.request.Request(self.url, data=body, method="POST",  # noqa: S310
                                      headers=headers)

    def send(self, messages: Sequence[OutgoingMessage],
             on_result: Callable[[UUID, str | None], None] | None = None,
             ) -> Mapping[UUID, str | None]:
        """One request per message, each outcome reported to ``on_result`` before the
        next request. After a connection-level failure (refused, timeout) the rest of the
        batch gets the same error without being tried, so a receiver that is down costs
        one timeout per batch, not one per message."""
        out: dict[UUID, str | None] = {}
        down: str | None = None
        for m in messages:
            if down is not None:
                out[m.id] = down
            else:
                try:
                    with self.opener.open(self.request(m), timeout=self.timeout) as response:
                        status = int(response.status)
                    out[m.id] = None if 200 <= status < 300 else f"HTTP {status}"
                except urllib.error.HTTPError as exc:
                    out[m.id] = f"HTTP {exc.code}"
                    exc.close()
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    down = out[m.id] = f"{type(exc).__name__}: {exc}"
            if on_result is not None:
                on_result(m.id, out[m.id])
        return out
