"""Supervisor and worker actions beyond claim/complete, the command-centre console, exports (photos: web/photos.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.status_codes import HTTP_200_OK

from store import models, process_queries, queries
from store.timeutil import utcnow
from web import commands
from web.access import signed_in, supervisors
from web.answers import BulkAnswer, BulkResult, MergedAnswer, SupervisedAnswer, TaskAnswer
from web.auth import CurrentUser, visible_event
from web.bulk import supervise_many
from web.context import AppContext
from web.exports import TIME_ZONE_NAME, csv_response
from web.schemas import BulkIn, MergeIn, SuperviseIn, TaskRequestIn, UnmergeIn
from web.views import iso, task_view
from workflows import policy
from workflows.types import EventSnapshot

_REQUEST_ACTIONS = policy.REQUESTS  # the rules' names of a worker's requests


def process_task_view(task: models.ProcessTaskRow) -> dict[str, Any]:
    """A process task in the console's JSON (its instance's page is /processes/<instance_id>)."""
    return {"task_id": task.task_id, "instance_id": task.instance_id, "kind": task.kind, "task_kind": task.task_kind,
            "state": task.state, "unit": task.unit, "person": task.person, "status": task.status,
            "claimed_by": task.claimed_by, "created_at": iso(task.created_at), "due_at": iso(task.due_at)}


def console_view(data: dict[str, list[Any]]) -> dict[str, Any]:
    """The console queues as JSON."""

    def row(task: Any, event: Any) -> dict[str, Any]:
        return {**task_view(task), "category": event.category, "category_name": event.category_name,
                "description": event.description[:200], "event_state": event.state, "pending": event.pending}

    return {
        "overdue": [row(t, e) for t, e in data["overdue"]],
        "stuck": [row(t, e) for t, e in data["stuck"]],
        "triage": [row(t, e) for t, e in data["triage"]],
        "awaiting_approval": [
            {"event_id": e.event_id, "pending": e.pending, "unit": e.unit, "category": e.category,
             "category_name": e.category_name, "state": e.state, "updated_at": iso(e.updated_at)}
            for e in data["awaiting"]
        ],
        "failing_notices": [
            {"notice_id": n.notice_id, "event_id": n.event_id, "kind": n.kind, "attempts": n.attempts,
             "last_error": n.last_error}
            for n, _ in data["failing_notices"]
        ],
        "counts": [{"unit": unit, **counts} for unit, counts in data["counts"]],
    }



class WorkflowActionController(Controller):
    """Worker requests and supervisor overrides (JSON API)."""

    path = "/api"

    @post("/tasks/{task_id:str}/release", status_code=HTTP_200_OK, guards=[signed_in])
    async def release(self, ctx: AppContext, user: CurrentUser, request: Request, task_id: str) -> TaskAnswer:
        """Give a claimed task back to the unit's inbox."""
        view = await commands.release(ctx, user, task_id)
        return {"task_id": view.task.task_id, "status": view.task.status, "event_state": view.event_state}

    @post("/tasks/{task_id:str}/{kind:str}", status_code=HTTP_200_OK, guards=[signed_in])
    async def task_request(self, ctx: AppContext, user: CurrentUser, request: Request, task_id: str, kind: str,
                           data: TaskRequestIn) -> TaskAnswer:
        """退回 (return), 提级 (escalate), 延期 (extension, with hours) or 协办 (co-handling, with units)."""
        if kind not in _REQUEST_ACTIONS:
            raise NotFoundException(f"unknown task action '{kind}'")
        view = await commands.request(ctx, user, task_id, _REQUEST_ACTIONS[kind], data.reason, data.hours,
                                      data.units)
        return {"task_id": view.task.task_id, "status": view.task.status, "event_state": view.event_state}

    @post("/events/{event_id:str}/supervise", status_code=HTTP_200_OK, guards=[supervisors])
    async def supervise(self, ctx: AppContext, user: CurrentUser, request: Request, event_id: str,
                        data: SuperviseIn) -> SupervisedAnswer:
        """A supervisor's override: approve/deny extension or return (approve_return may name the
        ``unit`` the event goes to, never one that returned it; without one the list decides again),
        reassign, force_escalate, change_deadline, pause, resume, void, close, reopen, review_rework,
        retry_notice, skip_notice."""
        snap = await commands.supervise(ctx, user, event_id, data.action, reason=data.reason, unit=data.unit,
                                        assignee=data.assignee, hours=data.hours, notice_id=data.notice_id)
        return {"event_id": snap.event_id, "state": snap.state, "pending": snap.pending, "paused": snap.paused}

    @post("/events/{event_id:str}/merge", status_code=HTTP_200_OK, guards=[supervisors])
    async def merge(self, ctx: AppContext, user: CurrentUser, request: Request, event_id: str,
                    data: MergeIn) -> MergedAnswer:
        """合并: merge this event (a duplicate) into ``primary`` (its receipt code or event id), both within
        the supervisor's scope and open. The duplicate ends as merged, its tasks close, its reporter and
        followers follow the primary; undone with ``/unmerge`` until ``undo_by``."""
        snap = await commands.merge(ctx, user, event_id, data.primary, data.reason)
        return _merged(snap)

    @post("/events/{event_id:str}/unmerge", status_code=HTTP_200_OK, guards=[supervisors])
    async def unmerge(self, ctx: AppContext, user: CurrentUser, request: Request, event_id: str,
                      data: UnmergeIn) -> MergedAnswer:
        """Undo a merge within its window: the event returns to where it was (409 after the window)."""
        return _merged(await commands.unmerge(ctx, user, event_id, data.reason))

    @post("/console/bulk", status_code=HTTP_200_OK, guards=[supervisors])
    async def bulk(self, ctx: AppContext, user: CurrentUser, request: Request, data: BulkIn) -> BulkAnswer:
        """One override (a bulk action: reassign, force_escalate, pause, resume, void, close) on a selection of
        events; each result is reported, none hides another."""
        outcomes = await supervise_many(ctx, user, data.event_ids, data.action, reason=data.reason, unit=data.unit,
                                        assignee=data.assignee, hours=data.hours)
        results: list[BulkResult] = [
            {"event_id": o.event_id, "ok": True, "state": o.state} if o.error is None
            else {"event_id": o.event_id, "ok": False, "status": o.error.status, "detail": o.error.reason}
            for o in outcomes
        ]
        return {"results": results, "succeeded": sum(r["ok"] for r in results)}

    @get("/console", guards=[supervisors])
    async def console(self, ctx: AppContext, user: CurrentUser, request: Request) -> dict[str, Any]:
        """The command-centre queues within the supervisor's scope."""
        late = await process_queries.late_tasks(ctx.db, user.scope)
        return {**console_view(await queries.console(ctx.db, user.scope, utcnow())),
                **{name: [process_task_view(t) for t in rows] for name, rows in late.items()}}

    @get("/events/{event_id:str}/timeline.csv", guards=[signed_in])
    async def export(self, ctx: AppContext, user: CurrentUser, request: Request, event_id: str) -> Response[str]:
        """The audit trail of an event as CSV (actor, time, from-state, to-state, reason)."""
        event, _ = await visible_event(ctx, user, event_id)
        return timeline_csv_response(event_id, await queries.timeline(ctx.db, event_id))


#: The columns of the timeline export (the time in the city's zone, see ``web.exports``).
TIMELINE_COLUMNS = ("seq", f"at ({TIME_ZONE_NAME})", "stage", "action", "actor", "actor_kind", "from_state",
                    "to_state", "note")


def timeline_rows(entries: Iterable[models.TimelineEntry]) -> Iterable[list[Any]]:
    """The rows of an event's timeline export (actor, time, from-state, to-state, note)."""
    for entry in entries:
        yield [entry.seq, entry.at, entry.stage, entry.action, entry.actor, entry.actor_kind,
               entry.from_state, entry.to_state, entry.note]


def timeline_csv_response(event_id: str, entries: Iterable[models.TimelineEntry]) -> Response[str]:
    """The CSV download of an event's timeline (shared by the API and the pages)."""
    return csv_response(f"{event_id}-timeline.csv", TIMELINE_COLUMNS, timeline_rows(entries))


CONSOLE_CONTROLLERS = [WorkflowActionController]


def _merged(snap: EventSnapshot) -> MergedAnswer:
    merge = snap.merge
    return {"event_id": snap.event_id, "state": snap.state, "merged_into": merge.primary if merge else None,
            "undo_by": merge.undo_by if merge else None}
