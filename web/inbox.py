"""The inbox, as a page and in the API: views (tabs), filters, search, sorts, keyset pages, and the
user's saved filters (kept on the server)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException, ValidationException
from litestar.params import Body
from litestar.response import Redirect, Template

from store import inbox_queries, queries
from store.event_search import TIERS
from store.inbox_queries import SORTS, TASK_STATUSES, VIEWS, InboxQuery, InboxQueryError, parse_query
from web.access import signed_in
from web.answers import InboxAnswer
from web.auth import CurrentUser
from web.context import AppContext
from web.errors import refusal
from web.event_pages import task_offers, units_for_forms
from web.i18n import catalogue, language_of, translate
from web.process_pages import inbox_processes
from web.views import task_view
from workflows.types import SOURCES

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def query_error(exc: InboxQueryError, lang: str, labels: str | None = None) -> str:
    """The reason of a refused inbox or search query in ``lang`` (messages without a catalogue key as
    they are). On a page (``labels``, the prefix of its form's label keys) a parameter it names is
    given by its label, ``<labels><parameter>`` or else ``params.name.<parameter>``; the API keeps
    the parameter's name."""
    if not exc.key:  # named by its parameter: as it is in English, else "this filter is invalid"
        if lang == "en":
            return str(exc)
        param = str(exc).split(":", 1)[0].strip()
        field = translate(lang, "inbox.views" if param == "view" else f"inbox.filter.{param}")
        return translate(lang, "inbox.err.invalid", field=field if not field.startswith("inbox.") else param)
    values = dict(exc.values)
    name_of = values.get("name")  # the parameter's name, before it is replaced by its label
    if labels is not None:
        messages = catalogue(lang)
        for slot in ("name", "first", "last"):
            name = values.get(slot)
            if isinstance(name, str):
                key = next((k for k in (f"{labels}{name}", f"params.name.{name}") if k in messages), None)
                values[slot] = messages[key] if key else name
        options = values.get("options")
        if isinstance(options, str) and isinstance(name_of, str):
            # Each choice by its label where the catalogue has one (the inbox's views, states, tiers...).
            shown = []
            for option in options.split(", "):
                key = next((k for k in (f"{labels}{name_of}.{option}", f"inbox.{name_of}.{option}",
                                          f"{name_of}.{option}")
                            if k in messages), None)
                shown.append(messages[key] if key else option)
            values["options"] = ("、" if lang == "zh-CN" else ", ").join(shown)
    return translate(lang, exc.key, **values)


class InboxPages(Controller):
    """The inbox page and the saved filters."""

    @get("/inbox", guards=[signed_in])
    async def inbox(self, ctx: AppContext, user: CurrentUser, request: Request, msg: str | None = None,
                    error: str | None = None) -> Response[Any]:
        """The inbox of the user's unit: one view, filtered, one page of 25."""
        status = 200
        try:
            query = parse_query(request.query_params)
            page = await inbox_queries.inbox_page(ctx.db, user.unit, user.username, query)
        except InboxQueryError as exc:
            query, page, status = InboxQuery(), inbox_queries.InboxPage(), 400
            error = query_error(exc, language_of(request.cookies), "inbox.filter.")
        org = await ctx.org()
        forms = await units_for_forms(ctx, user)
        # The actions of each row, as the workflow's validators decide them: with the other tasks of its
        # event (an open co-handling task holds back the 办结 of the handling task it helps).
        siblings = await queries.tasks_of_events(ctx.db, list(dict.fromkeys(ev.event_id for _, ev in page.rows)))
        events = {ev.event_id: ev for _, ev in page.rows}
        offers = task_offers([(ev, siblings.get(eid, [])) for eid, ev in events.items()], user,
                             only=[task for task, _ in page.rows])
        here = "/inbox" + (f"?{qs}" if (qs := query.query_string()) else "")
        processes = await inbox_processes(ctx, user, language_of(request.cookies))
        return Template("inbox.html", status_code=status, context={
            "user": user, "rows": page.rows, "next_cursor": page.next_cursor, "query": query, "msg": msg,
            "error": error, "here": here, "views": VIEWS, "sorts": SORTS, "task_statuses": TASK_STATUSES,
            "sources": SOURCES, "tiers": TIERS, "saved": await inbox_queries.saved_filters(ctx.db, user.username),
            "unit": org.units.get(user.unit), "categories": (await ctx.engine()).list.categories,
            "units": forms["org_units"] if user.is_supervisor else [], "offers": offers, **forms, **processes,
        })

    @post("/inbox/filters", status_code=303, guards=[signed_in])
    async def save_filter(self, ctx: AppContext, user: CurrentUser, request: Request, data: Form) -> Redirect:
        """Save the current filters (the hidden ``query`` field) under ``name``."""
        raw = (data.get("query") or "")[:1000]
        try:
            query = parse_query(dict(parse_qsl(raw)))
            query.cursor = None
            await inbox_queries.save_filter(ctx.db, user.username, data.get("name") or "", query)
        except InboxQueryError as exc:
            reason = query_error(exc, language_of(request.cookies), "inbox.filter.")
            return Redirect(f"/inbox?{InboxQuery().query_string(error=reason)}", status_code=303)
        qs = query.query_string(msg="inbox.filter.saved")
        return Redirect(f"/inbox?{qs}", status_code=303)

    @post("/inbox/filters/{filter_id:int}/delete", status_code=303, guards=[signed_in])
    async def delete_filter(self, ctx: AppContext, user: CurrentUser, request: Request, filter_id: int) -> Redirect:
        """Delete one of the user's saved filters (404 unknown, 403 someone else's)."""
        row = await inbox_queries.get_filter(ctx.db, filter_id)
        if row is None:
            raise refusal(NotFoundException, "error.filter_missing")
        if row.username != user.username:
            raise refusal(PermissionDeniedException, "error.filter_other")
        await inbox_queries.delete_filter(ctx.db, filter_id)
        return Redirect("/inbox?msg=inbox.filter.deleted", status_code=303)


class InboxApi(Controller):
    """GET /api/inbox with the same parameters as the page."""

    path = "/api"

    @get("/inbox", guards=[signed_in])
    async def inbox(self, ctx: AppContext, user: CurrentUser, request: Request) -> InboxAnswer:
        """One page of the user's inbox (default: open and claimed tasks of the unit, most urgent
        first); ``next_cursor`` fetches the next page."""
        try:
            query = parse_query(request.query_params)
        except InboxQueryError as exc:
            raise ValidationException(query_error(exc, "en")) from None
        page = await inbox_queries.inbox_page(ctx.db, user.unit, user.username, query)
        return {
            "unit": user.unit,
            "view": query.view,
            "tasks": [
                {**task_view(task), "category": ev.category, "category_name": ev.category_name,
                 "description": ev.description, "receipt_code": ev.receipt_code,
                 "event_state": ev.state, "tier": ev.tier, "source": ev.source, "priority": ev.priority}
                for task, ev in page.rows
            ],
            "next_cursor": page.next_cursor,
        }


INBOX_CONTROLLERS = [InboxPages, InboxApi]
