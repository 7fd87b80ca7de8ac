"""Commands from the web to the workflows, and the one place where their errors become HTTP codes."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from store import camera_alarms, duplicates, queries, receipts
from store import photos as photo_store
from store.timeutil import utcnow
from store.users import audit, get_user
from web.auth import CurrentUser
from web.context import AppContext
from web.i18n import DEFAULT_LANGUAGE, catalogue, translate
from workflows import policy
from workflows.event_lifecycle import EventLifecycle
from workflows.inputs import camera_of, normalised, report_problems
from workflows.types import (
    CONFLICT,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    ClaimCommand,
    CompleteCommand,
    EventReport,
    EventSnapshot,
    FollowCommand,
    MergeCommand,
    Occurrence,
    RateCommand,
    SupervisorCommand,
    TaskRequest,
    TaskView,
    TriageCommand,
    UnmergeCommand,
)
from wulian.logs import bind

log = logging.getLogger("wulian.commands")

_STATUS = {CONFLICT: 409, FORBIDDEN: 403, NOT_FOUND: 404, INVALID: 400}
_T = TypeVar("_T")


class CommandError(Exception):
    """A refused command, with the HTTP status and the reason to show. A refusal made with
    :meth:`keyed` also carries a message-catalogue key, so pages can give the reason in the
    visitor's language (:meth:`text`); ``reason`` is then its English text, for the API, and
    ``code`` the key without its ``refusal.`` prefix (the API's ``code``)."""

    def __init__(self, status: int, reason: str, key: str | None = None, /, **values: Any) -> None:
        # Positional only: a refusal's parameters may be named ``status`` (a task's, "already done").
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.key = key
        self.values = values

    @classmethod
    def keyed(cls, status: int, key: str, **values: Any) -> CommandError:
        """A refusal whose reason is the catalogue message ``key`` filled with ``values``."""
        return cls(status, translate("en", key, **values), key, **values)

    @classmethod
    def refused(cls, exc: policy.Refused) -> CommandError:
        """A refusal of the rules (``workflows.policy``), checked by the web before asking the workflow."""
        return cls(_STATUS.get(exc.kind, 409), exc.message, refusal_key(exc.code), **exc.params)

    @property
    def code(self) -> str | None:
        """The refusal's stable code (``cohandling_open``), when it has a catalogue key."""
        return self.key.removeprefix(REFUSAL_PREFIX) if self.key else None

    def text(self, lang: str) -> str:
        """The reason in ``lang`` (as given, when the refusal has no catalogue key)."""
        if not self.key:
            return self.reason
        # Parameters that are codes (an action, a state, a task's status, a field) are named in ``lang``.
        values = {k: _named(lang, k, v) for k, v in self.values.items()}
        try:
            return translate(lang, self.key, **values)
        except (KeyError, IndexError, ValueError):  # a message whose placeholders the refusal does not fill
            return self.reason


def _named(lang: str, param: str, value: Any) -> Any:
    """A refusal's parameter as the page shows it: a code the catalogue names, by its name (an unknown
    code, e.g. a made-up action, as it is)."""
    pattern = _PARAM_KEYS.get(param)
    key = pattern.format(value) if pattern else None
    return catalogue(lang).get(key, value) if key and key in catalogue(DEFAULT_LANGUAGE) else value


#: Refusal parameters that hold codes, and the catalogue keys that name them.
_PARAM_KEYS = {"action": "action.{}", "state": "state.{}", "status": "task.status.{}", "pending": "pending.{}",
               "field": "field.{}"}


#: Catalogue keys of the refusals: ``refusal.<code>`` (web/i18n/*.policy.json), and a free text's
#: problems under the report form's ``input.<problem>``.
REFUSAL_PREFIX = "refusal."


def refusal_key(code: str) -> str:
    """The catalogue key of a refusal's code."""
    return code if code.startswith("input.") else f"{REFUSAL_PREFIX}{code}"


def _from_workflow(cause: ApplicationError) -> CommandError:
    """A workflow's refusal as a CommandError: the status of its kind, its English message, and the
    catalogue key and parameters of its code (``details[0]``: ``{"code", "params"}``) when it has one."""
    status = _STATUS.get(cause.type or "", 409)
    detail = cause.details[0] if cause.details else None
    if isinstance(detail, dict) and isinstance(detail.get("code"), str) and detail["code"]:
        params = detail.get("params") if isinstance(detail.get("params"), dict) else {}
        return CommandError(status, cause.message, refusal_key(detail["code"]),
                            **{str(k): str(v) for k, v in (params or {}).items()})
    return CommandError(status, cause.message)


def event_id_for(report: EventReport) -> str:
    """The workflow id of a new event: derived from the external id (so a duplicate start is
    harmless), else fresh."""
    if report.external_id:
        digest = hashlib.sha256(f"{report.source}\x00{report.external_id}".encode()).hexdigest()
        return f"EV-X{digest[:20].upper()}"
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return f"EV-{stamp}-{secrets.token_hex(5).upper()}"


@dataclass
class Started:
    """A started (or already existing) event."""

    event_id: str
    receipt_code: str | None  # None for an existing event (a duplicate is told nothing of it)
    snapshot: EventSnapshot | None  # None when the intake was not recorded in time
    #: The reporter's tracking key, for a new event only: shown once, never stored (only its hash).
    tracking_key: str | None = None
    duplicate: bool = False  # the same source and external id were reported before
    #: A camera alarm that joined the open event of its camera and category (an occurrence, no new event).
    joined: bool = False


async def duplicate_candidates(ctx: AppContext, report: EventReport, started: Started) -> list[duplicates.Candidate]:
    """Open reports the newly started one may duplicate (same category, nearby or at the same place of
    its grid, within the last ``duplicate_days``): what the API's 201 and the portal's receipt page
    offer to follow. The grid is the routing's, else the report's."""
    snap = started.snapshot
    grid = (snap.decision.grid if snap is not None and snap.decision else None) or report.location.grid
    return await duplicates.candidates(
        ctx.db, category=report.category, since=utcnow() - timedelta(days=ctx.settings.duplicate_days),
        lat=report.location.lat, lon=report.location.lon, grid=grid, address=report.location.address,
        exclude=started.event_id)


@dataclass
class Prepared:
    """What a report's start uses, drawn before it (``web/idempotency.py`` keeps it with the report's
    one-time key): the event id and the receipt grant. ``adopt``: a start with these before may have
    happened (a take-over of a claim whose request died), so an event already started with this id
    and no external id is this report's own."""

    event_id: str
    grant: receipts.Grant
    adopt: bool = False


async def prepare(ctx: AppContext, report: EventReport) -> Prepared:
    """A fresh event id and receipt grant for ``report``."""
    return Prepared(event_id_for(report), await receipts.new_grant(ctx.db, ctx.settings.secret()))


async def check_category(ctx: AppContext, category: str) -> None:
    """Refuse (400) a category the active list does not have; empty means "let triage decide"."""
    if category and (await ctx.engine()).category(category) is None:
        raise CommandError(400, f"unknown category '{category}' (see GET /api/categories)")


async def start_event(ctx: AppContext, report: EventReport, prepared: Prepared | None = None) -> Started:
    """Start the event's workflow (idempotent per source and external id) with a random receipt code
    and a fresh tracking key (or those ``prepared``), and wait briefly for its dispatch to be recorded.

    A report the workflow's own gate (``workflows.inputs``) would refuse is refused here (400) before a
    receipt is handed out: the entrances (API, pages, Open311) check it first with messages in the
    visitor's language, and this keeps any other caller (the simulation, a script) from getting a
    receipt code for an event whose workflow then fails at its first step."""
    problems = report_problems(normalised(report))
    if problems:
        raise CommandError.keyed(400, "refusal.invalid_report", fields=", ".join(p.field for p in problems))
    prepared = prepared or await prepare(ctx, report)
    event_id, grant = prepared.event_id, prepared.grant
    bind(event_id=event_id, workflow_id=event_id)
    report.receipt_code = grant.receipt_code
    report.tracking_key_hash, report.tracking_nonce = grant.tracking_key_hash, grant.tracking_nonce
    camera = camera_of(report)
    if camera is not None:
        return await _start_camera_alarm(ctx, report, camera, prepared)
    client = await ctx.temporal()
    wait = ctx.settings.intake_wait_seconds
    # One call starts the event and waits for its dispatch (update-with-start): the workflow answers
    # in the workflow task that started it (issue 13).
    operation = WithStartWorkflowOperation(
        EventLifecycle.run, report, id=event_id, task_queue=ctx.settings.temporal_task_queue,
        # The same external id is the same event, even after its workflow has completed; only a run
        # that failed (e.g. refused input) or was terminated may be started again.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    snapshot: EventSnapshot | None = None
    try:
        snapshot = await asyncio.wait_for(
            client.execute_update_with_start_workflow(EventLifecycle.wait_dispatched,
                                                      start_workflow_operation=operation),
            timeout=wait,
        )
    except WorkflowAlreadyStartedError:
        if not (prepared.adopt and not report.external_id):
            # An existing event: nothing of it is answered (no receipt code, no key: only its first
            # reporter holds them), so there is nothing to wait for.
            log.info("report of an existing event (duplicate)")
            return Started(event_id, None, None, duplicate=True)
        # Started by this report's own earlier request (its id was drawn at random for it alone).
        snapshot = await _wait_dispatched(client.get_workflow_handle_for(EventLifecycle.run, event_id), wait)
    except (TimeoutError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as exc:
        # Not answered in time (or the call failed): the answer may only be 202 (accepted) when the
        # event did start; one that did not is started the plain way now (or the error stands).
        if not await _started(client, event_id):
            log.info("event %s: update-with-start ended without a start (%s); starting it", event_id,
                     type(exc).__name__)
            await client.start_workflow(
                EventLifecycle.run, report, id=event_id, task_queue=ctx.settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            )
    log.info("event started: %s", "dispatched" if snapshot is not None else "not yet routed")
    return Started(event_id, grant.receipt_code, snapshot, tracking_key=grant.tracking_key)


async def _wait_dispatched(handle: WorkflowHandle[Any, Any], wait: float) -> EventSnapshot | None:
    """The event's snapshot once dispatched, or None when that takes longer than ``wait`` seconds
    (it is recorded durably anyway: the answer says 202, accepted, not yet routed)."""
    try:
        return await asyncio.wait_for(handle.execute_update(EventLifecycle.wait_dispatched), timeout=wait)
    except (TimeoutError, RPCError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError):
        return None


async def _started(client: Client, event_id: str) -> bool:
    """Whether the workflow of ``event_id`` exists (raises RPCError when Temporal cannot say)."""
    try:
        await client.get_workflow_handle(event_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _start_camera_alarm(ctx: AppContext, report: EventReport, camera: str, prepared: Prepared) -> Started:
    """A camera alarm: the open event of its camera and category within the window takes it as one more
    occurrence (``store.camera_alarms.claim`` decides which event, once for concurrent alarms); the
    workflow is started with the alarm as its first occurrence, or signalled when it runs already
    (signal-with-start, so an alarm arriving before the first one's start reached Temporal counts too)."""
    grant = prepared.grant
    now = datetime.now(UTC)
    window = timedelta(minutes=ctx.settings.camera_window_minutes)
    # Every alarm is one occurrence, counted once by its id (a repeated delivery counts nothing).
    report.external_id = report.external_id or f"{camera}:{secrets.token_hex(8)}"
    claimed = await camera_alarms.claim(ctx.db, camera, report.category, now, window, prepared.event_id)
    bind(event_id=claimed.event_id, workflow_id=claimed.event_id)  # the camera's open event, maybe not a new one
    client = await ctx.temporal()
    try:
        handle = await client.start_workflow(
            EventLifecycle.run, report, id=claimed.event_id, task_queue=ctx.settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            start_signal="add_occurrence", start_signal_args=[Occurrence(report.external_id, now.isoformat())],
        )
    except WorkflowAlreadyStartedError:  # its run has completed (30 days after its close): told nothing
        return Started(claimed.event_id, None, None, duplicate=True)
    snapshot: EventSnapshot | None = None
    try:
        snapshot = await asyncio.wait_for(
            handle.execute_update(EventLifecycle.wait_dispatched), timeout=ctx.settings.intake_wait_seconds)
    except (TimeoutError, RPCError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError):
        snapshot = None
    # The run is this alarm's own when it holds this alarm's random receipt code.
    own = snapshot.receipt_code == grant.receipt_code if snapshot is not None else claimed.new
    if not own:
        return Started(claimed.event_id, None, snapshot, joined=True)
    return Started(claimed.event_id, grant.receipt_code, snapshot, tracking_key=grant.tracking_key)


async def _update(ctx: AppContext, event_id: str, call: Callable[[Any], Awaitable[_T]]) -> _T:
    """Run one update of the event's workflow, ``call(handle)`` (a typed method reference such as
    ``handle.execute_update(EventLifecycle.claim, cmd)``); its refusals become CommandErrors. The
    request's log lines carry the event from here on, and one says how the command ended."""
    bind(event_id=event_id, workflow_id=event_id)
    try:
        result = await _send_update(ctx, event_id, call)
    except CommandError as exc:
        log.info("command refused: %s %s", exc.status, exc.code or "")
        raise
    log.info("command done")
    return result


async def _send_update(ctx: AppContext, event_id: str, call: Callable[[Any], Awaitable[_T]]) -> _T:
    client = await ctx.temporal()
    handle = client.get_workflow_handle_for(EventLifecycle.run, event_id)
    try:
        return await call(handle)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            raise _from_workflow(cause) from exc
        raise CommandError(409, str(cause or exc)) from exc
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise CommandError.keyed(503, "refusal.workflow_timeout") from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CommandError.keyed(409, "refusal.workflow_gone") from exc
        raise CommandError.keyed(503, "refusal.workflow_unavailable") from exc


async def _task_for(ctx: AppContext, user: CurrentUser, task_id: str):  # type: ignore[no-untyped-def]
    task = await queries.get_task(ctx.db, task_id)
    if task is None:
        raise CommandError.keyed(404, "refusal.task_unknown", task=task_id)
    try:
        policy.check_own_unit(task, user)
    except policy.Refused as exc:
        raise CommandError.refused(exc) from None
    return task


async def claim(ctx: AppContext, user: CurrentUser, task_id: str) -> TaskView:
    """签收 a task of the user's unit."""
    task = await _task_for(ctx, user, task_id)
    cmd = ClaimCommand(task_id, user.actor())
    return await _update(ctx, task.event_id, lambda h: h.execute_update(EventLifecycle.claim, cmd))


async def complete(
    ctx: AppContext, user: CurrentUser, task_id: str, result_text: str, passed: bool | None,
    photos: list[str] | None = None, public_photos: list[str] | None = None,
) -> TaskView:
    """Complete a claimed task (handling result, or verification with ``passed``). ``public_photos``:
    those of ``photos`` the handler shows on the tracking page (a handling task's only)."""
    task = await _task_for(ctx, user, task_id)
    try:  # the workflow's own check of a completion's input, asked before any photo is attached
        policy.check_complete_input(task, result_text, passed, len(set(photos or [])))
    except policy.Refused as exc:
        raise CommandError.refused(exc) from None
    public = list(dict.fromkeys(public_photos or []))
    if public and task.kind != "handle":
        raise CommandError.keyed(400, "refusal.public_photos_handling_only")
    if not set(public) <= set(photos or []):
        raise CommandError.keyed(400, "refusal.public_photo_not_in_completion")
    photo_ids = await _usable_photos(ctx, user, task.event_id, photos or [])
    # Attached before the update, so that no expiry (run by another request) can remove a photo
    # between the check and the task naming it; a refused update leaves them photos of the event,
    # which its next completion may use.
    await photo_store.attach(ctx.db, photo_ids, task.event_id, task_id)
    kept = [i for i, p in (await photo_store.get_many(ctx.db, photo_ids)).items() if p.event_id == task.event_id]
    if len(kept) != len(photo_ids):
        raise CommandError.keyed(400, "refusal.photo_expired")
    cmd = CompleteCommand(task_id, user.actor(), result=result_text, passed=passed, photos=photo_ids)
    view = await _update(ctx, task.event_id, lambda h: h.execute_update(EventLifecycle.complete, cmd))
    # Only once the completion is accepted: a refused one shows nothing to the public.
    await photo_store.mark_public(ctx.db, public, task.event_id, task_id, user.username)
    return view


async def _usable_photos(ctx: AppContext, user: CurrentUser, event_id: str, photos: list[str]) -> list[str]:
    """The photo ids of a completion, each once, when every one is the user's own upload not yet
    attached elsewhere, or already a photo of ``event_id``; else 400 with the reason."""
    ids = list(dict.fromkeys(photos))
    if len(ids) > policy.MAX_COMPLETE_PHOTOS:
        raise CommandError.keyed(400, "refusal.too_many_photos", limit=policy.MAX_COMPLETE_PHOTOS)
    for photo_id in ids:
        if not photo_store.is_photo_id(photo_id):
            raise CommandError.keyed(400, "refusal.not_photo_id", photo=repr(photo_id[:80]))
    records = await photo_store.get_many(ctx.db, ids)
    for photo_id in ids:
        row = records.get(photo_id)
        own = row is not None and row.event_id is None and row.uploaded_by == user.username
        if not (own or (row is not None and row.event_id == event_id)):
            # One reason for unknown, someone else's and another event's: no hint which ids exist.
            raise CommandError.keyed(400, "refusal.photo_not_usable", photo=photo_id)
    return ids


async def triage(
    ctx: AppContext, user: CurrentUser, task_id: str, category: str, unit: str, note: str
) -> TaskView:
    """A supervisor places an event from the triage inbox."""
    task = await _task_for(ctx, user, task_id)
    if not user.is_supervisor:
        raise CommandError.keyed(403, "refusal.supervisors_only")
    org = await ctx.org()
    target = org.units.get(unit)
    if target is None or target.kind == "city":
        raise CommandError.keyed(400, "refusal.unknown_unit", unit=unit)
    if (await ctx.engine()).category(category) is None:
        raise CommandError.keyed(400, "refusal.unknown_category", category=category)
    department = policy.department_of(unit) if target.kind == "department" else None
    cmd = TriageCommand(task_id, user.actor(), category=category, unit=unit, tier=target.tier,
                        department=department, note=note)
    return await _update(ctx, task.event_id, lambda h: h.execute_update(EventLifecycle.triage, cmd))


async def rate(ctx: AppContext, event_id: str, rating: str, comment: str, tracking_key: str) -> EventSnapshot:
    """The reporter's rating: only with the event's tracking key (403 without it or with a wrong one)."""
    event = await queries.get_event(ctx.db, event_id)
    if event is None:
        raise CommandError.keyed(404, "refusal.no_report")
    if not receipts.key_matches(tracking_key, event.tracking_key_hash):
        raise CommandError.keyed(403, "refusal.not_reporter")
    cmd = RateCommand(rating, comment, tracking_key_hash=receipts.key_hash(tracking_key))
    return await _update(ctx, event_id, lambda h: h.execute_update(EventLifecycle.rate, cmd))


def follower_key(phone: str, client_address: str) -> str:
    """Who follows, counted once: the phone when given, else the client address (hashed either way)."""
    basis = f"phone:{phone}" if phone else f"addr:{client_address}"
    return hashlib.sha256(basis.encode()).hexdigest()


async def follow(ctx: AppContext, event_id: str, phone: str, client_address: str) -> EventSnapshot:
    """Follow an open event ("me too"); its notices go to ``phone`` too when given."""
    cmd = FollowCommand(follower_key(phone, client_address), phone)
    return await _update(ctx, event_id, lambda h: h.execute_update(EventLifecycle.follow, cmd))


async def release(ctx: AppContext, user: CurrentUser, task_id: str) -> TaskView:
    """Give a claimed task back to the unit's inbox."""
    task = await _task_for(ctx, user, task_id)
    cmd = ClaimCommand(task_id, user.actor())
    return await _update(ctx, task.event_id, lambda h: h.execute_update(EventLifecycle.release, cmd))


WORKER_REQUESTS = tuple(policy.REQUESTS.values())


async def request(
    ctx: AppContext, user: CurrentUser, task_id: str, action: str, reason: str, hours: int = 0,
    units: list[str] | None = None,
) -> TaskView:
    """A worker's request on a claimed task: return, escalate, extension or co-handling."""
    if action not in WORKER_REQUESTS:
        raise CommandError.keyed(400, "refusal.unknown_request", action=action)
    task = await _task_for(ctx, user, task_id)
    if units:
        org = await ctx.org()
        unknown = [u for u in units if u not in org.units]
        if unknown:
            raise CommandError.keyed(400, "refusal.unknown_unit", unit=", ".join(unknown))
    cmd = TaskRequest(task_id, user.actor(), action=action, reason=reason, hours=hours, units=list(units or []))
    return await _update(ctx, task.event_id, lambda h: h.execute_update(EventLifecycle.request, cmd))


#: Overrides that end an event: they need a reason and the supervisor's explicit confirmation.
CONFIRMED_ACTIONS = ("void", "close")


def check_confirmed(action: str, reason: str, confirmed: bool) -> None:
    """400 when a void (作废) or close (结案) from a page lacks its reason or its confirmation (the
    pages ask for both: the event ends and the reporter is told)."""
    if action not in CONFIRMED_ACTIONS:
        return
    if action in policy.NEEDS_REASON and not reason.strip():
        raise CommandError.keyed(400, f"confirm.err.reason.{action}")
    if not confirmed:
        raise CommandError.keyed(400, f"confirm.err.unconfirmed.{action}")


async def check_assignee(ctx: AppContext, username: str, unit: str) -> None:
    """400 unless ``username`` may be given a task of ``unit``: an existing, active user of that very
    unit. A task assigned to anybody else would belong to no one: the claim is refused to users of
    other units (``_task_for``) and to everyone but the assignee (the workflow's validator). This is
    also how routing assigns "1+X" cadres: a department's task goes to the cadre stationed at the
    event's street, who is a user of that department (their station is a street, their unit the
    department), so a cadre qualifies for their department's tasks, not for the street's."""
    person = await get_user(ctx.db, username)
    if person is None:
        raise CommandError.keyed(400, "reassign.err.no_user", user=username)
    if not person.active:
        raise CommandError.keyed(400, "reassign.err.inactive", user=username)
    if person.unit != unit:
        raise CommandError.keyed(400, "reassign.err.other_unit", user=username, their=person.unit, unit=unit)


SUPERVISOR_ACTIONS = policy.SUPERVISOR_ACTIONS


async def supervise(
    ctx: AppContext, user: CurrentUser, event_id: str, action: str, *, reason: str = "", unit: str | None = None,
    assignee: str | None = None, hours: int | None = None, notice_id: str | None = None,
) -> EventSnapshot:
    """A supervisor's override on an event within the supervisor's scope. A reassignment to a person
    needs an active user of the new unit (:func:`check_assignee`)."""
    if not user.is_supervisor:
        raise CommandError.keyed(403, "refusal.supervisors_only")
    if action not in SUPERVISOR_ACTIONS:
        raise CommandError.keyed(400, "refusal.unknown_action", action=action)
    event = await queries.get_event(ctx.db, event_id)
    if event is None:
        raise CommandError.keyed(404, "refusal.event_unknown", event=event_id)
    tasks = await queries.event_tasks(ctx.db, event_id)
    if not user.sees(event.unit, event.grid, event.community, event.street, *(t.unit for t in tasks)):
        raise CommandError.keyed(403, "refusal.event_out_of_scope")
    ladder: list[str] = []
    tier = department = None
    if unit is not None:
        org = await ctx.org()
        if unit not in org.units:
            raise CommandError.keyed(400, "refusal.unknown_unit", unit=unit)
        if not user.sees(unit):
            raise CommandError.keyed(403, "refusal.unit_out_of_scope", unit=unit)
        target_unit = org.units[unit]
        tier = target_unit.tier
        department = policy.department_of(unit) if target_unit.kind == "department" else None
        # Where an overdue task at the new unit climbs: its community and street, then the city centre.
        ladder = policy.ladder([(u, org.units[u].kind) for u in org.ancestors(unit)], org.city_centre())
    assignee = (assignee or "").strip() or None
    if action != "reassign":
        assignee = None  # only a reassignment names a person
    elif assignee is not None and unit is not None:
        await check_assignee(ctx, assignee, unit)
    cmd = SupervisorCommand(user.actor(), action, reason=reason, unit=unit, assignee=assignee, hours=hours,
                            notice_id=notice_id, ladder=ladder, tier=tier, department=department)
    return await _update(ctx, event_id, lambda h: h.execute_update(EventLifecycle.supervise, cmd))


async def _event_in_scope(ctx: AppContext, user: CurrentUser, event_id: str) -> Any:
    """The store's row of ``event_id`` when it lies within the supervisor's scope (404, 403)."""
    event = await queries.get_event(ctx.db, event_id)
    if event is None:
        raise CommandError.keyed(404, "refusal.event_unknown", event=event_id)
    tasks = await queries.event_tasks(ctx.db, event_id)
    if not user.sees(event.unit, event.grid, event.community, event.street, *(t.unit for t in tasks)):
        raise CommandError.keyed(403, "refusal.event_out_of_scope")
    return event


async def merge(ctx: AppContext, user: CurrentUser, event_id: str, primary_ref: str, reason: str) -> EventSnapshot:
    """合并: merge ``event_id`` (the duplicate) into the primary named by ``primary_ref`` (its receipt
    code or event id). Both within the supervisor's scope; the primary open and with a running workflow
    (the duplicate's workflow signals it); the rules are ``policy.check_merge``. Audited."""
    if not user.is_supervisor:
        raise CommandError.keyed(403, "refusal.supervisors_only")
    await _event_in_scope(ctx, user, event_id)
    ref = primary_ref.strip()
    primary = (await queries.event_by_receipt(ctx.db, ref.upper()) if ref else None) or (
        await queries.get_event(ctx.db, ref) if ref else None)
    if primary is None:
        raise CommandError.keyed(400, "refusal.merge_primary_unknown", primary=ref[:40])
    await _event_in_scope(ctx, user, primary.event_id)
    if primary.merged_into:
        raise CommandError.keyed(409, "refusal.merge_primary_closed", state="merged")
    client = await ctx.temporal()
    try:
        described = await client.get_workflow_handle(primary.event_id).describe()
        running = described.status is not None and described.status.name == "RUNNING"
    except RPCError:
        running = False
    if not running:
        raise CommandError.keyed(409, "refusal.merge_primary_gone")
    cmd = MergeCommand(user.actor(), primary.event_id, primary.state, reason=reason,
                       undo_hours=ctx.settings.merge_undo_hours, primary_receipt=primary.receipt_code)
    snap = await _update(ctx, event_id, lambda h: h.execute_update(EventLifecycle.merge, cmd))
    await audit(ctx.db, user.username, "merge", event_id, f"into {primary.event_id}: {reason}"[:500])
    return snap


async def unmerge(ctx: AppContext, user: CurrentUser, event_id: str, reason: str = "") -> EventSnapshot:
    """Undo the merge of ``event_id`` within its window (``policy.check_unmerge``). Audited."""
    if not user.is_supervisor:
        raise CommandError.keyed(403, "refusal.supervisors_only")
    await _event_in_scope(ctx, user, event_id)
    cmd = UnmergeCommand(user.actor(), reason=reason)
    snap = await _update(ctx, event_id, lambda h: h.execute_update(EventLifecycle.unmerge, cmd))
    await audit(ctx.db, user.username, "unmerge", event_id, reason[:500])
    return snap
