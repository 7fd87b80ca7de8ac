"""Login tokens (signed JWT), the current user, and unit scopes.

The API takes ``Authorization: Bearer <token>``; pages take the same token from an HttpOnly,
SameSite cookie (so API calls can never ride on a browser's cookie, and forms carry CSRF tokens).
Every token carries an expiry and a session id (``jti``) that must exist in the store
(``store/sessions.py``): logout, a password reset or a deactivation revoke tokens on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from litestar import Request
from litestar.exceptions import NotFoundException, PermissionDeniedException

from store import models, queries, sessions
from store.org import OrgTree
from store.timeutil import as_utc
from web.context import AppContext
from web.errors import refusal
from workflows import policy
from workflows.policy import CITY_WIDE_ROLES
from workflows.types import Actor

SESSION_COOKIE = "wulian_session"
#: Longest session id a token may carry (``models.LoginSession.jti``); longer ones are refused unread.
MAX_JTI = 64


@dataclass
class CurrentUser:
    """The logged-in user and the set of unit codes they may see."""

    username: str
    display_name: str
    unit: str
    role: str
    scope: set[str]
    stationed_street: str | None = None
    session_id: str = ""  # the jti of the token this request came with (logout revokes it)

    @property
    def is_supervisor(self) -> bool:
        """Street or city supervisor (or admin)."""
        return policy.is_supervisor(self.role)

    @property
    def is_admin(self) -> bool:
        """Administrator."""
        return policy.is_admin(self.role)

    def actor(self) -> Actor:
        """The actor recorded in timelines."""
        return Actor(username=self.username, display_name=self.display_name, unit=self.unit, role=self.role)

    def sees(self, *units: str | None) -> bool:
        """Whether any of ``units`` lies within the user's scope."""
        return any(u in self.scope for u in units if u)


async def issue_token(ctx: AppContext, username: str, *, via: str = "web") -> str:
    """A signed token for ``username`` valid for the configured time, recorded as a session in the
    store (its ``jti``) so that it can be revoked; ``via`` is ``web`` (cookie) or ``api`` (bearer)."""
    row = await sessions.open_session(ctx.db, username, timedelta(hours=ctx.settings.token_ttl_hours), via=via)
    claims = {"sub": username, "iat": row.issued_at, "exp": row.expires_at, "jti": row.jti}
    return jwt.encode(claims, ctx.settings.secret(), algorithm="HS256")


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says: who, when it was issued, and its session id."""

    username: str
    issued: datetime
    jti: str


def read_token(ctx: AppContext, token: str) -> TokenClaims | None:
    """The claims of a well-signed, unexpired token that has a subject, an issue time, an expiry and a
    session id, else None. (Whether its session still exists is :func:`resolve_user`'s question.)"""
    try:
        claims = jwt.decode(token, ctx.settings.secret(), algorithms=["HS256"],
                            options={"require": ["sub", "iat", "exp", "jti"]})
    except jwt.PyJWTError:
        return None
    sub, iat, jti = claims.get("sub"), claims.get("iat"), claims.get("jti")
    if not isinstance(sub, str) or not isinstance(iat, int | float) or not isinstance(jti, str) or not jti:
        return None
    if len(jti) > MAX_JTI:
        return None
    try:
        issued = datetime.fromtimestamp(iat, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return TokenClaims(username=sub, issued=issued, jti=jti)


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
    token = request_token(request, api=api)
    if not token:
        return None
    claims = read_token(ctx, token)
    if claims is None:
        return None
    found = await sessions.session_user(ctx.db, claims.jti)  # one query: the session and its user
    if found is None:
        return None  # logged out, ended by a password reset or a deactivation, or never issued here
    row, user = found
    if row.username != claims.username or not sessions.is_live(row) or not user.active:
        return None
    if user.sessions_valid_after is not None and claims.issued < as_utc(user.sessions_valid_after):
        return None  # issued before a password reset or a deactivation
    org = await ctx.org()
    return CurrentUser(
        username=user.username,
        display_name=user.display_name,
        unit=user.unit,
        role=user.role,
        scope=scope_of(user, org),
        stationed_street=user.stationed_street,
        session_id=row.jti,
    )


def request_token(request: Request, *, api: bool) -> str | None:
    """The token a request carries: the bearer token for the API, the session cookie for pages."""
    if not api:
        return request.cookies.get(SESSION_COOKIE) or None
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return header[7:].strip() or None


async def end_session(ctx: AppContext, user: CurrentUser) -> bool:
    """Revoke the session ``user`` came with (logout, audited); its token is refused from now on.
    False when it had ended already."""
    return await sessions.end_session(ctx.db, user.session_id) is not None




async def visible_event(
    ctx: AppContext, user: CurrentUser, event_id: str
) -> tuple[models.Event, list[models.Task]]:
    """The event and its tasks when ``user`` may see it: 404 when unknown, 403 when out of scope."""
    event = await queries.get_event(ctx.db, event_id)
    if event is None:
        raise refusal(NotFoundException, "error.event_missing", event_id=event_id)
    tasks = await queries.event_tasks(ctx.db, event_id)
    if not user.sees(event.unit, event.grid, event.community, event.street, *(t.unit for t in tasks)):
        raise refusal(PermissionDeniedException, "error.event_scope")
    return event, tasks
