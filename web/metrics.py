"""The web's Prometheus metrics, its request log scope, and the ``/metrics`` endpoint.

Every request is counted and timed by its route's path template as the app declares it
(``/api/events/{event_id}``), never its raw path: a raw path would make one series per event,
task or probe. Requests no route matches (404, 405) share the route label ``(unmatched)``.

- ``wulian_http_requests_total{method, route, status}``
- ``wulian_http_request_duration_seconds{method, route}`` (histogram; routes matched only)
- ``wulian_http_errors_total{method, route, status}``: answers with a 5xx status
- ``wulian_http_requests_in_progress``
- the process's CPU, memory, open files and garbage collections (``process_*``, ``python_*``).

No label holds a user, an address or a value from a request: ``/metrics`` tells nothing about
anybody. It is still an internal endpoint and refuses the public (every public endpoint is
treated as hostile): with ``WULIAN_METRICS_TOKEN`` set it admits only ``Authorization: Bearer
<token>``; without one, only a request whose socket peer is loopback and that names no forwarded
client (``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``: a proxy on this machine passing a
public request on). Everybody else gets the 404 of an unknown page.

Each request also opens a log scope (``wulian/logs.py``): its lines carry ``method`` and
``route``, and the ``actor`` once the request's login or API key is known.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, NotFoundException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

from web.context import AppContext
from wulian.logs import log_scope

#: The route label of requests that no route matched.
UNMATCHED = "(unmatched)"
#: Methods kept as they are in labels; anything else a client sends is counted as ``OTHER``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Headers by which a proxy names the client it forwards for.
FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")

#: The web process's metrics (a registry of its own: nothing else registers into it by accident).
REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

REQUESTS = Counter("wulian_http_requests", "HTTP requests answered, by route template and status",
                   ["method", "route", "status"], registry=REGISTRY)
ERRORS = Counter("wulian_http_errors", "HTTP answers with a 5xx status, by route template",
                 ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("wulian_http_request_duration_seconds", "Time to answer, by route template",
                    ["method", "route"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
IN_PROGRESS = Gauge("wulian_http_requests_in_progress", "HTTP requests being answered", registry=REGISTRY)


def _method(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in METHODS else "OTHER"


def _count(method: str, route: str, status: int) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    if status >= 500:
        ERRORS.labels(method, route, str(status)).inc()


class RequestMetrics(ASGIMiddleware):
    """Counts, times and log-scopes every request a route matched (runs after routing, so the
    scope holds the route's path template)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Answer through ``next_app``, recording the answer's status and time."""
        route = str(scope.get("path_template") or UNMATCHED)
        method = _method(scope)
        status = 0

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        started = time.perf_counter()
        IN_PROGRESS.inc()
        try:
            with log_scope(method=method, route=route):
                await next_app(scope, receive, record_status)
        except Exception as exc:
            # Raised past this middleware (a CSRF refusal, or an error the app's handler answers):
            # the answer will be the exception's status.
            if not status:
                status = exc.status_code if isinstance(exc, HTTPException) else 500
            raise
        finally:
            IN_PROGRESS.dec()
            _count(method, route, status or 500)
            LATENCY.labels(method, route).observe(time.perf_counter() - started)


async def count_unmatched(message: Message, scope: Scope) -> None:
    """``before_send`` hook: counts the answers to requests no route matched (the middleware,
    which runs after routing, never sees them)."""
    if message["type"] == "http.response.start" and scope.get("type") == "http" and "path_template" not in scope:
        _count(_method(scope), UNMATCHED, int(message["status"]))


def admitted(request: Request[Any, Any, Any], token: str) -> bool:
    """Whether ``request`` may read ``/metrics`` (see the module's docstring)."""
    if token:
        presented = request.headers.get("authorization", "")
        scheme, _, value = presented.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    peer = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


class MetricsController(Controller):
    """The Prometheus scrape endpoint (internal)."""

    @get("/metrics", exclude_from_csrf=True, include_in_schema=False, sync_to_thread=False)
    def metrics(self, ctx: AppContext, request: Request[Any, Any, Any]) -> Response[bytes]:
        """The web process's metrics in Prometheus's text format; 404 to whoever may not read them."""
        if not admitted(request, ctx.settings.metrics_token):
            raise NotFoundException()
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})
