"""Server-rendered pages: login, inbox, event detail with the supervisor panel, the command-centre
console, the citizen report form and tracking.

Forms post back here (CSRF-protected, url-encoded or multipart) and answer with a 303 back to the page,
carrying ``?msg=<i18n key>`` or ``?error=<reason>``; every change goes to the workflow through web.commands.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlparse

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body
from litestar.response import Redirect, Template
from pydantic import ValidationError

from store import queries
from store.timeutil import utcnow
from web import commands
from web.auth import SESSION_COOKIE, CurrentUser, issue_token, resolve_user, visible_event
from web.console_api import save_photo, timeline_csv_response
from web.context import AppContext
from web.i18n import LANG_COOKIE, LANGUAGES, language_of, translate
from web.location_map import location_map
from web.ratelimit import guarded_login, wait_text
from web.schemas import EventIn, RatingIn
from web.views import event_detail, public_status
from workflows.lifecycle import ACTORS, triggers_from

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
        """Check the password (through the login limits) and set the session cookie."""
        username = (data.get("username") or "").strip()[:64]
        user, wait = await guarded_login(ctx, request, username, data.get("password") or "", "web")
        if wait:
            return Template("login.html", context={"error": "login.wait", "wait": wait_text(request, wait),
                                                   "username": username},
                            status_code=429, headers={"Retry-After": str(wait)})
        if user is None:
            return Template("login.html", context={"error": "login.failed", "username": username},
                            status_code=401)
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
    async def report(self, ctx: AppContext, request: Request) -> Template:
        """Submit a report (url-encoded, or multipart with photos); shows the receipt code."""
        form = await request.form()
        data = {k: _text(form, k, 2000 if k == "description" else 300)
                for k in ("category", "description", "grid", "address", "name", "phone")}
        payload = {
            "category": data["category"],
            "description": data["description"],
            "location": {"grid": data["grid"] or None, "address": data["address"] or None},
            "reporter": {"name": data["name"], "phone": data["phone"]},
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
        uploads = [v for v in form.getall("photos", []) if isinstance(v, UploadFile) and v.filename]
        try:
            if len(uploads) > MAX_REPORT_PHOTOS:
                raise commands.CommandError(400, f"at most {MAX_REPORT_PHOTOS} photos")
            photos = [await save_photo(ctx, upload) for upload in uploads]
        except commands.CommandError as exc:
            ctx_ = await _report_context(ctx)
            ctx_.update(errors=[f"photos: {exc.reason}"], form=data)
            return Template("report.html", context=ctx_, status_code=400)
        finally:
            for upload in uploads:
                await upload.close()
        started = await commands.start_event(ctx, event_in.to_report())
        if photos:
            await queries.add_report_photos(ctx.db, started.event_id, photos)
        return Template("report_done.html", context={"receipt_code": started.receipt_code, "photos": len(photos)})

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
        snap = await commands.rate(ctx, event.event_id, rating.rating, rating.comment)
        msg = "msg.rated"
        if rating.rating == "dissatisfied":
            # Dissatisfied: back for rework (返工), or to a supervisor's review after the last allowed rework.
            msg = "msg.rated.review" if snap.state == "review" else "msg.rated.rework"
        return Redirect(f"/track/{event.receipt_code}?msg={msg}", status_code=303)


class NearbyController(Controller):
    """Open reports near a resident's, so they can follow one instead of reporting it again."""

    path = "/api/events/nearby"

    @get("/")
    async def nearby(self, ctx: AppContext, request: Request, category: str | None = None,
                     grid: str | None = None, address: str | None = None) -> dict[str, Any]:
        """Open events of ``category`` in ``grid`` (or the grid an ``address`` lies in), newest first.

        Public: receipt code, status, a shortened description and the day of the report only
        (never names or phones). Empty when the category or the place is unknown.
        """
        category = (category or "").strip()[:32]
        placed = (await ctx.org()).locate((grid or "").strip()[:32] or None, None, None,
                                          (address or "").strip()[:300] or None)
        if not category or placed.grid is None:
            return {"grid": placed.grid, "events": []}
        rows = await queries.open_events_nearby(ctx.db, category=category, grid=placed.grid)
        lang = language_of(request.cookies)
        return {"grid": placed.grid, "events": [
            {"receipt_code": e.receipt_code, "state": e.state, "state_label": translate(lang, f"state.{e.state}"),
             "description": e.description if len(e.description) <= NEARBY_TEXT else e.description[:NEARBY_TEXT] + "…",
             "created": e.created_at.date().isoformat()}
            for e in rows
        ]}


async def _report_context(ctx: AppContext) -> dict[str, Any]:
    org = await ctx.org()
    grids = sorted((u for u in org.units.values() if u.kind == "grid"), key=lambda u: u.code)
    lst = (await ctx.engine()).list
    return {"groups": lst.groups, "categories": lst.categories, "grids": grids, "errors": [], "form": {}}


#: Worker requests on a claimed handling task: page action → ``commands.request`` action.
REQUEST_ACTIONS = {"return": "request_return", "escalate": "escalate", "extension": "request_extension",
                   "cohandling": "request_cohandling"}
#: Overrides offered by the console's bulk form.
BULK_ACTIONS = ("reassign", "force_escalate", "pause", "resume", "void", "close")
#: Overrides still allowed while a case is paused (everything else waits for ``resume``).
_WHILE_PAUSED = ("resume", "void", "close")
MAX_PHOTOS = 10
#: Photos a resident may attach to a report.
MAX_REPORT_PHOTOS = 3
#: Characters of a description shown in the public list of nearby reports.
NEARBY_TEXT = 40
MAX_BULK = 200


def _text(form: FormMultiDict, name: str, limit: int = 500) -> str:
    """A text field of a form (url-encoded or multipart), cut to ``limit`` characters."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _texts(form: FormMultiDict, name: str) -> list[str]:
    """All non-empty values of a repeated field (checkboxes, multiple select), in order, each once."""
    found: list[str] = []
    for value in form.getall(name, []):
        if isinstance(value, str) and value.strip() and value.strip() not in found:
            found.append(value.strip()[:220])
    return found


def _hours(form: FormMultiDict) -> int | None:
    raw = _text(form, "hours", 10)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise commands.CommandError(400, "hours must be a whole number") from None


def _with_query(target: str, **params: str) -> str:
    return f"{target}{'&' if '?' in target else '?'}{urlencode(params)}"


async def _photos(ctx: AppContext, form: FormMultiDict) -> list[str]:
    """Store the photos of a multipart completion form; returns their ids."""
    uploads = [v for v in form.getall("photos", []) if isinstance(v, UploadFile)]
    if len(uploads) > MAX_PHOTOS:
        raise commands.CommandError(400, f"at most {MAX_PHOTOS} photos")
    ids: list[str] = []
    for upload in uploads:
        try:
            ids.append(await save_photo(ctx, upload))
        finally:
            await upload.close()
    return ids


def supervisor_actions(state: str, pending: str | None, paused: bool) -> list[str]:
    """The overrides a supervisor may use on an event now (the state machine's, refined like the
    workflow's validators: an extension decision needs a pending request; a paused case only resumes,
    is voided or closed)."""
    found = []
    for trigger in triggers_from(state):
        if ACTORS.get(trigger) != "supervisor" or trigger == "triage":
            continue
        if trigger in ("approve_extension", "deny_extension") and pending != "extension":
            continue
        if (trigger == "pause" and paused) or (trigger == "resume" and not paused):
            continue
        if paused and trigger not in _WHILE_PAUSED:
            continue
        found.append(trigger)
    return found


async def _units_for_forms(ctx: AppContext, user: CurrentUser) -> dict[str, Any]:
    """Unit lists for the forms: co-handling and triage (any unit but the city), reassign and the bulk
    form (a supervisor's scope only: ``commands.supervise`` refuses other units)."""
    org = await ctx.org()
    units = sorted((u for u in org.units.values() if u.kind != "city"), key=lambda u: (u.kind, u.code))
    return {
        "org_units": units,
        "scope_units": [u for u in units if user.sees(u.code)] if user.is_supervisor else [],
    }


class StaffPages(Controller):
    """Pages for logged-in staff."""

    @post("/tasks/{task_id:str}/{action:str}", status_code=303)
    async def task_action(self, ctx: AppContext, request: Request, task_id: str, action: str) -> Redirect:
        """Claim, complete (with photos), release, triage, or ask for return, escalation, extension or
        co-handling, from the inbox or the event page. Takes url-encoded and multipart forms."""
        user = await _page_user(ctx, request)
        if user is None:
            return Redirect("/login", status_code=303)
        form = await request.form()
        back = _safe_next(_text(form, "next", 300), "/inbox")
        try:
            if action == "claim":
                await commands.claim(ctx, user, task_id)
                msg = "msg.claimed"
            elif action == "complete":
                passed_raw = form.get("passed")
                passed = None if not isinstance(passed_raw, str) else passed_raw == "true"
                photos = await _photos(ctx, form)
                await commands.complete(ctx, user, task_id, _text(form, "result", 2000), passed, photos)
                msg = "msg.completed"
            elif action == "release":
                await commands.release(ctx, user, task_id)
                msg = "msg.released"
            elif action in REQUEST_ACTIONS:
                units = _texts(form, "units")
                if len(units) > 5:
                    raise commands.CommandError(400, "co-handling: at most 5 units")
                hours = _hours(form) if action == "extension" else None
                if action == "extension" and hours is None:
                    raise commands.CommandError(400, "an extension needs the number of hours")
                await commands.request(ctx, user, task_id, REQUEST_ACTIONS[action], _text(form, "reason"),
                                       hours or 0, units if action == "cohandling" else None)
                msg = f"msg.requested.{action}"
            elif action == "triage":
                await commands.triage(ctx, user, task_id, _text(form, "category", 32), _text(form, "unit", 32),
                                      _text(form, "note"))
                msg = "msg.triaged"
            else:
                raise NotFoundException(f"unknown action '{action}'")
        except commands.CommandError as exc:
            if exc.status == 403:
                raise PermissionDeniedException(exc.reason) from exc
            return Redirect(_with_query(back, error=exc.reason), status_code=303)
        return Redirect(_with_query(back, msg=msg), status_code=303)

    @get("/events/{event_id:str}")
    async def event(self, ctx: AppContext, request: Request, event_id: str, msg: str | None = None,
                    error: str | None = None) -> Response[Any]:
        """Everything about one event, within the user's scope; the supervisor panel for supervisors."""
        user = await _page_user(ctx, request)
        if user is None:
            return Redirect("/login")
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
        forms = await _units_for_forms(ctx, user)
        return Template("event.html", context={
            "user": user, "e": detail, "msg": msg, "error": error, "temporal_link": temporal_link,
            "warnings": await queries.warnings_of(ctx.db, event_id),
            "report_photos": await queries.report_photos(ctx.db, event_id),
            "location_map": location_map(await ctx.org(), event),
            "related": [r for r in await queries.related_events(ctx.db, event)
                        if user.sees(r.unit, r.grid, r.community, r.street)][:10],
            "sup_actions": supervisor_actions(event.state, event.pending, event.paused) if user.is_supervisor else [],
            "triggers_from": triggers_from, "categories": (await ctx.engine()).list.categories,
            "units": forms["org_units"] if user.is_supervisor else [], **forms,
        })

    @get("/events/{event_id:str}/timeline.csv")
    async def timeline_csv(self, ctx: AppContext, request: Request, event_id: str) -> Response[Any]:
        """The event's audit trail as CSV, for the logged-in user (same scope as the event page)."""
        user = await _page_user(ctx, request)
        if user is None:
            return Redirect("/login")
        event, _ = await visible_event(ctx, user, event_id)
        return timeline_csv_response(event_id, await queries.timeline(ctx.db, event_id))

    @post("/events/{event_id:str}/supervise", status_code=303)
    async def supervise(self, ctx: AppContext, request: Request, event_id: str) -> Redirect:
        """A supervisor's override from the event page or the console."""
        user = await _page_user(ctx, request)
        if user is None:
            return Redirect("/login", status_code=303)
        if not user.is_supervisor:
            raise PermissionDeniedException("only supervisors can do this")
        form = await request.form()
        back = _safe_next(_text(form, "next", 300), f"/events/{quote(event_id, safe='')}")
        action = _text(form, "action", 32)
        try:
            if action not in commands.SUPERVISOR_ACTIONS:
                raise commands.CommandError(400, f"unknown action '{action}'")
            await commands.supervise(
                ctx, user, event_id, action, reason=_text(form, "reason"), unit=_text(form, "unit", 32) or None,
                assignee=_text(form, "assignee", 64) or None, hours=_hours(form),
                notice_id=_text(form, "notice_id", 220) or None,
            )
        except commands.CommandError as exc:
            if exc.status == 403:
                raise PermissionDeniedException(exc.reason) from exc
            if exc.status == 404:
                raise NotFoundException(exc.reason) from exc
            return Redirect(_with_query(back, error=exc.reason), status_code=303)
        return Redirect(_with_query(back, msg=f"msg.supervised.{action}"), status_code=303)

    @get("/console")
    async def console(self, ctx: AppContext, request: Request, msg: str | None = None, error: str | None = None,
                      ok: int | None = None, total: int | None = None) -> Response[Any]:
        """The command-centre console: counts per unit and the queues that need a supervisor."""
        user = await _page_user(ctx, request)
        if user is None:
            return Redirect("/login")
        if not user.is_supervisor:
            raise PermissionDeniedException("supervisors only")
        data = await queries.console(ctx.db, user.scope, utcnow())
        org = await ctx.org()
        forms = await _units_for_forms(ctx, user)
        bulk = {"ok": ok, "total": total} if msg == "msg.bulk_done" and ok is not None and total is not None else None
        return Template("console.html", context={
            "user": user, "msg": None if bulk else msg, "error": error, "bulk": bulk, "q": data,
            "org": org.units, "now": utcnow(), "bulk_actions": BULK_ACTIONS, **forms,
        })

    @post("/console/bulk", status_code=303)
    async def bulk(self, ctx: AppContext, request: Request) -> Redirect:
        """One override on the selected events; each is tried, failures are reported with their reasons."""
        user = await _page_user(ctx, request)
        if user is None:
            return Redirect("/login", status_code=303)
        if not user.is_supervisor:
            raise PermissionDeniedException("supervisors only")
        form = await request.form()
        event_ids = _texts(form, "event_ids")
        action = _text(form, "action", 32)
        if action not in BULK_ACTIONS:
            return Redirect(_with_query("/console", error=f"unknown bulk action '{action}'"), status_code=303)
        if not event_ids:
            return Redirect(_with_query("/console", msg="msg.bulk_none"), status_code=303)
        if len(event_ids) > MAX_BULK:
            return Redirect(_with_query("/console", error=f"at most {MAX_BULK} events at once"), status_code=303)
        reason, unit = _text(form, "reason"), _text(form, "unit", 32) or None
        failures: list[str] = []
        for event_id in event_ids:
            try:
                await commands.supervise(ctx, user, event_id, action, reason=reason,
                                         unit=unit if action == "reassign" else None)
            except commands.CommandError as exc:
                failures.append(f"{event_id}: {exc.reason}")
        params = {"msg": "msg.bulk_done", "ok": str(len(event_ids) - len(failures)), "total": str(len(event_ids))}
        if failures:
            params["error"] = "; ".join(failures)[:1500]
        return Redirect(_with_query("/console", **params), status_code=303)


PAGE_CONTROLLERS = [PublicPages, StaffPages, NearbyController]
