"""Who may reach a route: Litestar guards for authentication and roles, and the ``user`` dependency.

A route declares what it needs once, on its decorator or controller (``guards=[signed_in]``,
``[supervisors]``, ``[admins]``), and takes the user as a parameter (``user: CurrentUser``); no handler
checks ``if user is None`` itself. The user is resolved once per request (web.auth.resolve_user: the
bearer token on ``/api``, the session cookie on pages) and kept on the connection's state.

Refusals: without a valid login a page answers with a redirect to ``/login`` (302 on GET, 303
otherwise; web/app.py maps :class:`LoginRequired`), the API with 401; a role the route does not
admit gets 403. What each role may do on an event is the action policy's question
(``workflows.policy``), not a guard's: guards only say who may reach a route at all.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from web.auth import CurrentUser, resolve_user
from web.context import AppContext
from web.errors import refusal
from wulian.logs import bind

#: Where the resolved user is kept on the connection's state (None: resolved, nobody logged in).
_STATE_KEY = "wulian_user"
_UNRESOLVED = object()


class LoginRequired(NotAuthorizedException):
    """No valid login: 401 for the API, a redirect to the login page for pages (web/app.py)."""


def is_api(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether a request is the JSON API's (bearer token), not a page's (session cookie)."""
    return connection.url.path.startswith("/api")


def app_context(connection: ASGIConnection[Any, Any, Any, Any]) -> AppContext:
    """The application's context (store, Temporal client, settings), kept on the app's state."""
    ctx = connection.app.state.get("ctx")
    assert isinstance(ctx, AppContext), "create_app puts the AppContext on app.state"
    return ctx


async def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser | None:
    """The logged-in user of this request or None, resolved once per request."""
    found = connection.state.get(_STATE_KEY, _UNRESOLVED)
    if found is _UNRESOLVED:
        found = await resolve_user(app_context(connection), connection, api=is_api(connection))  # type: ignore[arg-type]
        connection.state[_STATE_KEY] = found
        if found is not None:
            bind(actor=found.username)  # the request's log lines name who is logged in from here on
    assert found is None or isinstance(found, CurrentUser)
    return found


def resolved_user(connection: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser | None:
    """The user this request was already resolved to (None when nobody is, or not yet): for error
    pages, which show the navigation of whoever is logged in without resolving anything again."""
    found = connection.state.get(_STATE_KEY)
    return found if isinstance(found, CurrentUser) else None


async def _required(connection: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser:
    user = await current_user(connection)
    if user is None:
        raise LoginRequired("a valid 'Authorization: Bearer <token>' header is required" if is_api(connection)
                            else "log in first")
    return user


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: any logged-in user."""
    await _required(connection)


async def supervisors(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: street and city supervisors (and administrators)."""
    if not (await _required(connection)).is_supervisor:
        raise refusal(PermissionDeniedException, "error.supervisors_only")


async def admins(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: administrators."""
    if not (await _required(connection)).is_admin:
        raise refusal(PermissionDeniedException, "error.admins_only")


async def provide_user(request: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser:
    """The ``user`` parameter of a handler: the logged-in user (its guard has admitted them)."""
    return await _required(request)


async def provide_optional_user(request: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser | None:
    """The ``viewer`` parameter of a handler open to everyone: the logged-in user or None."""
    return await current_user(request)
