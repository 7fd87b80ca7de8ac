"""The JSON API (OpenAPI at /schema). Every route validates input; errors are 4xx with a reason."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import (
    NotAuthorizedException,
    NotFoundException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from rules.suggest import MAX_TEXT_CHARS
from store import duplicates, queries
from store.receipts import shown_key
from web import api_keys, commands, idempotency
from web.access import admins, signed_in, supervisors
from web.answers import (
    CategoriesAnswer,
    FollowedAnswer,
    RatedAnswer,
    SuggestionsAnswer,
    TaskAnswer,
    TokenAnswer,
    TriagedAnswer,
    UnitsAnswer,
    UsersAnswer,
)
from web.auth import CurrentUser, end_session, issue_token, visible_event
from web.client_address import client_ip
from web.context import AppContext
from web.event_search import EventSearchAnswer, api_search
from web.ratelimit import guarded_login
from web.request_limits import Limited, follow_limit, follow_phone_limit, hit, track_limit
from web.schemas import CompleteIn, EventIn, FollowIn, LoginIn, RatingIn, TriageIn
from web.views import event_detail, public_status
from workflows.types import EventReport

#: Most suggestions one request may ask for.
SUGGEST_MAX_LIMIT = 20



class AuthController(Controller):
    """Login and logout for API clients."""

    path = "/api/auth"

    @post("/login", status_code=HTTP_200_OK)
    async def login(self, ctx: AppContext, request: Request, data: LoginIn) -> TokenAnswer:
        """Exchange username and password for a bearer token (429 after too many failures)."""
        user, wait = await guarded_login(ctx, request, data.username, data.password, "api")
        if wait:
            raise TooManyRequestsException(
                f"too many failed logins; try again in {wait} seconds", headers={"Retry-After": str(wait)})
        if user is None:
            raise NotAuthorizedException("wrong username or password")
        return {
            "token": await issue_token(ctx, user.username, via="api"),
            "token_type": "bearer",
            "user": {"username": user.username, "display_name": user.display_name,
                     "unit": user.unit, "role": user.role},
        }


    @post("/logout", status_code=HTTP_204_NO_CONTENT, guards=[signed_in])
    async def logout(self, ctx: AppContext, user: CurrentUser, request: Request) -> None:
        """Revoke the bearer token of this request on the server (audited): it gives 401 from now on,
        also before its expiry. 401 when the token is not valid (any more)."""
        await end_session(ctx, user)


class CatalogueController(Controller):
    """Public reference data: categories and the organisation tree."""

    path = "/api"

    @get("/categories")
    async def categories(self, ctx: AppContext) -> CategoriesAnswer:
        """The active responsibility list's categories."""
        lst = (await ctx.engine()).list
        return {
            "version": lst.version,
            "groups": [g.model_dump() for g in lst.groups],
            "categories": [
                {
                    "code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "group": c.group,
                    "tier": c.tier, "department": c.department, "deadlines": c.deadlines.model_dump(),
                }
                for c in lst.categories
            ],
        }

    @get("/categories/suggest")
    async def suggest_categories(self, ctx: AppContext, text: str | None = None, limit: int = 5) -> SuggestionsAnswer:
        """Categories that fit a free-text description (?text=...&limit=5), best first.

        Keyword and character matching against the active list; no network model. 400 when the text
        is missing, blank or longer than 2000 characters, or the limit is outside 1..20.
        """
        if text is None or not text.strip():
            raise ValidationException("query parameter 'text' is required and must not be empty")
        if len(text) > MAX_TEXT_CHARS:
            raise ValidationException(f"query parameter 'text' is too long ({len(text)} > {MAX_TEXT_CHARS} characters)")
        if not 1 <= limit <= SUGGEST_MAX_LIMIT:
            raise ValidationException(f"query parameter 'limit' must be between 1 and {SUGGEST_MAX_LIMIT}")
        return {
            "suggestions": [
                {"code": s.code, "name_zh": s.name_zh, "name_en": s.name_en, "score": s.score,
                 "matched": list(s.matched)}
                for s in (await ctx.suggester()).suggest(text, limit)
            ]
        }

    @get("/units")
    async def units(self, ctx: AppContext) -> UnitsAnswer:
        """The organisation tree with unit codes and tiers."""
        org = await ctx.org()
        return {"units": org.tree()}


class EventController(Controller):
    """Reporting and reading events."""

    path = "/api/events"

    @post("/", status_code=HTTP_201_CREATED)
    async def create(
        self, ctx: AppContext, request: Request, data: EventIn,
        idempotency_key: Annotated[str | None, Parameter(
            header=idempotency.HEADER, min_length=1, max_length=idempotency.MAX_HEADER_KEY,
            pattern=idempotency.HEADER_KEY_PATTERN, required=False,
            description="A key of yours for this report (e.g. a UUID; 1-255 visible ASCII characters). The "
                        "same key within 24 hours gives the same status and body, the same event, and "
                        "never a second one; with another body: 422. Keys are scoped to the caller (the "
                        "integration of the API key, else the logged-in user, else the client address)."),
        ] = None,
        api_key: Annotated[str | None, Parameter(
            header=api_keys.HEADER, min_length=1, max_length=200, required=False,
            description="An integration's API key (from an administrator: /admin/keys or `wulian apikey "
                        "create`), with the scope `report`: the event carries the integration, which may "
                        "read it back (Open311). 401 for an unknown or revoked key, 403 without the scope, "
                        "429 over the key's rate limit. Without it the report is anonymous."),
        ] = None,
    ) -> Response[dict[str, Any]]:
        """Report an event (public, like the portal): 201 with the receipt code and the tracking key (shown
        once), 202 when not yet routed. The same source and external id again gives the same event: 200
        with only its id and ``duplicate`` (never its receipt code: external ids can be guessed). With an
        ``Idempotency-Key`` header, a repetition within 24 hours gives the first answer again (with the
        header ``Idempotent-Replayed: true``); the same key with another body gives 422."""
        integration = await api_keys.require_http(ctx, request, "report", api_key) if api_key else None
        await commands.check_category(ctx, data.category)
        report = data.to_report()
        if integration is not None:
            report.integration = integration.name
        if idempotency_key is None:
            started = await commands.start_event(ctx, report)
            status, body = _created(started)
            body = await _with_duplicates(ctx, body, report, started)
            return Response(_with_tracking(body, started.tracking_key), status_code=status)
        scope = (f"integration:{integration.name}" if integration is not None
                 else await idempotency.api_scope(ctx, request))

        async def run(prepared: commands.Prepared) -> tuple[int, dict[str, Any]]:
            started = await commands.start_event(ctx, report, prepared)
            status, body = _created(started)
            return status, await _with_duplicates(ctx, body, report, started)

        try:
            answer = await idempotency.once(
                ctx, report, idempotency.key_hash(ctx.settings.secret(), f"api:{scope}", idempotency_key),
                idempotency.request_hash(data.model_dump(mode="json")), run)
        except idempotency.KeyReused:
            raise commands.CommandError(
                422, "this Idempotency-Key was used for another request within 24 hours; use a new key for a "
                     "new report") from None
        except idempotency.StillRunning:
            raise commands.CommandError(
                409, "a request with this Idempotency-Key is still running; try again shortly") from None
        return Response(_with_tracking(answer.body, answer.tracking_key), status_code=answer.status,
                        headers={"Idempotent-Replayed": "true"} if answer.replayed else None)

    @get("/", guards=[supervisors])
    async def search(self, ctx: AppContext, user: CurrentUser, request: Request) -> EventSearchAnswer:
        """Search the events of the supervisor's scope (supervisors and admins; 403 otherwise), newest
        first: ``q`` (a receipt code, or text in description and address), ``category``, ``unit``,
        ``tier``, ``state``, ``source``, ``created_from``/``created_to``, ``closed_from``/``closed_to``
        (YYYY-MM-DD), ``overdue``, ``rework`` (1 or 0), ``limit`` (1-100) and ``cursor`` (the
        ``next_cursor`` of the previous page). The same as the page ``/search`` (web/event_search.py)."""
        return await api_search(ctx, user, request)

    @get("/{event_id:str}", guards=[signed_in])
    async def read(self, ctx: AppContext, user: CurrentUser, request: Request, event_id: str) -> dict[str, Any]:
        """One event with its decision, deadlines, tasks and timeline (within the user's scope)."""
        event, _ = await visible_event(ctx, user, event_id)
        return await event_detail(ctx, event)


def _created(started: commands.Started) -> tuple[int, dict[str, Any]]:
    """The status and body answering a report, without the tracking key (which is added as it is sent:
    :func:`_with_tracking`; an answer kept for an ``Idempotency-Key`` holds no key)."""
    if started.duplicate:
        # The same source and external id: the same event, and nothing of it to an anonymous caller
        # (external ids such as hotline ticket numbers are guessable; the receipt code reads it).
        return HTTP_200_OK, {"event_id": started.event_id, "duplicate": True}
    if started.joined:
        # A camera alarm counted on its camera's open event: which one, and how many alarms it holds.
        occurrences = started.snapshot.occurrences if started.snapshot is not None else None
        return HTTP_200_OK, {"event_id": started.event_id, "joined": True, "occurrences": occurrences}
    body: dict[str, Any] = {"event_id": started.event_id, "receipt_code": started.receipt_code}
    snap = started.snapshot
    if snap is None:
        body["state"] = "intake"
        return HTTP_202_ACCEPTED, body
    decision = snap.decision
    body.update(
        state=snap.state,
        stage=snap.stage,
        tier=decision.tier if decision else None,
        unit=decision.unit if decision else None,
        department=decision.department if decision else None,
        decision={"rule": decision.rule, "list_version": decision.list_version,
                  "reason": decision.reason} if decision else None,
    )
    return HTTP_201_CREATED, body


async def _with_duplicates(ctx: AppContext, body: dict[str, Any], report: EventReport,
                           started: commands.Started) -> dict[str, Any]:
    """A new event's answer with ``duplicate_of``: open reports it may duplicate, to follow ("me too",
    ``POST /api/events/{event_id}/follow``) — event id, category and distance only, never a receipt
    code (which reads the report's timeline) nor anybody's name or phone. Camera alarms join their
    camera's event instead (``joined``)."""
    if "receipt_code" not in body or report.source == "camera":
        return body
    found = await commands.duplicate_candidates(ctx, report, started)
    return {**body, "duplicate_of": [
        {"event_id": c.event_id, "category": c.category, "within_m": duplicates.within(c.distance_m)} for c in found]}


def _with_tracking(body: dict[str, Any], tracking_key: str | None) -> dict[str, Any]:
    """``body`` with the reporter's tracking key and link (shown to the reporter; only its hash is kept).
    Rating the result needs it. Only an answer with a receipt code (a new event) gets one."""
    if not tracking_key or "receipt_code" not in body:
        return body
    # The key and link come after the receipt code, as they always did.
    extra = {"tracking_key": shown_key(tracking_key),
             "tracking_url": f"/track/{body['receipt_code']}?key={tracking_key}"}
    items = list(body.items())
    at = next(i for i, (k, _) in enumerate(items) if k == "receipt_code") + 1
    return dict(items[:at] + list(extra.items()) + items[at:])


class TaskController(Controller):
    """The inbox and task actions."""

    path = "/api"

    @post("/tasks/{task_id:str}/claim", status_code=HTTP_200_OK, guards=[signed_in])
    async def claim(self, ctx: AppContext, user: CurrentUser, request: Request, task_id: str) -> TaskAnswer:
        """签收. A task already claimed gives 409 with the reason."""
        view = await commands.claim(ctx, user, task_id)
        return {"task_id": view.task.task_id, "status": view.task.status,
                "claimed_by": view.task.claimed_by, "event_state": view.event_state}

    @post("/tasks/{task_id:str}/complete", status_code=HTTP_200_OK, guards=[signed_in])
    async def complete(self, ctx: AppContext, user: CurrentUser, request: Request, task_id: str,
                       data: CompleteIn) -> TaskAnswer:
        """办结 (with a result) or, for a verification task, 核查 (with passed)."""
        view = await commands.complete(ctx, user, task_id, data.result, data.passed, data.photos,
                                       data.public_photos)
        return {"task_id": view.task.task_id, "status": view.task.status,
                "event_state": view.event_state, "event_stage": view.event_stage}

    @post("/tasks/{task_id:str}/triage", status_code=HTTP_200_OK, guards=[signed_in])
    async def triage(self, ctx: AppContext, user: CurrentUser, request: Request, task_id: str,
                     data: TriageIn) -> TriagedAnswer:
        """A supervisor places an event from the triage inbox (category and unit)."""
        view = await commands.triage(ctx, user, task_id, data.category, data.unit, data.note)
        return {"task_id": view.task.task_id, "event_state": view.event_state}


async def _limited(ctx: AppContext, request: Request, limit_of: Any) -> None:
    """Count this request against a public limit of its client address; 429 with Retry-After over it."""
    try:
        await hit(ctx.db, limit_of(ctx.settings), client_ip(request, ctx.settings))
    except Limited as exc:
        raise TooManyRequestsException(str(exc), headers={"Retry-After": str(exc.retry_after)}) from None


class TrackController(Controller):
    """Public tracking by receipt code (rate-limited per client address)."""

    path = "/api/track"

    @get("/{receipt_code:str}")
    async def track(self, ctx: AppContext, request: Request, receipt_code: str) -> dict[str, Any]:
        """Status of a report, without anybody's names or phone numbers."""
        await _limited(ctx, request, track_limit)
        event = await queries.event_by_receipt(ctx.db, receipt_code)
        if event is None:
            raise NotFoundException("no report with this receipt code")
        return public_status(event, await queries.timeline(ctx.db, event.event_id))

    @post("/{receipt_code:str}/rating", status_code=HTTP_200_OK)
    async def rating(self, ctx: AppContext, request: Request, receipt_code: str, data: RatingIn) -> RatedAnswer:
        """The reporter's rating, with the tracking key given when reporting (403 without it); closes
        the event or sends it back for rework."""
        await _limited(ctx, request, track_limit)
        event = await queries.event_by_receipt(ctx.db, receipt_code)
        if event is None:
            raise NotFoundException("no report with this receipt code")
        snap = await commands.rate(ctx, event.event_id, data.rating, data.comment, data.tracking_key)
        return {"receipt_code": snap.receipt_code, "state": snap.state, "rating": snap.rating}


class FollowController(Controller):
    """"Follow / me too" on an open event from the nearby list (public, rate-limited)."""

    path = "/api/events"

    @post("/{event_id:str}/follow", status_code=HTTP_200_OK)
    async def follow(self, ctx: AppContext, request: Request, event_id: str, data: FollowIn) -> FollowedAnswer:
        """Count the caller as one more person with this problem, and send its notices to ``phone``
        (when given). Gives no receipt code and no right to act on the event."""
        await _limited(ctx, request, follow_limit)
        event = await queries.get_event(ctx.db, event_id)
        if event is None or event.state in ("closed", "voided", "merged"):
            raise NotFoundException("no open report with this id")
        phone = data.phone.strip()
        if phone:
            try:
                await hit(ctx.db, follow_phone_limit(ctx.settings), hashlib.sha256(phone.encode()).hexdigest())
            except Limited as exc:
                raise TooManyRequestsException("this phone number follows enough reports for today",
                                               headers={"Retry-After": str(exc.retry_after)}) from None
        snap = await commands.follow(ctx, event_id, phone, client_ip(request, ctx.settings))
        return {"event_id": event_id, "followers": len(snap.followers), "notified": bool(data.phone.strip())}


class AdminController(Controller):
    """Administration (admins only)."""

    path = "/api"
    guards = [admins]  # every route: administrators only (web/access.py)

    @get("/users")
    async def users(self, ctx: AppContext, user: CurrentUser, request: Request, unit: str | None = None) -> UsersAnswer:
        """Users, optionally of one unit (?unit=CODE)."""
        rows = await queries.users(ctx.db, unit)
        return {
            "users": [
                {"username": u.username, "display_name": u.display_name, "unit": u.unit, "role": u.role,
                 "stationed_street": u.stationed_street, "active": u.active}
                for u in rows
            ]
        }


API_CONTROLLERS = [
    AuthController,
    CatalogueController,
    EventController,
    TaskController,
    TrackController,
    FollowController,
    AdminController,
]
