"""Server-rendered pages: login, inbox, event detail, the citizen report form and tracking.

Forms post back here (CSRF-protected); every change goes to the workflow through web.commands.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlparse

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body
from litestar.response import Redirect, Template
from pydantic import ValidationError

from store import queries
from store.users import audit, authenticate
from web import commands
from web.auth import SESSION_COOKIE, CurrentUser, issue_token, resolve_user
from web.context import AppContext
from web.i18n import LANG_COOKIE, LANGUAGES
from web.schemas import EventIn, RatingIn
from web.views import event_detail, public_status

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]


def _safe_next(target: str | None, default: str = "/") -> str:
    """Only local redirects (no open redirect to another site)."""
    if not target:
        return default
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


async def _page_user(ctx: AppContext, request: Request) -> CurrentUser | None:
    return await resolve_user(ctx, request, api=False)


class PublicPages(Controller):
    """Pages anyone can use: home, language, login, report, track."""

    @get("/")
    async def home(self, ctx: AppContext, request: Request) -> Redirect:
        """Staff go to their inbox, residents to the report form."""
        user = await _page_user(ctx, request)
        return Redirect("/inbox" if user else "/report")

    @get("/lang/{lang:str}")
    async def set_language(self, lang: str, next: str | None = None) -> Redirect:  # noqa: A002
        """Switch the interface language (cookie)."""
        response = Redirect(_safe_next(next))
        if lang in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
        return response

    @get("/login")
    async def login_form(self, error: str | None = None) -> Template:
        """The login form."""
        return Template("login.html", context={"error": error})

    @post("/login", status_code=303)
    async def login(self, ctx: AppContext, request: Request, data: Form) -> Response[Any]:
        """Check the password and set the session cookie."""
        username = (data.get("username") or "").strip()[:64]
        user = await authenticate(ctx.db, username, data.get("password") or "")
        if user is None:
            await audit(ctx.db, username or "-", "login_failed", detail="web")
            return Template("login.html", context={"error": "login.failed", "username": username},
                            status_code=401)
        await audit(ctx.db, user.username, "login", detail="web")
        response = Redirect("/inbox", status_code=303)
        response.set_cookie(
            SESSION_COOKIE, issue_token(ctx, user.username), httponly=True, samesite="lax",
            max_age=ctx.settings.token_ttl_hours * 3600, path="/",
        )
        return response

    @post("/logout", status_code=303)
    async def logout(self) -> Redirect:
        """Forget the session."""
        response = Redirect("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @get("/report")
    async def report_form(self, ctx: AppContext) -> Template:
        """The citizen report form."""
        return Template("report.html", context=await _report_context(ctx))

    @post("/report", status_code=200)
    async def report(self, ctx: AppContext, data: Form) -> Template:
        """Submit a report; shows the receipt code."""
        payload = {
            "category": data.get("category", ""),
            "description": data.get("description", ""),
            "location": {"grid": data.get("grid") or None, "address": data.get("address") or None},
            "reporter": {"name": data.get("name", ""), "phone": data.get("phone", "")},
            "source": "portal",
        }
        try:
            event_in = EventIn.model_validate(payload)
        except ValidationError as exc:
            ctx_ = await _report_context(ctx)
            ctx_.update(errors=_problems(exc), form=data)
            return Template("report.html", context=ctx_, status_code=400)
        if event_in.category and (await ctx.engine()).category(event_in.category) is None:
            ctx_ = await _report_context(ctx)
            ctx_.update(errors=[f"category: unknown '{event_in.category}'"], form=data)
            return Template("report.html", context=ctx_, status_code=400)
        started = await commands.start_event(ctx, event_in.to_report())
        return Template("report_done.html", context={"receipt_code": started.receipt_code})

    @get("/track")
    async def track_form(self, code: str | None = None) -> Response[Any]:
        """Look up a report by receipt code."""
        if code:
            return Redirect(f"/track/{quote(code.strip().upper(), safe='')}")
        return Template("track.html", context={"status": None})

    @get("/track/{code:str}")
    async def track(self, ctx: AppContext, code: str, msg: str | None = None) -> Template:
        """A report's plain-language status, with the rating form when it is time to rate."""
        event = await queries.event_by_receipt(ctx.db, code)
        if event is None:
            return Template("track.html", context={"status": None, "notfound": True, "code": code},
                            status_code=404)
        status = public_status(event, await queries.timeline(ctx.db, event.event_id))
        return Template("track.html", context={"status": status, "msg": msg})

    @post("/track/{code:str}/rating", status_code=303)
    async def rate(self, ctx: AppContext, code: str, data: Form) -> Response[Any]:
        """Submit the rating."""
        event = await queries.event_by_receipt(ctx.db, code)
        if event is None:
            raise NotFoundException("no report with this receipt code")
        try:
            rating = RatingIn.model_validate({"rating": data.get("rating"), "comment": data.get("comment", "")})
        except ValidationError as exc:
            raise commands.CommandError(400, "; ".join(_problems(exc))) from exc
        await commands.rate(ctx, event.event_id, rating.rating, rating.comment)
        return Redirect(f"/track/{event.receipt_code}?msg=msg.rated", status_code=303)


async def _report_context(ctx: AppContext) -> dict[str, Any]:
    org = await ctx.org()
    grids = sorted((u for u in org.units.values() if u.kind == "grid"), key=lambda u: u.code)
    lst = (await ctx.engine()).list
    return {"groups": lst.groups, "categories": lst.categories, "grids": grids, "errors": [], "form": {}}


class StaffPages(Controller):
    """Pages for logged-in staff."""

    @get("/inbox")
    async def inbox(self, ctx: AppContext, request: Request, msg: str | None = None,
                    error: str | None = None) -> Response[Any]:
        """The inbox of the user's unit."""
        user = await _page_user(ctx, request)
        if user is None:
            return Redirect("/login")
        rows = await queries.inbox(ctx.db, user.unit, user.username)
        done = await queries.inbox(ctx.db, user.unit, user.username, statuses=("done",), limit=20)
        org = await ctx.org()
        units = sorted(org.units.values(), key=lambda u: (u.kind, u.code)) if user.is_supervisor else []
        return Template("inbox.html", context={
            "user": user, "rows": rows, "done": done, "msg": msg, "error": error,
            "unit": org.units.get(user.unit), "categories": (await ctx.engine()).list.categories,
            "units": [u for u in units if u.kind != "city"],
        })

    @post("/tasks/{task_id:str}/{action:str}", status_code=303)
    async def task_action(self, ctx: AppContext, request: Request, task_id: str, action: str,
                          data: Form) -> Redirect:
        """Claim, complete or triage a task from the inbox or the event page."""
        user = await _page_user(ctx, request)
        if user is None:
            return Redirect("/login", status_code=303)
        back = _safe_next(data.get("next"), "/inbox")
        sep = "&" if "?" in back else "?"
        try:
            if action == "claim":
                await commands.claim(ctx, user, task_id)
                msg = "msg.claimed"
            elif action == "complete":
                passed_raw = data.get("passed")
                passed = None if passed_raw is None else passed_raw == "true"
                await commands.complete(ctx, user, task_id, (data.get("result") or "")[:2000], passed)
                msg = "msg.completed"
            elif action == "triage":
                await commands.triage(ctx, user, task_id, data.get("category", ""), data.get("unit", ""),
                                      (data.get("note") or "")[:500])
                msg = "msg.triaged"
            else:
                raise NotFoundException(f"unknown action '{action}'")
        except commands.CommandError as exc:
            if exc.status == 403:
                raise PermissionDeniedException(exc.reason) from exc
            return Redirect(f"{back}{sep}error={quote(exc.reason)}", status_code=303)
        return Redirect(f"{back}{sep}msg={msg}", status_code=303)

    @get("/events/{event_id:str}")
    async def event(self, ctx: AppContext, request: Request, event_id: str, msg: str | None = None,
                    error: str | None = None) -> Response[Any]:
        """Everything about one event, within the user's scope."""
        user = await _page_user(ctx, request)
        if user is None:
            return Redirect("/login")
        event = await queries.get_event(ctx.db, event_id)
        if event is None:
            raise NotFoundException(f"event {event_id} does not exist")
        detail = await event_detail(ctx, event)
        if not user.sees(event.unit, event.grid, event.community, event.street,
                         *(t["unit"] for t in detail["tasks"])):
            raise PermissionDeniedException("this event is outside your unit's scope")
        temporal_link = None
        if user.is_supervisor:
            ns = quote(ctx.settings.temporal_namespace, safe="")
            temporal_link = f"{ctx.settings.temporal_ui_url}/namespaces/{ns}/workflows/{quote(event_id, safe='')}"
        return Template("event.html", context={"user": user, "e": detail, "msg": msg, "error": error,
                                               "temporal_link": temporal_link})


PAGE_CONTROLLERS = [PublicPages, StaffPages]
