"""The command-centre console: counts per unit, the queues that need a supervisor, bulk overrides."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template

from store import process_queries, process_versions, queries
from store.timeutil import utcnow
from web import commands
from web.access import supervisors
from web.auth import CurrentUser
from web.bulk import BULK_ACTIONS, supervise_many
from web.context import AppContext
from web.errors import refusal_text
from web.event_pages import supervisor_actions, units_for_forms
from web.i18n import language_of
from web.page_forms import form_text, form_texts, with_query
from web.process_pages import process_texts
from web.unit_users import users_by_unit

#: The decisions the console's queue of waiting requests offers on each row.
DECISIONS = ("approve_extension", "deny_extension", "approve_return", "deny_return")


class ConsolePages(Controller):
    """The console, for supervisors."""

    @get("/console", guards=[supervisors])
    async def console(self, ctx: AppContext, user: CurrentUser, request: Request, msg: str | None = None,
                      error: str | None = None,
                      ok: int | None = None, total: int | None = None) -> Response[Any]:
        """The command-centre console: counts per unit and the queues that need a supervisor."""
        now = utcnow()
        data = await queries.console(ctx.db, user.scope, now)
        late = await process_queries.late_tasks(ctx.db, user.scope)
        late["process_notices"] = await process_queries.failing_notices(ctx.db, user.scope)
        org = await ctx.org()
        forms = await units_for_forms(ctx, user)
        assignees = await users_by_unit(ctx, user, forms["scope_units"])
        bulk = {"ok": ok, "total": total} if msg == "msg.bulk_done" and ok is not None and total is not None else None
        return Template("console.html", context={
            "user": user, "msg": None if bulk else msg, "error": error, "bulk": bulk, "q": data,
            "org": org.units, "now": now, "bulk_actions": BULK_ACTIONS, "assignees": assignees,
            "confirmed_actions": commands.CONFIRMED_ACTIONS, **forms, **late,
            "texts": process_texts(await process_versions.active_definitions(ctx.db), language_of(request.cookies)),
            # The decisions a row offers: the workflow's own checks (``workflows.policy``), not re-derived.
            "decisions": lambda ev: [a for a in supervisor_actions(ev, [], user) if a in DECISIONS],
        })

    @post("/console/bulk", status_code=303, guards=[supervisors])
    async def bulk(self, ctx: AppContext, user: CurrentUser, request: Request) -> Redirect:
        """One override on the selected events; each is tried, failures are reported with their reasons."""
        form = await request.form()
        event_ids = form_texts(form, "event_ids")
        lang = language_of(request.cookies)
        action, reason = form_text(form, "action", 32), form_text(form, "reason")
        try:
            if event_ids:  # void and close ask for a reason and the confirmation box (none selected: nothing to ask)
                commands.check_confirmed(action, reason, form_text(form, "confirm", 8) == "yes")
            outcomes = await supervise_many(ctx, user, event_ids, action, reason=reason,
                                            unit=form_text(form, "unit", 32) or None,
                                            assignee=form_text(form, "assignee", 64) or None)
        except commands.CommandError as exc:
            if exc.key == "bulk.err.none":
                return Redirect(with_query("/console", msg="msg.bulk_none"), status_code=303)
            return Redirect(with_query("/console", error=refusal_text(lang, exc, exc.status)), status_code=303)
        failures = [f"{o.event_id}: {refusal_text(lang, o.error, o.error.status)}" for o in outcomes
                    if o.error is not None]
        params = {"msg": "msg.bulk_done", "ok": str(len(outcomes) - len(failures)), "total": str(len(outcomes))}
        if failures:
            params["error"] = "; ".join(failures)[:1500]
        return Redirect(with_query("/console", **params), status_code=303)
