"""Pages anyone can use: home, language, login, the citizen report form, tracking by receipt code,
and the public list of open reports nearby."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from pydantic import ValidationError

from store import duplicates, queries
from store.receipts import key_matches, normalise_key, shown_key
from web import commands, idempotency
from web.auth import SESSION_COOKIE, CurrentUser, end_session, issue_token
from web.client_address import client_ip
from web.context import AppContext
from web.errors import refusal
from web.i18n import LANG_COOKIE, LANGUAGES, language_of, translate
from web.page_forms import Form, form_text, safe_next
from web.photos import MAX_REPORT_PHOTOS, PhotoError, form_uploads, save_anonymous_photos
from web.ratelimit import guarded_login, wait_text
from web.request_limits import Limited, hit, track_limit
from web.schemas import RatingIn
from web.track_public import handling_outcome
from web.views import public_status
from workflows import inputs
from workflows.types import EventReport, Location, Reporter


class PublicPages(Controller):
    """Pages anyone can use: home, language, login, report, track."""

    @get("/")
    async def home(self, viewer: CurrentUser | None) -> Redirect:
        """Staff go to their inbox, residents to the report form."""
        return Redirect("/inbox" if viewer else "/report")

    @get("/lang/{lang:str}")
    async def set_language(self, lang: str, next: str | None = None) -> Redirect:  # noqa: A002
        """Switch the interface language (cookie)."""
        response = Redirect(safe_next(next))
        if lang in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
        return response

    @get("/login")
    async def login_form(self, error: str | None = None) -> Template:
        """The login form."""
        # Only the login page's own messages (a key from the query string is never shown raw).
        return Template("login.html", context={"login_error": error if error == "login.failed" else None})

    @post("/login", status_code=303)
    async def login(self, ctx: AppContext, request: Request, data: Form) -> Response[Any]:
        """Check the password (through the login limits) and set the session cookie."""
        username = (data.get("username") or "").strip()[:64]
        user, wait = await guarded_login(ctx, request, username, data.get("password") or "", "web")
        if wait:
            return Template("login.html", context={"login_error": "login.wait", "wait": wait_text(request, wait),
                                                   "username": username},
                            status_code=429, headers={"Retry-After": str(wait)})
        if user is None:
            return Template("login.html", context={"login_error": "login.failed", "username": username},
                            status_code=401)
        response = Redirect("/inbox", status_code=303)
        response.set_cookie(
            SESSION_COOKIE, await issue_token(ctx, user.username, via="web"), httponly=True, samesite="lax",
            max_age=ctx.settings.token_ttl_hours * 3600, path="/",
        )
        return response

    @post("/logout", status_code=303)
    async def logout(self, ctx: AppContext, viewer: CurrentUser | None) -> Redirect:
        """End the session: its token is revoked on the server (audited), so the cookie, even if kept
        or copied, no longer logs anybody in; then forget the cookie."""
        if viewer is not None:
            await end_session(ctx, viewer)
        response = Redirect("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @get("/report")
    async def report_form(self, ctx: AppContext) -> Template:
        """The citizen report form, with a fresh one-time key (``web/idempotency.py``)."""
        return Template("report.html", context=await _report_context(ctx))

    @post("/report", status_code=200)
    async def report(self, ctx: AppContext, request: Request) -> Template:
        """Submit a report (url-encoded, or multipart with photos); shows the receipt code.

        The form's one-time key makes a repeated submission (three quick clicks, a reload) give the
        same receipt page for the same event, never a second event. A post without a key (not from
        the form) is taken as it comes, as the API takes a report without ``Idempotency-Key``."""
        form = await request.form()
        # Well over each limit, so that a too long text is refused with the limit (never cut to fit) and
        # comes back whole in the form, for the resident to shorten.
        data = {k: form_text(form, k, _KEPT * limit) for k, limit in _REPORT_FIELDS.items()}
        report = inputs.normalised(EventReport(
            category=data["category"], description=data["description"],
            location=Location(grid=data["grid"] or None, address=data["address"] or None),
            reporter=Reporter(name=data["name"], phone=data["phone"]), source="portal",
        ))
        lang = language_of(request.cookies)
        secret = ctx.settings.secret()
        form_key = form_text(form, idempotency.FORM_FIELD, 120)
        problem = idempotency.form_key_problem(secret, form_key) if form_key else None
        errors = [problem_text(lang, p) for p in inputs.report_problems(report)]
        if not errors and report.category and (await ctx.engine()).category(report.category) is None:
            errors.append(translate(lang, "input.unknown_category", code=report.category))
        if errors:
            # Nothing was claimed: the corrected form may use the same key (if it is a good one).
            return await _report_again(ctx, data, errors, 400, "" if problem else form_key)
        if problem:
            return await _report_again(ctx, data, [translate(lang, f"report.key.{problem}")], 400)

        async def run(prepared: commands.Prepared) -> tuple[int, dict[str, Any]]:
            photos = await save_anonymous_photos(ctx, request, form_uploads(form), MAX_REPORT_PHOTOS)
            started = await commands.start_event(ctx, report, prepared)
            if photos:
                await queries.add_report_photos(ctx.db, started.event_id, photos)
            return 200, {"receipt_code": started.receipt_code, "photos": len(photos),
                         "duplicate_of": await _duplicates_of(ctx, report, started)}

        try:
            if form_key:
                answer = await idempotency.once(
                    ctx, report, idempotency.key_hash(secret, "form", form_key),
                    idempotency.request_hash(data), run)
            else:
                prepared = await commands.prepare(ctx, report)
                status, body = await run(prepared)
                answer = idempotency.Answer(status, body, prepared.grant.tracking_key, replayed=False)
        except PhotoError as exc:
            return await _report_again(ctx, data, [exc.message(lang)], exc.status, headers=exc.headers)
        except idempotency.KeyReused as exc:
            # The same form sent again with other content (e.g. back, edited, submitted): say so, with
            # the first report's receipt code, and a fresh key so that submitting again reports anew.
            text = translate(lang, "report.key.reused", code=exc.first.receipt_code)
            return await _report_again(ctx, data, [text], 409)
        except idempotency.StillRunning:
            return await _report_again(ctx, data, [translate(lang, "report.key.running")], 409, form_key)
        code = str(answer.body.get("receipt_code") or "")
        key = answer.tracking_key or ""
        return Template("report_done.html", context={
            "receipt_code": code, "photos": int(answer.body.get("photos") or 0), "tracking_key": shown_key(key),
            "tracking_link": f"/track/{code}?key={key}" if key else None,
            "duplicates": list(answer.body.get("duplicate_of") or []),
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
            raise refusal(NotFoundException, "error.receipt_missing")
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
    outcome = await handling_outcome(ctx.db, event.event_id)  # the result and the photos marked public
    return Template("track.html", status_code=status, context={
        "status": view, "msg": msg, "error": error, "key": known, "key_wrong": bool(key) and not known,
        "rateable": bool(event.tracking_key_hash), "photos": photos, "outcome": outcome,
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



async def _duplicates_of(ctx: AppContext, report: EventReport, started: commands.Started) -> list[dict[str, Any]]:
    """Open reports the new one may duplicate, offered to follow on the receipt page ("me too"): event
    id, category, distance and the shortened description the public nearby list shows."""
    found = await commands.duplicate_candidates(ctx, report, started)
    return [{"event_id": c.event_id, "category": c.category, "within_m": duplicates.within(c.distance_m),
             "summary": c.summary}
            for c in found]


async def _report_context(ctx: AppContext, form_key: str = "") -> dict[str, Any]:
    org = await ctx.org()
    grids = sorted((u for u in org.units.values() if u.kind == "grid"), key=lambda u: u.code)
    lst = (await ctx.engine()).list
    return {"groups": lst.groups, "categories": lst.categories, "grids": grids, "errors": [], "form": {},
            "form_key": form_key or idempotency.issue_form_key(ctx.settings.secret()),
            "max_description": inputs.MAX_DESCRIPTION}


async def _report_again(ctx: AppContext, data: dict[str, str], errors: list[str], status: int,
                        form_key: str = "", headers: dict[str, str] | None = None) -> Template:
    """The report form again with ``errors`` and what was typed, with ``form_key`` (a fresh key if none)."""
    context = await _report_context(ctx, form_key)
    context.update(errors=errors, form=data)
    return Template("report.html", context=context, status_code=status, headers=headers)




#: Characters of a description shown in the public list of nearby reports.
NEARBY_TEXT = 40
#: The report form's fields and their limits (``workflows.inputs``, the one definition of a report).
_REPORT_FIELDS = {"category": inputs.MAX_CATEGORY, "description": inputs.MAX_DESCRIPTION, "grid": inputs.MAX_GRID,
                  "address": inputs.MAX_ADDRESS, "name": inputs.MAX_REPORTER_NAME, "phone": inputs.MAX_PHONE}
#: A refused form field comes back with up to this many times its limit (a body is at most a few MB).
_KEPT = 4
#: Field names of the shared problems, as the report form labels them.
_FIELD_LABELS = {"category": "report.category", "description": "report.description", "location.grid": "report.grid",
                 "location.address": "report.address", "reporter.name": "report.name",
                 "reporter.phone": "report.phone"}


def problem_text(lang: str, problem: inputs.Problem) -> str:
    """A problem of an input in the visitor's language: ``问题描述：不能为空``."""
    label = _FIELD_LABELS.get(problem.field)
    field = translate(lang, label) if label else problem.field
    return translate(lang, f"input.{problem.code}", field=field, limit=problem.limit)
