"""Administration pages for the organisation (read-only for now): the unit tree (streets →
communities → grids, departments with the "1+X" stationed flag, command centres), users and roles
filtered by unit, and the dispatched cadres with the street they are stationed at. Administrators only."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect, Template

from store import models, queries
from store.users import ROLES
from web.auth import CurrentUser, resolve_user
from web.context import AppContext

#: Order of unit kinds in the tree's top level.
_KIND_ORDER = {"city": 0, "command_centre": 1, "street": 2, "community": 3, "grid": 4, "department": 5}


async def _admin(ctx: AppContext, request: Request) -> CurrentUser | None:
    user = await resolve_user(ctx, request, api=False)
    if user is not None and not user.is_admin:
        raise PermissionDeniedException("administrators only")
    return user


def _sorted(units: list[models.Unit]) -> list[models.Unit]:
    return sorted(units, key=lambda u: (_KIND_ORDER.get(u.kind, 9), u.code))


class AdminOrgPages(Controller):
    """The organisation and its people, for administrators (read-only)."""

    path = "/admin"

    @get("/org")
    async def org(self, ctx: AppContext, request: Request) -> Response[Any]:
        """The unit tree, departments and command centres."""
        user = await _admin(ctx, request)
        if user is None:
            return Redirect("/login")
        org = await ctx.org()
        units = list(org.units.values())
        children = {code: _sorted(kids) for code, kids in org.children.items()}
        counts: dict[str, int] = {}
        for person in await queries.users(ctx.db):
            counts[person.unit] = counts.get(person.unit, 0) + 1
        return Template("admin_org.html", context={
            "user": user,
            "streets": _sorted([u for u in units if u.kind == "street"]),
            "departments": _sorted([u for u in units if u.kind == "department"]),
            "centres": _sorted([u for u in units if u.kind == "command_centre"]),
            "children": children, "counts": counts,
        })

    @get("/users")
    async def users(self, ctx: AppContext, request: Request, unit: str | None = None,
                    role: str | None = None) -> Response[Any]:
        """Users and roles, optionally of one unit and/or one role; the dispatched cadres."""
        user = await _admin(ctx, request)
        if user is None:
            return Redirect("/login")
        org = await ctx.org()
        unit = (unit or "").strip()[:32] or None
        role = role if role in ROLES else None
        people = await queries.users(ctx.db, unit)
        if role:
            people = [p for p in people if p.role == role]
        cadres = [p for p in await queries.users(ctx.db) if p.role == "dispatched_cadre"]
        return Template("admin_users.html", context={
            "user": user, "people": people, "cadres": cadres, "unit": unit, "role": role, "roles": ROLES,
            "units": _sorted([u for u in org.units.values()]), "org": org.units,
        })


ADMIN_ORG_CONTROLLERS = [AdminOrgPages]
