"""The command-centre console: counts per unit, the queues that need a supervisor, bulk overrides."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect, Template

from store import queries
from store.timeutil import utcnow
from web import commands
from web.context import AppContext
from web.errors import refusal, refusal_text
from web.event_pages import units_for_forms
from web.i18n import language_of, translate
from web.page_forms import form_text, form_texts, page_user, with_query

BULK_ACTIONS = ("reassign", "force_escalate", "pause", "resume", "void", "close")
MAX_BULK = 200


class ConsolePages(Controller):
    """The console, for supervisors."""

    @get("/console")
    async def console(self, ctx: AppContext, request: Request, msg: str | None = None, error: str | None = None,
                      ok: int | None = None, total: int | None = None) -> Response[Any]:
        """The command-centre console: counts per unit and the queues that need a supervisor."""
        user = await page_user(ctx, request)
        if user is None:
            return Redirect("/login")
        if not user.is_supervisor:
            raise refusal(PermissionDeniedException, "error.supervisors_only")
        data = await queries.console(ctx.db, user.scope, utcnow())
        org = await ctx.org()
        forms = await units_for_forms(ctx, user)
        bulk = {"ok": ok, "total": total} if msg == "msg.bulk_done" and ok is not None and total is not None else None
        return Template("console.html", context={
            "user": user, "msg": None if bulk else msg, "error": error, "bulk": bulk, "q": data,
            "org": org.units, "now": utcnow(), "bulk_actions": BULK_ACTIONS, **forms,
        })

    @post("/console/bulk", status_code=303)
    async def bulk(self, ctx: AppContext, request: Request) -> Redirect:
        """One override on the selected events; each is tried, failures are reported with their reasons."""
        user = await page_user(ctx, request)
        if user is None:
            return Redirect("/login", status_code=303)
        if not user.is_supervisor:
            raise refusal(PermissionDeniedException, "error.supervisors_only")
        form = await request.form()
        event_ids = form_texts(form, "event_ids")
        action = form_text(form, "action", 32)
        if action not in BULK_ACTIONS:
            text = translate(language_of(request.cookies), "error.unknown_action", action=action)
            return Redirect(with_query("/console", error=text), status_code=303)
        if not event_ids:
            return Redirect(with_query("/console", msg="msg.bulk_none"), status_code=303)
        if len(event_ids) > MAX_BULK:
            text = translate(language_of(request.cookies), "error.bulk_max", n=MAX_BULK)
            return Redirect(with_query("/console", error=text), status_code=303)
        reason, unit = form_text(form, "reason"), form_text(form, "unit", 32) or None
        failures: list[str] = []
        for event_id in event_ids:
            try:
                await commands.supervise(ctx, user, event_id, action, reason=reason,
                                         unit=unit if action == "reassign" else None)
            except commands.CommandError as exc:
                failures.append(f"{event_id}: {refusal_text(language_of(request.cookies), exc, exc.status)}")
        params = {"msg": "msg.bulk_done", "ok": str(len(event_ids) - len(failures)), "total": str(len(event_ids))}
        if failures:
            params["error"] = "; ".join(failures)[:1500]
        return Redirect(with_query("/console", **params), status_code=303)
