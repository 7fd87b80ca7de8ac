"""Login tokens (signed JWT), the current user, and unit scopes.

The API takes ``Authorization: Bearer <token>``; pages take the same token from an HttpOnly,
SameSite cookie (so API calls can never ride on a browser's cookie, and forms carry CSRF tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from litestar import Request
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException

from store import models, queries
from store.org import OrgTree
from store.timeutil import as_utc
from store.users import SUPERVISOR_ROLES, get_user
from web.context import AppContext
from workflows.types import Actor

SESSION_COOKIE = "wulian_session"
CITY_WIDE_ROLES = ("city_supervisor", "admin")


@dataclass
class CurrentUser:
    """The logged-in user and the set of unit codes they may see."""

    username: str
    display_name: str
    unit: str
    role: str
    scope: set[str]
    stationed_street: str | None = None

    @property
    def is_supervisor(self) -> bool:
        """Street or city supervisor (or admin)."""
        return self.role in SUPERVISOR_ROLES

    @property
    def is_admin(self) -> bool:
        """Administrator."""
        return self.role == "admin"

    def actor(self) -> Actor:
        """The actor recorded in timelines."""
        return Actor(username=self.username, display_name=self.display_name, unit=self.unit, role=self.role)

    def sees(self, *units: str | None) -> bool:
        """Whether any of ``units`` lies within the user's scope."""
        return any(u in self.scope for u in units if u)


def issue_token(ctx: AppContext, username: str) -> str:
    """A signed token for ``username`` valid for the configured time."""
    now = datetime.now(UTC)
    claims = {"sub": username, "iat": now, "exp": now + timedelta(hours=ctx.settings.token_ttl_hours)}
    return jwt.encode(claims, ctx.settings.secret(), algorithm="HS256")


def read_token(ctx: AppContext, token: str) -> tuple[str, datetime] | None:
    """The username in a valid token and when the token was issued, else None."""
    try:
        claims = jwt.decode(token, ctx.settings.secret(), algorithms=["HS256"], options={"require": ["iat"]})
    except jwt.PyJWTError:
        return None
    sub, iat = claims.get("sub"), claims.get("iat")
    if not isinstance(sub, str) or not isinstance(iat, int | float):
        return None
    return sub, datetime.fromtimestamp(iat, UTC)


def scope_of(user: models.User, org: OrgTree) -> set[str]:
    """Unit codes whose events and tasks ``user`` may see."""
    if user.role in CITY_WIDE_ROLES:
        return set(org.units)
    if user.role == "street_supervisor":
        street = org.street_of(user.unit)
        return org.descendants(street) | {user.unit} if street else {user.unit}
    return org.descendants(user.unit)


async def resolve_user(ctx: AppContext, request: Request, *, api: bool) -> CurrentUser | None:
    """The user of this request (bearer token for the API, session cookie for pages)."""
    token: str | None = None
    if api:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
    else:
        token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    read = read_token(ctx, token)
    if read is None:
        return None
    username, issued = read
    user = await get_user(ctx.db, username)
    if user is None or not user.active:
        return None
    if user.sessions_valid_after is not None and issued < as_utc(user.sessions_valid_after):
        return None  # issued before a password reset
    org = await ctx.org()
    return CurrentUser(
        username=user.username,
        display_name=user.display_name,
        unit=user.unit,
        role=user.role,
        scope=scope_of(user, org),
        stationed_street=user.stationed_street,
    )


async def require_api_user(ctx: AppContext, request: Request) -> CurrentUser:
    """The API user, or 401."""
    user = await resolve_user(ctx, request, api=True)
    if user is None:
        raise NotAuthorizedException("a valid 'Authorization: Bearer <token>' header is required")
    return user


def require_admin(user: CurrentUser) -> None:
    """403 unless ``user`` is an administrator."""
    if not user.is_admin:
        raise PermissionDeniedException("administrators only")


async def visible_event(
    ctx: AppContext, user: CurrentUser, event_id: str
) -> tuple[models.Event, list[models.Task]]:
    """The event and its tasks when ``user`` may see it: 404 when unknown, 403 when out of scope."""
    event = await queries.get_event(ctx.db, event_id)
    if event is None:
        raise NotFoundException(f"event {event_id} does not exist")
    tasks = await queries.event_tasks(ctx.db, event_id)
    if not user.sees(event.unit, event.grid, event.community, event.street, *(t.unit for t in tasks)):
        raise PermissionDeniedException("this event is outside your unit's scope")
    return event, tasks
