"""Who a task may be reassigned to: the active users of a unit, for the reassign pickers of the event
page and of the console's bulk form.

``GET /api/units/{code}/users`` answers an API client (a supervisor, for a unit within their scope).
The pages render the same lists, one group per unit in the supervisor's scope, so that the picker
works without script; ``web/static/app.js`` shows only the group of the unit chosen (the API takes
only bearer tokens, never the pages' cookie, so the pages' script does not call it). Whatever is
picked, ``commands.check_assignee`` checks it again when the form is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, get
from litestar.exceptions import NotFoundException, PermissionDeniedException

from store import models, queries
from web.access import supervisors
from web.auth import CurrentUser
from web.context import AppContext


@dataclass
class UnitUser:
    """A person a task may be assigned to."""

    username: str
    display_name: str
    role: str


@dataclass
class UnitUsers:
    """The active users of one unit."""

    unit: str
    users: list[UnitUser]


def _picked(user: models.User) -> UnitUser:
    return UnitUser(username=user.username, display_name=user.display_name, role=user.role)


async def active_users(ctx: AppContext, unit: str) -> list[UnitUser]:
    """The active users of ``unit``, by username (those ``check_assignee`` accepts)."""
    return [_picked(u) for u in await queries.users(ctx.db, unit) if u.active and u.unit == unit]


async def users_by_unit(ctx: AppContext, user: CurrentUser, units: list[models.Unit]) -> dict[str, list[UnitUser]]:
    """The active users of each of ``units`` that a supervisor may reassign to (their scope), one query."""
    if not user.is_supervisor:
        return {}
    wanted = {u.code for u in units if user.sees(u.code)}
    found: dict[str, list[UnitUser]] = {}
    for person in await queries.users(ctx.db):
        if person.active and person.unit in wanted:
            found.setdefault(person.unit, []).append(_picked(person))
    return found


async def unit_users_for(ctx: AppContext, user: CurrentUser, code: str) -> UnitUsers:
    """The active users of a unit within the supervisor's scope: 403 outside it or for other roles,
    404 for an unknown unit."""
    if not user.is_supervisor:
        raise PermissionDeniedException("supervisors only")
    org = await ctx.org()
    if code not in org.units:
        raise NotFoundException(f"unknown unit '{code[:40]}'")
    if not user.sees(code):
        raise PermissionDeniedException(f"unit {code} is outside your scope")
    return UnitUsers(unit=code, users=await active_users(ctx, code))


class UnitUsersController(Controller):
    """The reassign picker's data (JSON API, supervisors)."""

    @get("/api/units/{code:str}/users", guards=[supervisors])
    async def api_unit_users(self, ctx: AppContext, user: CurrentUser, code: str) -> UnitUsers:
        """The active users of a unit within the supervisor's scope (403 outside it, 404 for an unknown unit)."""
        return await unit_users_for(ctx, user, code)


UNIT_USER_CONTROLLERS = [UnitUsersController]
