"""Staff pages of one event: the event page with the supervisor panel, task actions from the inbox or
the event page, the audit trail as CSV, and a supervisor's override."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from store import duplicates, models, queries
from store.timeutil import as_utc, utcnow
from web import commands
from web.access import signed_in, supervisors
from web.auth import CurrentUser, visible_event
from web.console_api import timeline_csv_response
from web.context import AppContext
from web.errors import refusal, refusal_text
from web.i18n import language_of
from web.location_map import location_map
from web.page_forms import form_hours, form_text, form_texts, safe_next, with_query
from web.photos import form_uploads, save_staff_photos
from web.return_choices import return_choices
from web.unit_users import users_by_unit
from web.views import event_detail
from workflows import policy

REQUEST_ACTIONS = policy.REQUESTS


def case_of(event: models.Event, tasks: Sequence[models.Task]) -> policy.Case:
    """The event as the rules read it (``workflows.policy``), from the store's projection."""
    return policy.Case(state=event.state, pending=event.pending, paused=event.paused, tasks=tasks)


def supervisor_actions(event: models.Event, tasks: Sequence[models.Task], user: CurrentUser) -> list[str]:
    """The overrides ``user`` is offered on the event now: the workflow's own checks
    (``policy.supervisor_actions``), so the panel never offers what the workflow refuses."""
    return policy.supervisor_actions(case_of(event, tasks), user) if user.is_supervisor else []


@dataclass(frozen=True)
class Offer:
    """What a task's row offers its viewer: the actions the rules accept now, and the units whose
    co-handling a claimed handling task waits for (instead of its 办结 form)."""

    actions: list[str]
    waiting: str = ""


def task_offers(pairs: Sequence[tuple[models.Event, Sequence[models.Task]]], user: CurrentUser,
                only: Sequence[models.Task] | None = None) -> dict[str, Offer]:
    """The offers of the tasks of each (event, its tasks) pair to ``user`` (of ``only`` when given),
    by task id: ``policy.task_actions``, the checks the workflow's validators make."""
    wanted = {t.task_id for t in only} if only is not None else None
    now = utcnow()
    offers: dict[str, Offer] = {}
    for event, tasks in pairs:
        case = case_of(event, tasks)
        for task in tasks:
            if wanted is not None and task.task_id not in wanted:
                continue
            actions = policy.task_actions(case, task, user, marks=task_marks(task), now=now)
            mine = task.kind == "handle" and task.status == "claimed" and task.claimed_by == user.username
            waiting = ", ".join(policy.open_helpers(case, task.task_id)) if mine and not event.paused else ""
            offers[task.task_id] = Offer(actions, waiting)
    return offers


def task_marks(task: models.Task) -> dict[str, str]:
    """The workflow's marks of a task that the offers need, from its store row (``due``, ``return_by``)."""
    marks = {"due": as_utc(task.due_at).isoformat() if task.due_at else "",
             "return_by": as_utc(task.return_by).isoformat() if task.return_by else ""}
    return {name: value for name, value in marks.items() if value}


async def merge_candidates(ctx: AppContext, user: CurrentUser, event: models.Event) -> list[models.Event]:
    """Open events of the supervisor's scope that this one may duplicate (``store.duplicates``), offered
    as the merge form's primaries (any other receipt code of the scope may be typed)."""
    found = await duplicates.candidates(
        ctx.db, category=event.category, since=utcnow() - timedelta(days=ctx.settings.duplicate_days),
        lat=event.lat, lon=event.lon, grid=event.grid, address=event.address, exclude=event.event_id, limit=10)
    rows = [await queries.get_event(ctx.db, c.event_id) for c in found]
    return [r for r in rows if r is not None and user.sees(r.unit, r.grid, r.community, r.street)]


async def units_for_forms(ctx: AppContext, user: CurrentUser) -> dict[str, Any]:
    """Unit lists for the forms: co-handling and triage (any unit but the city), reassign and the bulk
    form (a supervisor's scope only: ``commands.supervise`` refuses other units)."""
    org = await ctx.org()
    units = sorted((u for u in org.units.values() if u.kind != "city"), key=lambda u: (u.kind, u.code))
    return {
        "org_units": units,
        "scope_units": [u for u in units if user.sees(u.code)] if user.is_supervisor else [],
    }


class EventPages(Controller):
    """Pages of one event and its tasks, for logged-in staff."""

    @post("/tasks/{task_id:str}/{action:str}", status_code=303, guards=[signed_in])
    async def task_action(self, ctx: AppContext, user: CurrentUser, request: Request, task_id: str,
                          action: str) -> Redirect:
        """Claim, complete (with photos), release, triage, or ask for return, escalation, extension or
        co-handling, from the inbox or the event page. Takes url-encoded and multipart forms."""
        form = await request.form()
        back = safe_next(form_text(form, "next", 300), "/inbox")
        try:
            if action == "claim":
                await commands.claim(ctx, user, task_id)
                msg = "msg.claimed"
            elif action == "complete":
                passed_raw = form.get("passed")
                passed = None if not isinstance(passed_raw, str) else passed_raw == "true"
                photos = await save_staff_photos(ctx, request, user, form_uploads(form), policy.MAX_COMPLETE_PHOTOS)
                # "Show these photos on the tracking page": all of this completion's, or none.
                public = photos if form_text(form, "public_photos", 4) == "on" else []
                await commands.complete(ctx, user, task_id, form_text(form, "result", 2000), passed, photos, public)
                msg = "msg.completed"
            elif action == "release":
                await commands.release(ctx, user, task_id)
                msg = "msg.released"
            elif action in REQUEST_ACTIONS:
                units = form_texts(form, "units")
                if len(units) > policy.MAX_COHANDLING_UNITS:
                    raise commands.CommandError.keyed(400, "refusal.cohandling_units",
                                                      limit=policy.MAX_COHANDLING_UNITS)
                hours = form_hours(form) if action == "extension" else None
                if action == "extension" and hours is None:
                    raise commands.CommandError.keyed(400, "refusal.extension_needs_hours")
                await commands.request(ctx, user, task_id, REQUEST_ACTIONS[action], form_text(form, "reason"),
                                       hours or 0, units if action == "cohandling" else None)
                msg = f"msg.requested.{action}"
            elif action == "triage":
                await commands.triage(ctx, user, task_id, form_text(form, "category", 32), form_text(form, "unit", 32),
                                      form_text(form, "note"))
                msg = "msg.triaged"
            else:
                raise refusal(NotFoundException, "error.unknown_action", action=action)
        except commands.CommandError as exc:
            if exc.status == 403:
                raise  # the error page, with the reason in the visitor's language
            return Redirect(with_query(back, error=refusal_text(language_of(request.cookies), exc, exc.status)),
                            status_code=303)
        return Redirect(with_query(back, msg=msg), status_code=303)

    @get("/events/{event_id:str}", guards=[signed_in])
    async def event(self, ctx: AppContext, user: CurrentUser, request: Request, event_id: str, msg: str | None = None,
                    error: str | None = None) -> Response[Any]:
        """Everything about one event, within the user's scope; the supervisor panel for supervisors."""
        event, tasks = await visible_event(ctx, user, event_id)
        detail = await event_detail(ctx, event)
        rows = {t.task_id: t for t in tasks}
        for view in detail["tasks"]:
            row = rows.get(view["task_id"])
            if row is not None:
                view.update(assignee=row.assignee, photos=list(row.photos or []), reason=row.reason,
                            parent=row.parent, overdue_level=row.overdue_level,
                            extension_hours=row.extension_hours)
        detail.update(pending=event.pending, paused=event.paused, rework_count=event.rework_count,
                      returned_count=event.returned_count, escalated_count=event.escalated_count)
        temporal_link = None
        if user.is_supervisor:
            ns = quote(ctx.settings.temporal_namespace, safe="")
            temporal_link = f"{ctx.settings.temporal_ui_url}/namespaces/{ns}/workflows/{quote(event_id, safe='')}"
        forms = await units_for_forms(ctx, user)
        sup_actions = supervisor_actions(event, tasks, user)
        case = case_of(event, tasks)
        merge_undo_by = as_utc(event.merge_undo_by).isoformat() if event.merge_undo_by else None
        can_merge = user.is_supervisor and policy.merge_offered(case, user)
        primary = await queries.get_event(ctx.db, event.merged_into) if event.merged_into else None
        return Template("event.html", context={
            "user": user, "e": detail, "msg": msg, "error": error, "temporal_link": temporal_link,
            "warnings": await queries.warnings_of(ctx.db, event_id),
            "report_photos": await queries.report_photos(ctx.db, event_id),
            "location_map": location_map(await ctx.org(), event),
            "related": [r for r in await queries.related_events(ctx.db, event)
                        if user.sees(r.unit, r.grid, r.community, r.street)][:10],
            "sup_actions": sup_actions, "offers": task_offers([(event, tasks)], user),
            "can_merge": can_merge,
            "merge_candidates": await merge_candidates(ctx, user, event) if can_merge else [],
            "can_unmerge": user.is_supervisor and policy.unmerge_offered(case, user, merge_undo_by, utcnow()),
            "primary": primary,
            "categories": (await ctx.engine()).list.categories,
            "units": forms["org_units"] if user.is_supervisor else [], **forms,
            "return_choices": await return_choices(ctx, user, event, tasks, forms["scope_units"]),
            "assignees": await users_by_unit(ctx, user, forms["scope_units"]) if "reassign" in sup_actions else {},
        })

    @post("/events/{event_id:str}/merge", status_code=303, guards=[supervisors])
    async def merge(self, ctx: AppContext, user: CurrentUser, request: Request, event_id: str) -> Redirect:
        """合并 from the event page: this event (the duplicate) into the primary named by its receipt code,
        with a reason and a ticked confirmation."""
        form = await request.form()
        back = f"/events/{quote(event_id, safe='')}"
        try:
            reason = form_text(form, "reason")
            if not reason.strip():
                raise commands.CommandError.keyed(400, "dup.err.reason")
            if form_text(form, "confirm", 8) != "yes":
                raise commands.CommandError.keyed(400, "dup.err.unconfirmed")
            await commands.merge(ctx, user, event_id, form_text(form, "primary", 200), reason)
        except commands.CommandError as exc:
            if exc.status in (403, 404):
                raise
            return Redirect(with_query(back, error=refusal_text(language_of(request.cookies), exc, exc.status)),
                            status_code=303)
        return Redirect(with_query(back, msg="msg.merged"), status_code=303)

    @post("/events/{event_id:str}/unmerge", status_code=303, guards=[supervisors])
    async def unmerge(self, ctx: AppContext, user: CurrentUser, request: Request, event_id: str) -> Redirect:
        """Undo a merge from the event page, within its window."""
        form = await request.form()
        back = f"/events/{quote(event_id, safe='')}"
        try:
            await commands.unmerge(ctx, user, event_id, form_text(form, "reason"))
        except commands.CommandError as exc:
            if exc.status in (403, 404):
                raise
            return Redirect(with_query(back, error=refusal_text(language_of(request.cookies), exc, exc.status)),
                            status_code=303)
        return Redirect(with_query(back, msg="msg.unmerged"), status_code=303)

    @get("/events/{event_id:str}/timeline.csv", guards=[signed_in])
    async def timeline_csv(self, ctx: AppContext, user: CurrentUser, request: Request, event_id: str) -> Response[Any]:
        """The event's audit trail as CSV, for the logged-in user (same scope as the event page)."""
        event, _ = await visible_event(ctx, user, event_id)
        return timeline_csv_response(event_id, await queries.timeline(ctx.db, event_id))

    @post("/events/{event_id:str}/supervise", status_code=303, guards=[supervisors])
    async def supervise(self, ctx: AppContext, user: CurrentUser, request: Request, event_id: str) -> Redirect:
        """A supervisor's override from the event page or the console."""
        form = await request.form()
        back = safe_next(form_text(form, "next", 300), f"/events/{quote(event_id, safe='')}")
        action = form_text(form, "action", 32)
        try:
            if action not in commands.SUPERVISOR_ACTIONS:
                raise commands.CommandError.keyed(400, "refusal.unknown_action", action=action)
            reason = form_text(form, "reason")
            commands.check_confirmed(action, reason, form_text(form, "confirm", 8) == "yes")
            await commands.supervise(
                ctx, user, event_id, action, reason=reason, unit=form_text(form, "unit", 32) or None,
                assignee=form_text(form, "assignee", 64) or None, hours=form_hours(form),
                notice_id=form_text(form, "notice_id", 220) or None,
            )
        except commands.CommandError as exc:
            if exc.status in (403, 404):
                raise  # the error page, with the reason in the visitor's language
            return Redirect(with_query(back, error=refusal_text(language_of(request.cookies), exc, exc.status)),
                            status_code=303)
        return Redirect(with_query(back, msg=f"msg.supervised.{action}"), status_code=303)
