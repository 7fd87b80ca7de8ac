"""A request's API key → the integration and its scopes: the one helper every entrance for
integrations uses (``POST /api/events``, Open311, webhook subscriptions).

The scheme: the key in the header ``X-API-Key`` (``Authorization: Bearer`` stays the staff's login
token, so the two never mix). Open311 also takes the spec's ``api_key`` form or query field
(:func:`require` with ``key=``). Each use is checked, then counted against the key's rate limit
(``WULIAN_API_KEY_REQUESTS_PER_MINUTE`` per integration, the store's fixed windows of
``web/request_limits.py``, so every web process counts alike; over it: 429 with ``Retry-After``),
then audited with the integration as actor (``apikey_use``, the route as target).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, TooManyRequestsException
from litestar.handlers import BaseRouteHandler

from store.api_keys import Integration, resolve
from store.users import audit
from web.context import AppContext
from web.request_limits import Limit, Limited, hit
from wulian.logs import bind

#: The header that carries an integration's key.
HEADER = "X-API-Key"


class KeyRefused(Exception):
    """A key that was given but does not admit the request: ``status`` 401 (no such key, revoked),
    403 (valid, but without the scope) or 429 (over the rate limit, with ``retry_after``)."""

    def __init__(self, status: int, reason: str, retry_after: int = 0) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def presented_key(request: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The key in the request's ``X-API-Key`` header, if any (blank counts as none)."""
    value = request.headers.get(HEADER)
    return value.strip() or None if value else None


def key_limit(ctx: AppContext) -> Limit:
    """Requests per integration and minute."""
    return Limit("apikey", ctx.settings.api_key_requests_per_minute, 60)


async def require(ctx: AppContext, request: ASGIConnection[Any, Any, Any, Any], scope: str,
                  key: str | None = None) -> Integration:
    """The integration of ``key`` (else of the ``X-API-Key`` header), admitted for ``scope``, its use
    counted and audited; :class:`KeyRefused` otherwise (also when no key is given: 401)."""
    key = key if key is not None else presented_key(request)
    integration = await resolve(ctx.db, key) if key else None
    if integration is None:
        raise KeyRefused(401, "missing, unknown or revoked API key")
    bind(actor=integration.actor)  # the request's log lines name the integration from here on
    if not integration.may(scope):
        await audit(ctx.db, integration.actor, "apikey_refused", request.url.path, f"scope {scope}")
        raise KeyRefused(403, f"this API key has no '{scope}' scope")
    try:
        await hit(ctx.db, key_limit(ctx), integration.name)
    except Limited as exc:
        raise KeyRefused(429, str(exc), exc.retry_after) from None
    target = f"{request.scope.get('method', '')} {request.url.path}"[:200]
    await audit(ctx.db, integration.actor, "apikey_use", target, scope)
    return integration


async def optional(ctx: AppContext, request: Request[Any, Any, Any], scope: str) -> Integration | None:
    """The integration when the request carries a key (refused as :func:`require` does), else None:
    for routes that anonymous residents may use too (``POST /api/events``)."""
    if presented_key(request) is None:
        return None
    return await require_http(ctx, request, scope)


async def require_http(ctx: AppContext, request: ASGIConnection[Any, Any, Any, Any], scope: str,
                       key: str | None = None) -> Integration:
    """:func:`require`, its refusal as the HTTP exception the JSON API answers (401, 403, 429)."""
    try:
        return await require(ctx, request, scope, key)
    except KeyRefused as exc:
        if exc.status == 429:
            raise TooManyRequestsException(exc.reason, headers={"Retry-After": str(exc.retry_after)}) from None
        if exc.status == 403:
            raise PermissionDeniedException(exc.reason) from None
        raise NotAuthorizedException(exc.reason) from None


def scope_guard(scope: str) -> Any:
    """A Litestar guard admitting only requests whose ``X-API-Key`` has ``scope``; the handler finds the
    integration in ``request.state.integration``. For routes only integrations use (webhook
    subscriptions: ``guards=[scope_guard("subscribe")]``)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        ctx: AppContext = connection.app.state["ctx"]
        connection.state.integration = await require_http(ctx, connection, scope)

    return guard
