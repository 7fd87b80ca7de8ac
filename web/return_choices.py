"""What the supervisor who approves a return (退回) may choose on the event page: the list's suggestion
first (the responsibility list asked again, with the returning units excluded, as the workflow will
ask it without a pick), then the other units in the supervisor's scope; never a returning unit.

The list decides through the event's own list version and the facts of its decision; nothing of the
rules is re-derived here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from store import models
from web.auth import CurrentUser
from web.context import AppContext
from workflows import policy


@dataclass
class ReturnChoices:
    """The approve-return form's choices."""

    returning: list[str]  # units that returned the event (excluded)
    suggestion: str | None  # the unit the list chooses without a pick (None: triage)
    suggestion_placed: bool = True  # False: every unit the list names returned it, triage decides
    suggestion_unit: models.Unit | None = None  # the suggested unit's row (for its name)
    units: list[models.Unit] = field(default_factory=list)  # the other units in scope, returning ones left out


def returning_units(event: models.Event, tasks: list[models.Task]) -> list[str]:
    """The units that returned ``event``: those its decisions excluded so far, and the unit of the
    handling task whose return waits for approval."""
    decision: dict[str, Any] = event.decision or {}
    current = next((t for t in reversed(tasks) if t.kind == "handle" and t.status in ("open", "claimed")), None)
    return policy.returning_units([str(u) for u in decision.get("excluded") or []], event.pending,
                                  current.unit if current else None)


async def return_choices(ctx: AppContext, user: CurrentUser, event: models.Event, tasks: list[models.Task],
                         scope_units: list[models.Unit]) -> ReturnChoices | None:
    """The choices of the approve-return form, when a return waits for a supervisor."""
    if event.pending != "return" or not user.is_supervisor:
        return None
    returning = returning_units(event, tasks)
    org = await ctx.org()
    decision: dict[str, Any] = event.decision or {}
    suggestion, placed = None, False
    facts = decision.get("facts")
    if isinstance(facts, dict):
        version = decision.get("list_version")
        engine = await (ctx.engines.version(str(version)) if version else ctx.engine())
        # As the workflow will ask it: the return counted, the returning units excluded.
        asked = engine.decide({**facts, "returned": event.returned_count + 1}, exclude=returning,
                              city_centre=org.city_centre())
        suggestion, placed = asked["unit"], bool(asked["placed"])
    units = [u for u in scope_units if u.code not in returning and u.code != suggestion]
    return ReturnChoices(returning=returning, suggestion=suggestion, suggestion_placed=placed, units=units,
                         suggestion_unit=org.units.get(suggestion) if suggestion else None)
