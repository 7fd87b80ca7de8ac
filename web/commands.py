"""Commands from the web to the workflows, and the one place where their errors become HTTP codes."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from store import photos as photo_store
from store import queries, receipts
from store.users import get_user
from web.auth import CurrentUser
from web.context import AppContext
from web.i18n import translate
from workflows.event_lifecycle import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND, EventLifecycle
from workflows.types import (
    ClaimCommand,
    CompleteCommand,
    EventReport,
    EventSnapshot,
    FollowCommand,
    RateCommand,
    SupervisorCommand,
    TaskRequest,
    TaskView,
    TriageCommand,
)

_STATUS = {CONFLICT: 409, FORBIDDEN: 403, NOT_FOUND: 404, INVALID: 400}


class CommandError(Exception):
    """A refused command, with the HTTP status and the reason to show. A refusal made with
    :meth:`keyed` also carries a message-catalogue key, so pages can give the reason in the
    visitor's language (:meth:`text`); ``reason`` is then its English text, for the API."""

    def __init__(self, status: int, reason: str, key: str | None = None, **values: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.key = key
        self.values = values

    @classmethod
    def keyed(cls, status: int, key: str, **values: Any) -> CommandError:
        """A refusal whose reason is the catalogue message ``key`` filled with ``values``."""
        return cls(status, translate("en", key, **values), key, **values)

    def text(self, lang: str) -> str:
        """The reason in ``lang`` (as given, when the refusal has no catalogue key)."""
        return translate(lang, self.key, **self.values) if self.key else self.reason


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


async def start_event(ctx: AppContext, report: EventReport, prepared: Prepared | None = None) -> Started:
    """Start the event's workflow (idempotent per source and external id) with a random receipt code
    and a fresh tracking key (or those ``prepared``), and wait briefly for its dispatch to be recorded."""
    prepared = prepared or await prepare(ctx, report)
    event_id, grant = prepared.event_id, prepared.grant
    report.receipt_code = grant.receipt_code
    report.tracking_key_hash, report.tracking_nonce = grant.tracking_key_hash, grant.tracking_nonce
    client = await ctx.temporal()
    try:
        handle = await client.start_workflow(
            EventLifecycle.run,
            report,
            id=event_id,
            task_queue=ctx.settings.temporal_task_queue,
            # The same external id is the same event, even after its workflow has completed; only a
            # run that failed (e.g. refused input) or was terminated may be started again.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
    except WorkflowAlreadyStartedError:
        if not (prepared.adopt and not report.external_id):
            # An existing event: nothing of it is answered (no receipt code, no key: only its first
            # reporter holds them), so there is nothing to wait for.
            return Started(event_id, None, None, duplicate=True)
        # Started by this report's own earlier request (its id was drawn at random for it alone).
        handle = client.get_workflow_handle_for(EventLifecycle.run, event_id)
    snapshot: EventSnapshot | None = None
    try:
        snapshot = await asyncio.wait_for(
            handle.execute_update(EventLifecycle.wait_dispatched), timeout=ctx.settings.intake_wait_seconds
        )
    except (TimeoutError, RPCError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError):
        snapshot = None  # recorded durably anyway; the answer says 202 (accepted, not yet routed)
    return Started(event_id, grant.receipt_code, snapshot, tracking_key=grant.tracking_key)


async def _update(ctx: AppContext, event_id: str, update: str, arg: object, result_type: type) -> object:
    client = await ctx.temporal()
    handle = client.get_workflow_handle(event_id)
    try:
        return await handle.execute_update(update, arg, result_type=result_type)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            raise CommandError(_STATUS.get(cause.type or "", 409), cause.message) from exc
        raise CommandError(409, str(cause or exc)) from exc
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise CommandError(503, "the workflow did not answer in time; try again shortly") from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(409, "the event's workflow is closed or does not exist") from exc
        raise CommandError(503, f"the workflow engine is unavailable: {exc.message}") from exc


async def _task_for(ctx: AppContext, user: CurrentUser, task_id: str):  # type: ignore[no-untyped-def]
    task = await queries.get_task(ctx.db, task_id)
    if task is None:
        raise CommandError(404, f"task {task_id} does not exist")
    if task.unit != user.unit:
        raise CommandError(403, f"task {task_id} belongs to unit {task.unit}; you are in {user.unit}")
    return task


async def claim(ctx: AppContext, user: CurrentUser, task_id: str) -> TaskView:
    """签收 a task of the user's unit."""
    task = await _task_for(ctx, user, task_id)
    result = await _update(ctx, task.event_id, "claim", ClaimCommand(task_id, user.actor()), TaskView)
    assert isinstance(result, TaskView)
    return result


async def complete(
    ctx: AppContext, user: CurrentUser, task_id: str, result_text: str, passed: bool | None,
    photos: list[str] | None = None,
) -> TaskView:
    """Complete a claimed task (handling result, or verification with ``passed``)."""
    task = await _task_for(ctx, user, task_id)
    if task.kind == "verify" and passed is None:
        raise CommandError(400, "a verification needs 'passed' (true or false)")
    photo_ids = await _usable_photos(ctx, user, task.event_id, photos or [])
    # Attached before the update, so that no expiry (run by another request) can remove a photo
    # between the check and the task naming it; a refused update leaves them photos of the event,
    # which its next completion may use.
    await photo_store.attach(ctx.db, photo_ids, task.event_id, task_id)
    kept = [i for i, p in (await photo_store.get_many(ctx.db, photo_ids)).items() if p.event_id == task.event_id]
    if len(kept) != len(photo_ids):
        raise CommandError(400, "a photo expired meanwhile; upload it again")
    cmd = CompleteCommand(task_id, user.actor(), result=result_text, passed=passed, photos=photo_ids)
    result = await _update(ctx, task.event_id, "complete", cmd, TaskView)
    assert isinstance(result, TaskView)
    return result


#: Photos one completion may carry (the workflow's limit too).
MAX_COMPLETE_PHOTOS = 10


async def _usable_photos(ctx: AppContext, user: CurrentUser, event_id: str, photos: list[str]) -> list[str]:
    """The photo ids of a completion, each once, when every one is the user's own upload not yet
    attached elsewhere, or already a photo of ``event_id``; else 400 with the reason."""
    ids = list(dict.fromkeys(photos))
    if len(ids) > MAX_COMPLETE_PHOTOS:
        raise CommandError(400, f"at most {MAX_COMPLETE_PHOTOS} photos")
    for photo_id in ids:
        if not photo_store.is_photo_id(photo_id):
            raise CommandError(400, f"{photo_id[:80]!r} is not a photo id (ids come from POST /api/photos)")
    records = await photo_store.get_many(ctx.db, ids)
    for photo_id in ids:
        row = records.get(photo_id)
        own = row is not None and row.event_id is None and row.uploaded_by == user.username
        if not (own or (row is not None and row.event_id == event_id)):
            # One reason for unknown, someone else's and another event's: no hint which ids exist.
            raise CommandError(400, f"photo {photo_id} is neither one of your uploads nor a photo of this event")
    return ids


async def triage(
    ctx: AppContext, user: CurrentUser, task_id: str, category: str, unit: str, note: str
) -> TaskView:
    """A supervisor places an event from the triage inbox."""
    task = await _task_for(ctx, user, task_id)
    if not user.is_supervisor:
        raise CommandError(403, "only supervisors can triage events")
    org = await ctx.org()
    target = org.units.get(unit)
    if target is None or target.kind == "city":
        raise CommandError(400, f"unknown unit '{unit}'")
    if (await ctx.engine()).category(category) is None:
        raise CommandError(400, f"unknown category '{category}'")
    department = unit[2:] if target.kind == "department" else None
    cmd = TriageCommand(task_id, user.actor(), category=category, unit=unit, tier=target.tier,
                        department=department, note=note)
    result = await _update(ctx, task.event_id, "triage", cmd, TaskView)
    assert isinstance(result, TaskView)
    return result


async def rate(ctx: AppContext, event_id: str, rating: str, comment: str, tracking_key: str) -> EventSnapshot:
    """The reporter's rating: only with the event's tracking key (403 without it or with a wrong one)."""
    event = await queries.get_event(ctx.db, event_id)
    if event is None:
        raise CommandError(404, "no report with this receipt code")
    if not receipts.key_matches(tracking_key, event.tracking_key_hash):
        raise CommandError(403, "only the reporter may rate: the tracking key (评价码) given when reporting "
                                "is missing or wrong")
    cmd = RateCommand(rating, comment, tracking_key_hash=receipts.key_hash(tracking_key))
    result = await _update(ctx, event_id, "rate", cmd, EventSnapshot)
    assert isinstance(result, EventSnapshot)
    return result


def follower_key(phone: str, client_address: str) -> str:
    """Who follows, counted once: the phone when given, else the client address (hashed either way)."""
    basis = f"phone:{phone}" if phone else f"addr:{client_address}"
    return hashlib.sha256(basis.encode()).hexdigest()


async def follow(ctx: AppContext, event_id: str, phone: str, client_address: str) -> EventSnapshot:
    """Follow an open event ("me too"); its notices go to ``phone`` too when given."""
    result = await _update(ctx, event_id, "follow", FollowCommand(follower_key(phone, client_address), phone),
                           EventSnapshot)
    assert isinstance(result, EventSnapshot)
    return result


async def release(ctx: AppContext, user: CurrentUser, task_id: str) -> TaskView:
    """Give a claimed task back to the unit's inbox."""
    task = await _task_for(ctx, user, task_id)
    result = await _update(ctx, task.event_id, "release", ClaimCommand(task_id, user.actor()), TaskView)
    assert isinstance(result, TaskView)
    return result


WORKER_REQUESTS = ("request_return", "escalate", "request_extension", "request_cohandling")


async def request(
    ctx: AppContext, user: CurrentUser, task_id: str, action: str, reason: str, hours: int = 0,
    units: list[str] | None = None,
) -> TaskView:
    """A worker's request on a claimed task: return, escalate, extension or co-handling."""
    if action not in WORKER_REQUESTS:
        raise CommandError(400, f"unknown request '{action}'")
    task = await _task_for(ctx, user, task_id)
    if units:
        org = await ctx.org()
        unknown = [u for u in units if u not in org.units]
        if unknown:
            raise CommandError(400, f"unknown unit(s): {', '.join(unknown)}")
    cmd = TaskRequest(task_id, user.actor(), action=action, reason=reason, hours=hours, units=list(units or []))
    result = await _update(ctx, task.event_id, "request", cmd, TaskView)
    assert isinstance(result, TaskView)
    return result


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


SUPERVISOR_ACTIONS = (
    "approve_extension", "deny_extension", "approve_return", "deny_return", "force_escalate", "reassign",
    "change_deadline", "pause", "resume", "void", "close", "reopen", "review_rework", "retry_notice", "skip_notice",
)


async def supervise(
    ctx: AppContext, user: CurrentUser, event_id: str, action: str, *, reason: str = "", unit: str | None = None,
    assignee: str | None = None, hours: int | None = None, notice_id: str | None = None,
) -> EventSnapshot:
    """A supervisor's override on an event within the supervisor's scope. A reassignment to a person
    needs an active user of the new unit (:func:`check_assignee`)."""
    if not user.is_supervisor:
        raise CommandError(403, "only supervisors can do this")
    if action not in SUPERVISOR_ACTIONS:
        raise CommandError(400, f"unknown action '{action}'")
    event = await queries.get_event(ctx.db, event_id)
    if event is None:
        raise CommandError(404, f"event {event_id} does not exist")
    tasks = await queries.event_tasks(ctx.db, event_id)
    if not user.sees(event.unit, event.grid, event.community, event.street, *(t.unit for t in tasks)):
        raise CommandError(403, "this event is outside your scope")
    ladder: list[str] = []
    if unit is not None:
        org = await ctx.org()
        if unit not in org.units:
            raise CommandError(400, f"unknown unit '{unit}'")
        if not user.sees(unit):
            raise CommandError(403, f"unit {unit} is outside your scope")
        # Where an overdue task at the new unit climbs: its community and street, then the city centre.
        ladder = [u for u in org.ancestors(unit) if org.units[u].kind in ("grid", "community", "street", "department")]
        ladder.append(next((u for u, row in org.units.items() if row.kind == "command_centre" and row.tier == "city"),
                           "CC-JS"))
    assignee = (assignee or "").strip() or None
    if action != "reassign":
        assignee = None  # only a reassignment names a person
    elif assignee is not None and unit is not None:
        await check_assignee(ctx, assignee, unit)
    cmd = SupervisorCommand(user.actor(), action, reason=reason, unit=unit, assignee=assignee, hours=hours,
                            notice_id=notice_id, ladder=ladder)
    result = await _update(ctx, event_id, "supervise", cmd, EventSnapshot)
    assert isinstance(result, EventSnapshot)
    return result
