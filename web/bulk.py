"""One supervisor override on many events (the console's bulk form and ``POST /api/console/bulk``):
which overrides may be applied in bulk, how many events at once, and the outcome of each."""

from __future__ import annotations

from dataclasses import dataclass

from web import commands
from web.auth import CurrentUser
from web.context import AppContext

#: Overrides that may be applied to a selection of events (the others need one event's context).
BULK_ACTIONS = ("reassign", "force_escalate", "pause", "resume", "void", "close")
#: Most events one bulk override may name.
MAX_BULK = 200


@dataclass
class BulkOutcome:
    """What became of one event of a bulk override: its new state, or the refusal."""

    event_id: str
    ok: bool
    state: str | None = None
    error: commands.CommandError | None = None


async def supervise_many(
    ctx: AppContext, user: CurrentUser, event_ids: list[str], action: str, *, reason: str = "",
    unit: str | None = None, assignee: str | None = None, hours: int | None = None,
) -> list[BulkOutcome]:
    """Apply ``action`` to each event in turn (each is tried; one refusal hides no other). 400 for an
    action that is not a bulk action, an empty selection or more than :data:`MAX_BULK` events."""
    if action not in BULK_ACTIONS:
        raise commands.CommandError.keyed(400, "bulk.err.action", action=action[:32])
    if not event_ids:
        raise commands.CommandError.keyed(400, "bulk.err.none")
    if len(event_ids) > MAX_BULK:
        raise commands.CommandError.keyed(400, "bulk.err.too_many", limit=MAX_BULK)
    outcomes: list[BulkOutcome] = []
    for event_id in dict.fromkeys(event_ids):  # each event once
        try:
            snap = await commands.supervise(ctx, user, event_id, action, reason=reason,
                                            unit=unit if action == "reassign" else None,
                                            assignee=assignee if action == "reassign" else None, hours=hours)
            outcomes.append(BulkOutcome(event_id, True, state=snap.state))
        except commands.CommandError as exc:
            outcomes.append(BulkOutcome(event_id, False, error=exc))
    return outcomes
