"""Login rate limiting: after too many failed logins for a username or from a client address within a
window, further attempts are refused (429) until the window has passed.

The counters live in memory, one limiter per app (``app.state``), so they are per process: several web
processes each count on their own, and a restart forgets them. That is enough to slow down password
guessing on one process; a shared store (Redis, the database) would be needed to count across processes.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

#: Failed attempts allowed per username and per client address within :data:`WINDOW_SECONDS`.
MAX_FAILURES = 5
#: The counting window, and how long a lockout lasts after the last counted failure leaves it.
WINDOW_SECONDS = 10 * 60


class LoginLimiter:
    """Failed-login counters per username and per client address (sliding window)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        stamps = self._failures.get(key)
        if stamps is None:
            return deque()
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if not stamps:
            del self._failures[key]
        return stamps

    def retry_after(self, username: str, ip: str, now: float | None = None) -> int:
        """Seconds until an attempt may be made again; 0 when not locked."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        for key in (f"user:{username.lower()}", f"ip:{ip}"):
            stamps = self._recent(key, now)
            if len(stamps) >= self.max_failures:
                wait = max(wait, stamps[-self.max_failures] + self.window - now)
        return max(1, int(wait) + 1) if wait > 0 else 0

    def failed(self, username: str, ip: str, now: float | None = None) -> bool:
        """Count a failed attempt; True when it starts a lockout (the limit is reached now)."""
        now = time.monotonic() if now is None else now
        started = False
        for key in (f"user:{username.lower()}", f"ip:{ip}"):
            stamps = self._recent(key, now)
            stamps.append(now)
            self._failures[key] = stamps
            started = started or len(stamps) == self.max_failures
        return started

    def succeeded(self, username: str) -> None:
        """A successful login resets the username's counter (not the address's)."""
        self._failures.pop(f"user:{username.lower()}", None)


def limiter_of(app: Any) -> LoginLimiter:
    """The limiter of a Litestar app (created on first use)."""
    limiter = getattr(app.state, "login_limiter", None)
    if limiter is None:
        limiter = LoginLimiter()
        app.state.login_limiter = limiter
    return limiter


def client_ip(request: Any) -> str:
    """The client address of a request (the direct peer; a proxy must pass the real one through)."""
    client = request.client
    return client.host if client is not None and client.host else "unknown"
