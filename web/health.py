"""Liveness (``/healthz``) and readiness (``/readyz``) of a web process.

- ``/healthz``: the process answers HTTP. Nothing else is asked, so a store or Temporal outage
  never gets a healthy web restarted (what a supervisor or an orchestrator's liveness probe acts on).
- ``/readyz``: the process can do its work: the store answers ``SELECT 1`` and Temporal its health
  check, each within ``WULIAN_READINESS_TIMEOUT_SECONDS``; 503 with the reason otherwise (what a
  load balancer sends traffic by, and what the launcher waits for at the first start).

Both are public (a load balancer asks them without credentials) and say nothing but up or down.
A readiness answer is reused for ``WULIAN_READINESS_CACHE_SECONDS``, and callers meanwhile wait for
the probe under way instead of starting their own, so however often ``/readyz`` is asked, the
process probes its dependencies at most once in that time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from litestar import Controller, Request, Response, get

from web.context import AppContext


@dataclass
class Readiness:
    """The cached readiness of one web process."""

    ctx: AppContext
    _answer: tuple[bool, bool] | None = None  # (store, temporal)
    _at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def check(self) -> tuple[bool, bool]:
        """Whether the store and Temporal answer (probed now, or within the cache time)."""
        async with self._lock:
            settings = self.ctx.settings
            if self._answer is None or time.monotonic() - self._at >= settings.readiness_cache_seconds:
                timeout = settings.readiness_timeout_seconds
                store, temporal = await asyncio.gather(self._store(timeout), self.ctx.temporal_ok(timeout))
                self._answer, self._at = (store, temporal), time.monotonic()
            return self._answer

    async def _store(self, seconds: float) -> bool:
        try:
            return await asyncio.wait_for(self.ctx.db.ping(), seconds)
        except TimeoutError:
            return False


def readiness_of(request: Request[Any, Any, Any]) -> Readiness:
    """The app's readiness cache (made by ``create_app``)."""
    found = request.app.state.get("readiness")
    assert isinstance(found, Readiness), "create_app puts a Readiness on app.state"
    return found


class HealthController(Controller):
    """Liveness and readiness."""

    @get("/healthz", exclude_from_csrf=True, sync_to_thread=False)
    def healthz(self) -> dict[str, str]:
        """Liveness: the process answers (always 200; dependencies are ``/readyz``'s)."""
        return {"status": "ok"}

    @get("/readyz", exclude_from_csrf=True)
    async def readyz(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """Readiness: 200 when the store and Temporal answer, else 503 with the reason."""
        store, temporal = await readiness_of(request).check()
        if store and temporal:
            return Response({"status": "ready", "store": True, "temporal": True})
        down = [name for name, up in (("store", store), ("temporal", temporal)) if not up]
        reason = " and ".join(down) + (" does" if len(down) == 1 else " do") + " not answer"
        return Response({"status": "unready", "store": store, "temporal": temporal, "reason": reason},
                        status_code=503)
