"""Login lockouts seen and lifted by supervisors: the page ``/console/lockouts`` (linked from the
console and the admin pages) and the API ``GET /api/lockouts``, ``POST /api/lockouts/lift``.

The city supervisor and administrators see every lockout. A street supervisor sees a pair lockout or a
username's delay only when the username is one of the users of their scope (their street's units), and
an address lockout only when every username tried from that address is one of them. Only what one
sees can be lifted; a lift forgets the failures behind that one lockout (``LoginLimiter.lift``) and is
audited (``login_lift``) with its actor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException, ValidationException
from litestar.params import Body
from litestar.response import Redirect, Template
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import col, select

from store import models
from store.users import audit
from web.access import signed_in
from web.answers import LiftedAnswer, LockoutAnswer, LockoutsAnswer
from web.auth import CITY_WIDE_ROLES, CurrentUser
from web.context import AppContext
from web.errors import refusal, validation_refusal
from web.ratelimit import FIELD_MAX, Lockout, LoginLimiter
from web.views import iso

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

PAGE = "/console/lockouts"


class LiftIn(BaseModel):
    """Which lockout to lift (the page's form and ``POST /api/lockouts/lift``): ``kind`` ``pair`` with
    username and address, ``address`` with the address, ``user`` with the username."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pair", "address", "user"]
    username: str = Field(default="", max_length=FIELD_MAX)
    address: str = Field(default="", max_length=FIELD_MAX)

    @field_validator("username")
    @classmethod
    def _fold(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("address")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    def key(self) -> tuple[str, str, str]:
        """The lockout's key as in :attr:`Lockout.key` (the fields a kind does not use are ignored)."""
        return (self.kind, self.username if self.kind != "address" else "",
                self.address if self.kind != "user" else "")


async def _units_of(ctx: AppContext, usernames: Iterable[str]) -> dict[str, str]:
    """The unit of each existing user among ``usernames``."""
    names = sorted(set(usernames))
    if not names:
        return {}
    async with ctx.db.session() as session:
        rows = (await session.exec(select(models.User.username, models.User.unit).where(
            col(models.User.username).in_(names)))).all()
    return {name.lower(): unit for name, unit in rows}


async def visible_lockouts(ctx: AppContext, user: CurrentUser) -> tuple[list[Lockout], list[Lockout]]:
    """The current lockouts ``user`` may see and lift, and all of them."""
    if not user.is_supervisor:
        raise refusal(PermissionDeniedException, "error.supervisors_only")
    everything = await LoginLimiter(ctx.db).lockouts()
    if user.role in CITY_WIDE_ROLES:
        return everything, everything
    units = await _units_of(ctx, [n for lock in everything for n in (lock.username, *lock.usernames) if n])

    def ours(name: str) -> bool:
        return name in units and units[name] in user.scope

    seen = [lock for lock in everything
            if (ours(lock.username) if lock.kind != "address" else bool(lock.usernames) and all(
                ours(name) for name in lock.usernames))]
    return seen, everything


async def lift(ctx: AppContext, user: CurrentUser, wanted: LiftIn) -> Lockout:
    """Lift one current lockout that ``user`` sees: 404 when there is none, 403 when it is outside
    their scope; audited as ``login_lift``."""
    seen, everything = await visible_lockouts(ctx, user)
    key = wanted.key()
    lock = next((lock for lock in seen if lock.key == key), None)
    if lock is None:
        if any(other.key == key for other in everything):
            raise refusal(PermissionDeniedException, "error.lockout_scope")
        raise refusal(NotFoundException, "error.lockout_missing")
    rows = await LoginLimiter(ctx.db).lift(*key)
    target = f"{lock.kind}:{lock.username}@{lock.address}"
    await audit(ctx.db, user.username, "login_lift", target=target[:200],
                detail=f"failures={lock.failures}, until={lock.until.isoformat()}, rows={rows}")
    return lock


def lockout_view(lock: Lockout) -> LockoutAnswer:
    """A lockout as JSON."""
    return {"kind": lock.kind, "username": lock.username, "address": lock.address, "failures": lock.failures,
            "until": iso(lock.until), "usernames": list(lock.usernames), "addresses": list(lock.addresses)}


class LockoutPages(Controller):
    """The lockouts page of supervisors and administrators."""

    @get(PAGE, guards=[signed_in])
    async def lockouts(self, ctx: AppContext, user: CurrentUser, request: Request,
                       msg: str | None = None) -> Response[Any]:
        """Current lockouts and delays, each with a lift button."""
        seen, _ = await visible_lockouts(ctx, user)
        shown = msg if msg in ("lockouts.msg.lifted", "lockouts.msg.gone") else None  # only our own messages
        return Template("lockouts.html", context={"user": user, "lockouts": seen, "msg": shown})

    @post(f"{PAGE}/lift", status_code=303, guards=[signed_in])
    async def lift(self, ctx: AppContext, user: CurrentUser, request: Request, data: Form) -> Response[Any]:
        """Lift one lockout (CSRF-protected form); back to the page with a message (also when it has
        ended meanwhile); 403 outside the supervisor's scope."""
        try:
            wanted = LiftIn.model_validate({k: data.get(k, "") for k in ("kind", "username", "address")})
        except ValidationError as exc:
            raise validation_refusal(ValidationException, exc, {k: f"lockouts.{k}" for k in LiftIn.model_fields}) \
                from None
        try:
            await lift(ctx, user, wanted)
        except NotFoundException:  # ended, or lifted by someone else meanwhile
            return Redirect(f"{PAGE}?msg=lockouts.msg.gone", status_code=303)
        return Redirect(f"{PAGE}?msg=lockouts.msg.lifted", status_code=303)


class LockoutApi(Controller):
    """The same for API clients."""

    path = "/api/lockouts"

    @get("/", guards=[signed_in])
    async def list_lockouts(self, ctx: AppContext, user: CurrentUser, request: Request) -> LockoutsAnswer:
        """Current lockouts and delays within the caller's scope (supervisors and administrators)."""
        seen, _ = await visible_lockouts(ctx, user)
        return {"lockouts": [lockout_view(lock) for lock in seen]}

    @post("/lift", status_code=200, guards=[signed_in])
    async def lift_lockout(self, ctx: AppContext, user: CurrentUser, request: Request, data: LiftIn) -> LiftedAnswer:
        """Lift one current lockout within the caller's scope (404 when there is none, 403 outside it)."""
        return {"lifted": lockout_view(await lift(ctx, user, data))}


LOCKOUT_CONTROLLERS = [LockoutPages, LockoutApi]
