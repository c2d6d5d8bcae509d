"""A sliding-window counter of failed authentication per client address, in process memory.

Each API process keeps its own counts: a deployment with several API processes (or
hosts) enforces the limit in the reverse proxy instead (docs/security.md).
"""

from __future__ import annotations

import math
import threading
from collections import deque

from coordinator.ports import Clock


class FailureLimiter:
    """At most ``limit`` failures per client within ``window`` seconds.

    ``retry_after(client)`` is None while the client is under the limit, else the seconds
    until its oldest counted failure leaves the window. At most ``max_clients`` addresses
    are tracked; beyond that the least recently added one is forgotten."""

    def __init__(self, clock: Clock, *, limit: int, window: float,
                 max_clients: int = 10_000) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self._clock = clock
        self.limit = limit
        self.window = window
        self._max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> int | None:
        with self._lock:
            now = self._now()
            times = self._recent(client, now)
            if times is None or len(times) < self.limit:
                return None
            return max(1, math.ceil(times[0] + self.window - now))

    def record_failure(self, client: str) -> None:
        with self._lock:
            now = self._now()
            times = self._recent(client, now)
            if times is None:
                if len(self._failures) >= self._max_clients:
                    self._failures.pop(next(iter(self._failures)))
                times = self._failures[client] = deque()
            times.append(now)
            while len(times) > self.limit:      # more is never needed to decide
                times.popleft()
