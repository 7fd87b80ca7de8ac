"""EventLifecycle: one durable workflow per event, from intake to close (its body:
``workflows/event_core.py``).

This module holds only the class Temporal registers. The sandbox loads the workflow's module again
for every workflow instance (new, or evicted from the worker's cache): kept this small, that costs
little, while the body, the data types, the rules and the state machine are loaded once per process
(``worker.PASSTHROUGH``). Temporal requires the ``@workflow.run`` method on the class itself; the
queries, signals and updates are inherited from :class:`EventLifecycleCore`.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from workflows.event_core import GRACE_HOURS, PROJECT_TIMEOUT, EventLifecycleCore
from workflows.types import EventReport, EventSnapshot

__all__ = ["GRACE_HOURS", "PROJECT_TIMEOUT", "EventLifecycle"]


@workflow.defn(name="EventLifecycle")
class EventLifecycle(EventLifecycleCore):
    """One event's workflow; the workflow id is the event id."""

    @workflow.run
    async def run(self, report: EventReport | dict[str, Any]) -> EventSnapshot:
        """Drive the event through its lifecycle; the result is the final snapshot (see
        :meth:`EventLifecycleCore._run`)."""
        return await self._run(report)
