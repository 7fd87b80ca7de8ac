"""Plain-dict views of store rows, shared by the JSON API and the pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from store import models, queries
from web.answers import TaskViewAnswer
from web.context import AppContext
from workflows.lifecycle import STAGE_OF_STATE, Stage, State, triggers_from


def iso(value: datetime | None) -> str | None:
    """ISO 8601 or None."""
    return value.isoformat() if value else None


def task_view(task: models.Task) -> TaskViewAnswer:
    """A task as JSON."""
    return {
        "task_id": task.task_id,
        "event_id": task.event_id,
        "kind": task.kind,
        "unit": task.unit,
        "status": task.status,
        "claimed_by": task.claimed_by,
        "claimed_at": iso(task.claimed_at),
        "completed_at": iso(task.completed_at),
        "due_at": iso(task.due_at),
        "result": task.result,
        "passed": task.passed,
        "created_at": iso(task.created_at),
    }


def timeline_view(entry: models.TimelineEntry, *, public: bool = False) -> dict[str, Any]:
    """A timeline entry as JSON (the public view hides who acted)."""
    view: dict[str, Any] = {
        "seq": entry.seq,
        "stage": entry.stage,
        "action": entry.action,
        "at": iso(entry.at),
    }
    if not public:
        view.update(
            actor=entry.actor,
            actor_kind=entry.actor_kind,
            actor_name=entry.actor_name,
            from_state=entry.from_state,
            to_state=entry.to_state,
            note=entry.note,
        )
    return view


async def event_detail(ctx: AppContext, event: models.Event) -> dict[str, Any]:
    """Everything about one event for staff: state, routing decision, deadlines, tasks, timeline."""
    tasks = await queries.event_tasks(ctx.db, event.event_id)
    entries = await queries.timeline(ctx.db, event.event_id)
    current = next((t for t in reversed(tasks) if t.status in ("open", "claimed")), None)
    decision = event.decision or {}
    return {
        "event_id": event.event_id,
        "receipt_code": event.receipt_code,
        "state": event.state,
        "stage": event.stage,
        "category": event.category,
        "category_name": event.category_name,
        "description": event.description,
        "source": event.source,
        "external_id": event.external_id,
        "integration": event.integration,  # the integration whose API key made it (store/api_keys.py)
        "media_url": event.media_url,
        "location": {
            "grid": event.grid,
            "community": event.community,
            "street": event.street,
            "address": event.address,
            "lat": event.lat,
            "lon": event.lon,
        },
        "reporter": {"name": event.reporter_name, "phone": event.reporter_phone},
        "tier": event.tier,
        "unit": event.unit,
        "department": event.department,
        "priority": event.priority,
        "deadlines": {
            "current_task_due": iso(current.due_at) if current else None,
            "hours": decision.get("deadline_hours", {}),
        },
        "decision": decision,
        "rating": event.rating,
        "rating_comment": event.rating_comment,
        "created_at": iso(event.created_at),
        "closed_at": iso(event.closed_at),
        "allowed_actions": triggers_from(event.state),
        "occurrences": event.occurrences,
        "merged_into": event.merged_into,
        "merge_undo_by": iso(event.merge_undo_by),
        "merged_count": event.merged_count,
        "tasks": [task_view(t) for t in tasks],
        "timeline": [timeline_view(e) for e in entries],
    }


def public_status(event: models.Event, entries: list[models.TimelineEntry]) -> dict[str, Any]:
    """What a reporter may see by receipt code: no names or phone numbers of anyone."""
    return {
        "receipt_code": event.receipt_code,
        "state": event.state,
        "stage": event.stage,
        "category": event.category,
        "category_name": event.category_name,
        "description": event.description,
        "created_at": iso(event.created_at),
        "closed_at": iso(event.closed_at),
        "rating": event.rating,
        "can_rate": event.state == State.FEEDBACK.value,
        "stages_done": stages_done(event.state),
        # Follows are counted, not listed: a public timeline of "someone follows" entries says nothing.
        "timeline": [timeline_view(e, public=True) for e in entries if e.action != "follow"],
        "followers": event.follower_count,
    }


def stages_done(state: str) -> list[str]:
    """The stages reached so far, in order (for the progress bar)."""
    order = list(Stage)
    reached = STAGE_OF_STATE[State(state)]
    return [s.value for s in order[: order.index(reached) + 1]]
