"""The administrators' page of integrations' API keys, ``/admin/keys``: every key (name, scopes, when
made and by whom, last used, revoked), the form to issue one (the key is shown once, on the answer to
the form, never in a URL) and a revoke button per key. The checks and the audit live in
``store/api_keys.py``; the CLI ``wulian apikey create|list|revoke`` does the same."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from store import api_keys
from web.access import admins
from web.auth import CurrentUser
from web.context import AppContext
from web.errors import refusal
from web.i18n import language_of, translate

_MESSAGES = ("admin.keys.msg.revoked",)


class AdminKeyPages(Controller):
    """API keys, for administrators."""

    path = "/admin/keys"
    guards = [admins]  # every route: administrators only (web/access.py)

    async def _context(self, ctx: AppContext, user: CurrentUser, **extra: Any) -> dict[str, Any]:
        return {"user": user, "keys": await api_keys.list_keys(ctx.db), "scopes": api_keys.SCOPES,
                "defaults": api_keys.DEFAULT_SCOPES, "form": {}, "errors": [], "bad": "", "new_key": None,
                "msg": None, **extra}

    @get("/")
    async def overview(self, ctx: AppContext, user: CurrentUser, request: Request, msg: str | None = None
                       ) -> Response[Any]:
        """The keys and the form to issue one."""
        return Template("admin_keys.html", context=await self._context(
            ctx, user, msg=msg if msg in _MESSAGES else None))

    @post("/", status_code=200)
    async def create(self, ctx: AppContext, user: CurrentUser, request: Request) -> Response[Any]:
        """Issue a key: the answer shows it once (200); a refusal gives the form back (400)."""
        form = await request.form()
        name = form.get("name")
        name = name.strip() if isinstance(name, str) else ""
        scopes = [s for s in form.getall("scope") if isinstance(s, str)] if "scope" in form else []
        lang = language_of(request.cookies)
        try:
            if not scopes:
                raise api_keys.ApiKeyError("no_scope", "choose at least one scope")
            row, key = await api_keys.create_key(ctx.db, name, tuple(scopes), user.username)
        except api_keys.ApiKeyError as exc:
            context = await self._context(ctx, user, form={"name": name, "scopes": scopes},
                                          errors=[translate(lang, f"admin.keys.err.{exc.code}")],
                                          bad="scope" if exc.code in ("scope", "no_scope") else "name")
            return Template("admin_keys.html", context=context, status_code=400)
        return Template("admin_keys.html", context=await self._context(ctx, user, new_key=key, new_name=row.name))

    @post("/{name:str}/revoke", status_code=303)
    async def revoke(self, ctx: AppContext, user: CurrentUser, request: Request, name: str) -> Redirect:
        """Revoke a key: refused from now on (its row and name stay, for the audit)."""
        try:
            await api_keys.revoke_key(ctx.db, name, user.username)
        except api_keys.ApiKeyError:
            raise refusal(NotFoundException, "admin.keys.err.missing") from None
        return Redirect("/admin/keys?msg=admin.keys.msg.revoked", status_code=303)


ADMIN_KEY_CONTROLLERS = [AdminKeyPages]
