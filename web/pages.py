"""Server-rendered pages: login, inbox, event detail with the supervisor panel, the command-centre
console, the citizen report form and tracking.

Forms post back here (CSRF-protected, url-encoded or multipart) and answer with a 303 back to the page,
carrying ``?msg=<i18n key>`` or ``?error=<reason>``; every change goes to the workflow through web.commands.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlparse

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body
from litestar.response import Redirect, Template
from pydantic import ValidationError

from store import queries
from store.receipts import key_matches, normalise_key, shown_key
from store.timeutil import utcnow
from web import commands
from web.auth import SESSION_COOKIE, CurrentUser, end_session, issue_token, resolve_user, visible_event
from web.client_address import client_ip
from web.console_api import timeline_csv_response
from web.context import AppContext
from web.i18n import LANG_COOKIE, LANGUAGES, language_of, translate
from web.location_map import location_map
from web.photos import (
    MAX_REPORT_PHOTOS,
    MAX_TASK_PHOTOS,
    PhotoError,
    form_uploads,
    save_anonymous_photos,
    save_staff_photos,
)
from web.ratelimit import guarded_login, wait_text
from web.request_limits import Limited, hit, track_limit
from web.schemas import RatingIn
from web.views import event_detail, public_status
from workflows import inputs
from workflows.lifecycle import ACTORS, triggers_from
from workflows.types import EventReport, Location, Reporter

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


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
            SESSION_COOKIE, await issue_token(ctx, user.username, via="web"), httponly=True, samesite="lax",
            max_age=ctx.settings.token_ttl_hours * 3600, path="/",
        )
        return response

    @post("/logout", status_code=303)
    async def logout(self, ctx: AppContext, request: Request) -> Redirect:
        """End the session: its token is revoked on the server (audited), so the cookie, even if kept
        or copied, no longer logs anybody in; then forget the cookie."""
        user = await _page_user(ctx, request)
        if user is not None:
            await end_session(ctx, user)
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
        # One character over each limit, so that a too long text is refused with the reason, not cut.
        data = {k: _text(form, k, limit + 1) for k, limit in _REPORT_FIELDS.items()}
        report = inputs.normalised(EventReport(
            category=data["category"], description=data["description"],
            location=Location(grid=data["grid"] or None, address=data["address"] or None),
            reporter=Reporter(name=data["name"], phone=data["phone"]), source="portal",
        ))
        lang = language_of(request.cookies)
        errors = [problem_text(lang, p) for p in inputs.report_problems(report)]
        if not errors and report.category and (await ctx.engine()).category(report.category) is None:
            errors.append(translate(lang, "input.unknown_category", code=report.category))
        if errors:
            ctx_ = await _report_context(ctx)
            ctx_.update(errors=errors, form=data)
            return Template("report.html", context=ctx_, status_code=400)
        try:
            photos = await save_anonymous_photos(ctx, request, form_uploads(form), MAX_REPORT_PHOTOS)
        except PhotoError as exc:
            ctx_ = await _report_context(ctx)
            ctx_.update(errors=[exc.message(language_of(request.cookies))], form=data)
            return Template("report.html", context=ctx_, status_code=exc.status, headers=exc.headers)
        started = await commands.start_event(ctx, report)
        if photos:
            await queries.add_report_photos(ctx.db, started.event_id, photos)
        key = started.tracking_key or ""
        return Template("report_done.html", context={
            "receipt_code": started.receipt_code, "photos": len(photos), "tracking_key": shown_key(key),
            "tracking_link": f"/track/{started.receipt_code}?key={key}" if key else None,
        })

    @get("/track")
    async def track_form(self, code: str | None = None) -> Response[Any]:
        """Look up a report by receipt code."""
        if code:
            return Redirect(f"/track/{quote(code.strip().upper(), safe='')}")
        return Template("track.html", context={"status": None})

    @get("/track/{code:str}")
    async def track(self, ctx: AppContext, request: Request, code: str, msg: str | None = None,
                    key: str | None = None) -> Response[Any]:
        """A report's plain-language status (the receipt code is enough to read it), with the rating
        form when it is time to rate: the reporter's tracking key comes from the link in their notice
        (``?key=``) or is typed in."""
        limited = await _track_limited(ctx, request)
        if limited is not None:
            return limited
        return await _track_page(ctx, code, msg=msg, key=key)

    @post("/track/{code:str}/rating", status_code=303)
    async def rate(self, ctx: AppContext, request: Request, code: str, data: Form) -> Response[Any]:
        """Submit the rating, with the tracking key (403 and the page again without the right one)."""
        limited = await _track_limited(ctx, request)
        if limited is not None:
            return limited
        event = await queries.event_by_receipt(ctx.db, code)
        if event is None:
            raise NotFoundException("no report with this receipt code")
        lang = language_of(request.cookies)
        key = (data.get("tracking_key") or "").strip()[:64]
        try:
            rating = RatingIn.model_validate({"rating": data.get("rating"), "comment": data.get("comment", ""),
                                              "tracking_key": key})
        except ValidationError:
            return await _track_page(ctx, code, key=key, error=translate(lang, "track.rate.invalid"), status=400)
        if not key_matches(key, event.tracking_key_hash):
            return await _track_page(ctx, code, key=key, error=translate(lang, "track.key.wrong"), status=403)
        snap = await commands.rate(ctx, event.event_id, rating.rating, rating.comment, key)
        msg = "msg.rated"
        if rating.rating == "dissatisfied":
            # Dissatisfied: back for rework (返工), or to a supervisor's review after the last allowed rework.
            msg = "msg.rated.review" if snap.state == "review" else "msg.rated.rework"
        return Redirect(f"/track/{event.receipt_code}?msg={msg}", status_code=303)


async def _track_limited(ctx: AppContext, request: Request) -> Response[Any] | None:
    """The 429 page when this client address asked too often (counted in the store), else None."""
    try:
        await hit(ctx.db, track_limit(ctx.settings), client_ip(request, ctx.settings))
    except Limited as exc:
        text = translate(language_of(request.cookies), "track.limited", seconds=exc.retry_after)
        return Template("track.html", context={"status": None, "error": text}, status_code=429,
                        headers={"Retry-After": str(exc.retry_after)})
    return None


async def _track_page(ctx: AppContext, code: str, *, msg: str | None = None, key: str | None = None,
                      error: str | None = None, status: int = 200) -> Template:
    event = await queries.event_by_receipt(ctx.db, code)
    if event is None:
        return Template("track.html", context={"status": None, "notfound": True, "code": code}, status_code=404)
    view = public_status(event, await queries.timeline(ctx.db, event.event_id))
    # A key from the link is used only when it is the right one (a wrong one is asked for again).
    known = normalise_key(key) if key and key_matches(key, event.tracking_key_hash) else ""
    # The reporter (who holds the key) sees the photos they sent; the receipt code alone shows none.
    photos = await queries.report_photos(ctx.db, event.event_id) if known else []
    return Template("track.html", status_code=status, context={
        "status": view, "msg": msg, "error": error, "key": known, "key_wrong": bool(key) and not known,
        "rateable": bool(event.tracking_key_hash), "photos": photos,
    })


class NearbyController(Controller):
    """Open reports near a resident's, so they can follow one instead of reporting it again."""

    path = "/api/events/nearby"

    @get("/")
    async def nearby(self, ctx: AppContext, request: Request, category: str | None = None,
                     grid: str | None = None, address: str | None = None) -> dict[str, Any]:
        """Open events of ``category`` in ``grid`` (or the grid an ``address`` lies in), newest first.

        Public: status, a shortened description, the day of the report and how many follow it — never a
        receipt code (which would let anyone read the report's timeline) or names and phones. Each can
        be followed ("me too": ``POST /api/events/{event_id}/follow``), which acts on nothing else.
        Empty when the category or the place is unknown.
        """
        category = (category or "").strip()[:32]
        placed = (await ctx.org()).locate((grid or "").strip()[:32] or None, None, None,
                                          (address or "").strip()[:300] or None)
        if not category or placed.grid is None:
            return {"grid": placed.grid, "events": []}
        rows = await queries.open_events_nearby(ctx.db, category=category, grid=placed.grid)
        lang = language_of(request.cookies)
        return {"grid": placed.grid, "events": [
            {"event_id": e.event_id, "state": e.state, "state_label": translate(lang, f"state.{e.state}"),
             "description": e.description if len(e.description) <= NEARBY_TEXT else e.description[:NEARBY_TEXT] + "…",
             "created": e.created_at.date().isoformat(), "followers": e.follower_count}
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
#: Characters of a description shown in the public list of nearby reports.
NEARBY_TEXT = 40
#: The report form's fields and their limits (``workflows.inputs``, the one definition of a report).
_REPORT_FIELDS = {"category": inputs.MAX_CATEGORY, "description": inputs.MAX_DESCRIPTION, "grid": inputs.MAX_GRID,
                  "address": inputs.MAX_ADDRESS, "name": inputs.MAX_REPORTER_NAME, "phone": inputs.MAX_PHONE}
#: Field names of the shared problems, as the report form labels them.
_FIELD_LABELS = {"category": "report.category", "description": "report.description", "location.grid": "report.grid",
                 "location.address": "report.address", "reporter.name": "report.name",
                 "reporter.phone": "report.phone"}


def problem_text(lang: str, problem: inputs.Problem) -> str:
    """A problem of an input in the visitor's language: ``问题描述：不能为空``."""
    label = _FIELD_LABELS.get(problem.field)
    field = translate(lang, label) if label else problem.field
    return translate(lang, f"input.{problem.code}", field=field, limit=problem.limit)
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
                photos = await save_staff_photos(ctx, request, user, form_uploads(form), MAX_TASK_PHOTOS)
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
            return Redirect(_with_query(back, error=exc.text(language_of(request.cookies))), status_code=303)
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
                failures.append(f"{event_id}: {exc.text(language_of(request.cookies))}")
        params = {"msg": "msg.bulk_done", "ok": str(len(event_ids) - len(failures)), "total": str(len(event_ids))}
        if failures:
            params["error"] = "; ".join(failures)[:1500]
        return Redirect(_with_query("/console", **params), status_code=303)


PAGE_CONTROLLERS = [PublicPages, StaffPages, NearbyController]
