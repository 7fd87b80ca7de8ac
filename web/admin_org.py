"""Administration pages for the organisation and its people, administrators only:

- ``/admin/org``: the unit tree (streets → communities → grids, departments with the "1+X" stationed
  flag, command centres); add a unit, edit a unit's names, coordinates, keywords or flag
  (``/admin/org/units/<code>``). Units are never deleted nor moved.
- ``/admin/users``: users and roles filtered by unit and role, the dispatched cadres; create a user;
  per user (``/admin/users/<username>``) change role, unit and name, reset the password, deactivate
  or reactivate, station a cadre at a street or un-station them.

Every form carries the CSRF token; the checks and the audit live in ``store.admin_org``. A refused
change gives the form back, filled in, with the reason in the visitor's language and HTTP 400; a
change redirects (303) with a message. After a unit changes, the web process's cached organisation
tree is dropped so pages and scopes see it at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from litestar.response import Redirect, Template

from store import admin_people, admin_units, models, queries
from store.admin_common import AdminError
from store.admin_units import UnitDraft
from store.users import ROLES, get_user
from web.access import admins
from web.auth import CurrentUser
from web.context import AppContext
from web.errors import refusal
from web.i18n import language_of, translate

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

#: Order of unit kinds in the tree's top level.
_KIND_ORDER = {"city": 0, "command_centre": 1, "street": 2, "community": 3, "grid": 4, "department": 5}



def _sorted(units: list[models.Unit]) -> list[models.Unit]:
    return sorted(units, key=lambda u: (_KIND_ORDER.get(u.kind, 9), u.code))


def _field(data: dict[str, str], name: str) -> str:
    """A form field as typed (never cut: too long a value is refused by the store's checks)."""
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _flash(msg: str | None) -> str | None:
    """Only this module's own success messages are shown back (no text from the query string)."""
    return msg if msg and msg.startswith("admin.msg.") else None


#: The label of each form field, to name it in a refusal.
_FIELD_LABELS = {
    "code": "admin.org.code", "kind": "admin.org.kind", "parent": "admin.org.parent",
    "name_zh": "admin.org.name_zh", "name_en": "admin.org.name_en", "lat": "admin.org.lat", "lon": "admin.org.lon",
    "address_keywords": "admin.org.keywords", "stationed": "admin.org.stationed",
    "username": "admin.users.username", "display_name": "admin.users.name", "unit": "admin.users.unit",
    "role": "admin.users.role", "password": "admin.users.password", "street": "admin.users.stationed",
}


def _error(request: Request, exc: AdminError) -> dict[str, Any]:
    """The refusal in the visitor's language, with the field at fault (``bad``, for aria-invalid)."""
    lang = language_of(request.cookies)
    values = dict(exc.values)
    values.setdefault("field", translate(lang, _FIELD_LABELS.get(exc.field, exc.field)))
    if "kind" in values:
        values["kind"] = translate(lang, f"admin.kind.{values['kind']}")
    return {"errors": [translate(lang, exc.key, **values)], "bad": exc.field}


def _unit_draft(data: dict[str, str], *, new: bool) -> UnitDraft:
    """A unit as typed in the form (numbers parsed here; everything else checked by the store)."""
    draft = UnitDraft(
        name_zh=_field(data, "name_zh"), name_en=_field(data, "name_en"),
        lat=admin_units.parse_coordinate(_field(data, "lat"), "lat"),
        lon=admin_units.parse_coordinate(_field(data, "lon"), "lon"),
        address_keywords=admin_units.parse_keywords(_field(data, "address_keywords")),
        stationed=bool(_field(data, "stationed")),
    )
    if new:
        draft.code = _field(data, "code").strip().upper()
        draft.kind = _field(data, "kind").strip()
        draft.parent = _field(data, "parent").strip() or None
    return draft


class AdminOrgPages(Controller):
    """The organisation and its people, for administrators."""

    path = "/admin"
    guards = [admins]  # every route: administrators only (web/access.py)

    # ---- units ---------------------------------------------------------------------------------

    async def _org_context(self, ctx: AppContext, user: CurrentUser) -> dict[str, Any]:
        org = await ctx.org()
        units = list(org.units.values())
        counts: dict[str, int] = {}
        for person in await queries.users(ctx.db):
            counts[person.unit] = counts.get(person.unit, 0) + 1
        return {
            "user": user,
            "streets": _sorted([u for u in units if u.kind == "street"]),
            "communities": _sorted([u for u in units if u.kind == "community"]),
            "departments": _sorted([u for u in units if u.kind == "department"]),
            "centres": _sorted([u for u in units if u.kind == "command_centre"]),
            "children": {code: _sorted(kids) for code, kids in org.children.items()},
            "counts": counts, "kinds": admin_units.UNIT_KINDS, "form": {}, "errors": [], "bad": "",
        }

    @get("/org")
    async def org(self, ctx: AppContext, user: CurrentUser, request: Request, msg: str | None = None) -> Response[Any]:
        """The unit tree, departments and command centres, and the form to add a unit."""
        context = await self._org_context(ctx, user)
        context["msg"] = _flash(msg)
        return Template("admin_org.html", context=context)

    @post("/org/units", status_code=303)
    async def add_unit(self, ctx: AppContext, user: CurrentUser, request: Request, data: Form) -> Response[Any]:
        """Add a unit; the form comes back with the reason (400) when it is refused."""
        try:
            unit = await admin_units.create_unit(ctx.db, user.username, _unit_draft(data, new=True))
        except AdminError as exc:
            context = await self._org_context(ctx, user)
            context.update(_error(request, exc), form=data)
            return Template("admin_org.html", context=context, status_code=400)
        ctx.invalidate_org()
        return Redirect(f"/admin/org/units/{unit.code}?msg=admin.msg.unit_created", status_code=303)

    async def _unit_context(self, ctx: AppContext, user: CurrentUser, code: str) -> dict[str, Any]:
        org = await ctx.org()
        unit = org.units.get(code)
        if unit is None:
            ctx.invalidate_org()  # perhaps added by another web process since this one read the tree
            org = await ctx.org()
            unit = org.units.get(code)
        if unit is None:
            raise refusal(NotFoundException, "error.unit_missing", code=code)
        parent = org.units.get(unit.parent) if unit.parent else None
        return {"user": user, "unit": unit, "parent": parent, "children": _sorted(org.children.get(code, [])),
                "people": await queries.users(ctx.db, code), "errors": [], "bad": "", "form": {
                    "name_zh": unit.name_zh, "name_en": unit.name_en,
                    "lat": "" if unit.lat is None else str(unit.lat),
                    "lon": "" if unit.lon is None else str(unit.lon),
                    "address_keywords": "、".join(unit.address_keywords),
                    "stationed": "on" if unit.stationed else "",
                }}

    @get("/org/units/{code:str}")
    async def unit(self, ctx: AppContext, user: CurrentUser, request: Request, code: str,
                   msg: str | None = None) -> Response[Any]:
        """One unit: what it is, its people and children, and the form to edit it."""
        context = await self._unit_context(ctx, user, code)
        context["msg"] = _flash(msg)
        return Template("admin_unit.html", context=context)

    @post("/org/units/{code:str}", status_code=303)
    async def edit_unit(self, ctx: AppContext, user: CurrentUser, request: Request, code: str,
                        data: Form) -> Response[Any]:
        """Change a unit's names, coordinates and keywords (grids) or "1+X" flag (departments)."""
        try:
            await admin_units.update_unit(ctx.db, user.username, code, _unit_draft(data, new=False))
        except LookupError:
            raise refusal(NotFoundException, "error.unit_missing", code=code) from None
        except AdminError as exc:
            context = await self._unit_context(ctx, user, code)
            context.update(_error(request, exc), form=data)
            return Template("admin_unit.html", context=context, status_code=400)
        ctx.invalidate_org()
        return Redirect(f"/admin/org/units/{code}?msg=admin.msg.unit_saved", status_code=303)

    # ---- users ---------------------------------------------------------------------------------

    async def _users_context(self, ctx: AppContext, user: CurrentUser, unit: str | None = None,
                             role: str | None = None) -> dict[str, Any]:
        org = await ctx.org()
        people = await queries.users(ctx.db, unit)
        if role:
            people = [p for p in people if p.role == role]
        cadres = [p for p in await queries.users(ctx.db) if p.role == "dispatched_cadre"]
        return {
            "user": user, "people": people, "cadres": cadres, "unit": unit, "role": role, "roles": ROLES,
            "units": _sorted(list(org.units.values())), "org": org.units,
            "form": {}, "errors": [], "bad": "",
        }

    @get("/users")
    async def users(self, ctx: AppContext, user: CurrentUser, request: Request, unit: str | None = None,
                    role: str | None = None, msg: str | None = None) -> Response[Any]:
        """Users and roles, optionally of one unit and/or one role; the dispatched cadres; the form
        to add a user."""
        unit = (unit or "").strip()[:32] or None
        role = role if role in ROLES else None
        context = await self._users_context(ctx, user, unit, role)
        context["msg"] = _flash(msg)
        return Template("admin_users.html", context=context)

    @post("/users", status_code=303)
    async def add_user(self, ctx: AppContext, user: CurrentUser, request: Request, data: Form) -> Response[Any]:
        """Add a user with an initial password; the form comes back with the reason (400) when refused."""
        try:
            person = await admin_people.create_user(
                ctx.db, user.username, username=_field(data, "username"), display_name=_field(data, "display_name"),
                unit=_field(data, "unit"), role=_field(data, "role"), password=_field(data, "password"),
            )
        except AdminError as exc:
            context = await self._users_context(ctx, user)
            form = {k: v for k, v in data.items() if k != "password"}  # never sent back to the browser
            context.update(_error(request, exc), form=form)
            return Template("admin_users.html", context=context, status_code=400)
        return Redirect(f"/admin/users/{person.username}?msg=admin.msg.user_created", status_code=303)

    async def _person_context(self, ctx: AppContext, user: CurrentUser, username: str) -> dict[str, Any]:
        person = await get_user(ctx.db, username)
        if person is None:
            raise refusal(NotFoundException, "error.user_missing", username=username)
        org = await ctx.org()
        return {
            "user": user, "person": person, "roles": ROLES, "units": _sorted(list(org.units.values())),
            "org": org.units, "streets": _sorted([u for u in org.units.values() if u.kind == "street"]),
            "errors": [], "bad": "", "form": {"display_name": person.display_name, "unit": person.unit,
                                              "role": person.role, "street": person.stationed_street or "",
                                              "party_member": "1" if person.party_member else ""},
        }

    @get("/users/{username:str}")
    async def person(self, ctx: AppContext, user: CurrentUser, request: Request, username: str,
                     msg: str | None = None) -> Response[Any]:
        """One user: role and unit, password, active, station (dispatched cadres)."""
        context = await self._person_context(ctx, user, username)
        context["msg"] = _flash(msg)
        return Template("admin_user.html", context=context)

    async def _person_change(self, ctx: AppContext, user: CurrentUser, request: Request, username: str, data: Form,
                             action: str) -> Response[Any]:
        """Apply one of the per-user forms; 303 back with a message, or the page with the reason (400)."""
        try:
            if action == "profile":
                await admin_people.update_user(ctx.db, user.username, username, role=_field(data, "role"),
                                            unit=_field(data, "unit"), display_name=_field(data, "display_name"),
                                            party_member=_field(data, "party_member") == "1")
            elif action == "password":
                await admin_people.reset_password(ctx.db, user.username, username, _field(data, "password"))
            elif action == "active":
                await admin_people.set_active(ctx.db, user.username, username, _field(data, "active") == "1")
            else:
                await admin_people.station(ctx.db, user.username, username, _field(data, "street"))
        except LookupError:
            raise refusal(NotFoundException, "error.user_missing", username=username) from None
        except AdminError as exc:
            context = await self._person_context(ctx, user, username)
            context.update(_error(request, exc))
            if action in ("profile", "station"):
                context["form"].update({k: v for k, v in data.items() if k in ("display_name", "unit", "role",
                                                                                "street")})
                if action == "profile":
                    context["form"]["party_member"] = _field(data, "party_member")
            return Template("admin_user.html", context=context, status_code=400)
        return Redirect(f"/admin/users/{username}?msg=admin.msg.{action}_saved", status_code=303)

    @post("/users/{username:str}", status_code=303)
    async def edit_user(self, ctx: AppContext, user: CurrentUser, request: Request,
                        username: str, data: Form) -> Response[Any]:
        """Change a user's display name, role and unit (an administrator cannot demote themselves)."""
        return await self._person_change(ctx, user, request, username, data, "profile")

    @post("/users/{username:str}/password", status_code=303)
    async def password(self, ctx: AppContext, user: CurrentUser, request: Request,
                       username: str, data: Form) -> Response[Any]:
        """Set a new password (at least 10 characters)."""
        return await self._person_change(ctx, user, request, username, data, "password")

    @post("/users/{username:str}/active", status_code=303)
    async def active(self, ctx: AppContext, user: CurrentUser, request: Request,
                     username: str, data: Form) -> Response[Any]:
        """Deactivate (``active=0``) or reactivate (``active=1``) a user; not oneself."""
        return await self._person_change(ctx, user, request, username, data, "active")

    @post("/users/{username:str}/station", status_code=303)
    async def station(self, ctx: AppContext, user: CurrentUser, request: Request,
                      username: str, data: Form) -> Response[Any]:
        """Station a dispatched cadre at a street (``street``), or un-station them (empty)."""
        return await self._person_change(ctx, user, request, username, data, "station")


ADMIN_ORG_CONTROLLERS = [AdminOrgPages]
