"""Playing a plan through the real platform: one ``EventLifecycle`` workflow per report, on Temporal's
time-skipping test server, with simulated people acting through the web's own commands
(``web.commands``: the same checks of unit, scope and policy as the pages and the API).

Time is the server's. The simulation is a discrete-event agenda (:class:`Agenda`): every actor's next
step waits for a moment of simulated time; the agenda advances the server's clock to the earliest
waiting moment (``env.sleep``, during which the workflows' own timers fire: reminders, yellow and red
warnings, the rating windows), then lets every step due by then run at once, a bounded number of
commands at a time, and waits until each has acted and waits again. Nothing waits on real time, and
the moments are quantised (``tick``) so that many steps share one clock advance.

Each event's decisions are drawn in advance (``plan.Draws``); what the actors do with them depends on
where the event stands when they act (a red warning may have moved the task up, a return sends it
elsewhere), as a person would. A refused command is counted by its code, never retried blindly.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from rules.worktime import CITY_TZ, add_working_hours
from store import models
from store.db import Database
from store.org import OrgTree
from web import commands
from web.auth import CurrentUser, scope_of
from web.commands import CommandError
from web.context import AppContext
from workflows.event_lifecycle import EventLifecycle
from workflows.types import EventReport, EventSnapshot, Location, Reporter, Task
from wulian.settings import Settings
from wulian.simulation.plan import PlannedEvent

log = logging.getLogger("wulian.simulate")

#: States after which nobody acts on an event any more.
ENDED = ("closed", "voided", "merged")
#: Steps an actor takes on one event at most (a loop with returns, escalations and reworks takes ~15).
MAX_STEPS = 40
#: Working hours a supervisor takes to decide a request.
SUPERVISOR_HOURS = 1.0
#: The most simulated time one sleep of the server moves (fewer timers fire within one call).
MAX_ADVANCE = timedelta(hours=12)
#: Sleeps that failed in a row before the run gives up.
ADVANCE_RETRIES = 5


class Agenda:
    """Simulated time over the test server's clock: steps wait with :meth:`until`; :meth:`run` moves the
    clock to the earliest waiting moment and wakes every step due by then."""

    def __init__(self, env: WorkflowEnvironment, tick: timedelta) -> None:
        self.env, self.tick = env, tick
        self._heap: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.now: datetime | None = None
        self.advances = 0
        #: Wall seconds spent moving the server's clock (``env.sleep``), and in the waves of steps between.
        self.advancing_seconds = 0.0
        self.acting_seconds = 0.0

    def _quantised(self, moment: datetime) -> datetime:
        epoch = datetime(2000, 1, 1, tzinfo=moment.tzinfo)
        steps = math.ceil((moment - epoch) / self.tick)
        return epoch + steps * self.tick

    async def until(self, moment: datetime) -> None:
        """Wait until the simulated clock reaches ``moment`` (rounded up to the tick)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self._quantised(moment), next(self._seq), future))
        self._done()
        await future

    def _done(self) -> None:
        self._running -= 1
        if self._running == 0:
            self._idle.set()

    def spawn(self, moment: datetime, start: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start ``start()`` at ``moment``."""

        async def body() -> None:
            try:
                await self.until(moment)
                await start()
            finally:
                self._done()

        self._running += 1
        self._idle.clear()
        asyncio.get_running_loop().create_task(body())

    async def _advance(self, now: datetime, moment: datetime) -> None:
        """Move the server's clock from ``now`` to ``moment``, at most :data:`MAX_ADVANCE` per sleep. A sleep the
        server did not finish in time (it fires every timer it passes, and skips no time while a
        workflow task is outstanding: seen here as "Timeout expired" near the end of a 4,000-event
        month) is taken again from where the clock got to, up to :data:`ADVANCE_RETRIES` times in a row."""
        failures = 0
        while now < moment:
            try:
                await self.env.sleep(min(moment - now, MAX_ADVANCE))
                failures = 0
            except RPCError as exc:
                failures += 1
                if failures > ADVANCE_RETRIES:
                    raise
                log.warning("moving the clock to %s: %s (again from %s)", moment, exc, now)
            now = await self.env.get_current_time()

    async def run(self, progress: Callable[[datetime], None] | None = None) -> None:
        """Advance until no step waits."""
        await self._idle.wait()
        while self._heap:
            moment = self._heap[0][0]
            now = await self.env.get_current_time()
            began = time.perf_counter()
            if moment > now:
                await self._advance(now, moment)
                self.advances += 1
            woken = time.perf_counter()
            self.advancing_seconds += woken - began
            self.now = max(moment, now)
            while self._heap and self._heap[0][0] <= self.now:
                _, _, future = heapq.heappop(self._heap)
                self._running += 1
                self._idle.clear()
                future.set_result(None)
            await self._idle.wait()
            self.acting_seconds += time.perf_counter() - woken
            if progress is not None:
                progress(self.now)


@dataclass
class Outcome:
    """What the actors did and met, over the run."""

    started: int = 0
    routed_at_once: int = 0  # answered with the routed snapshot (201), not 202
    finished: int = 0  # events whose loop ended (closed or voided) while the actors watched
    abandoned: int = 0  # events the actors gave up on (steps exhausted)
    actions: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class People:
    """The organisation's users as the web would see them logged in (unit, role, scope)."""

    def __init__(self, users: list[models.User], org: OrgTree) -> None:
        self.by_unit: dict[str, list[CurrentUser]] = {}
        self.by_name: dict[str, CurrentUser] = {}
        for user in sorted(users, key=lambda u: u.username):
            if not user.active or user.role == "admin":
                continue
            who = CurrentUser(user.username, user.display_name, user.unit, user.role, scope_of(user, org),
                              stationed_street=user.stationed_street)
            self.by_unit.setdefault(user.unit, []).append(who)
            self.by_name[user.username] = who
        self.org = org
        supervisors = [u for u in self.by_name.values() if u.is_supervisor]
        self.city_supervisor = next((u for u in supervisors if u.role == "city_supervisor"), None)
        self.street_supervisors = {org.street_of(u.unit): u for u in supervisors if u.role == "street_supervisor"}

    def of(self, task: Task, pick: float, not_user: str | None = None) -> CurrentUser | None:
        """Who acts on ``task``: its assignee, else a person of its unit (``pick`` chooses)."""
        if task.assignee and task.assignee in self.by_name:
            return self.by_name[task.assignee]
        people = [p for p in self.by_unit.get(task.unit, []) if p.username != not_user]
        return people[int(pick * len(people)) % len(people)] if people else None

    def supervisor_for(self, snap: EventSnapshot) -> CurrentUser | None:
        """The street's supervisor for events of a street, else the city's."""
        street = snap.decision.street if snap.decision else None
        candidate = self.street_supervisors.get(street) if street else None
        units = [t.unit for t in snap.tasks]
        if candidate is not None and candidate.sees(street, *units):
            return candidate
        return self.city_supervisor


class Simulation:
    """One run of a plan on a platform (store, Temporal client, a worker on ``settings``' task queue)."""

    def __init__(self, env: WorkflowEnvironment, ctx: AppContext, people: People, tick: timedelta,
                 concurrency: int) -> None:
        self.env, self.ctx, self.people = env, ctx, people
        self.agenda = Agenda(env, tick)
        self.commands = asyncio.Semaphore(concurrency)
        self.outcome = Outcome()

    # ------------------------------------------------------------------------------ commands
    async def _act(self, name: str, call: Callable[[], Awaitable[Any]]) -> bool:
        """Run one command (bounded); a refusal is counted by its code and answered False."""
        async with self.commands:
            try:
                await call()
            except CommandError as exc:
                self.outcome.refusals[f"{name}: {exc.code or exc.status}"] += 1
                return False
        self.outcome.actions[name] += 1
        return True

    async def _snapshot(self, event_id: str) -> EventSnapshot:
        client = await self.ctx.temporal()
        handle = client.get_workflow_handle_for(EventLifecycle.run, event_id)
        for _ in range(50):
            try:
                async with self.commands:
                    return await handle.query(EventLifecycle.snapshot)
            except WorkflowQueryFailedError:  # its first workflow task has not run yet
                await asyncio.sleep(0.2)
        return await handle.query(EventLifecycle.snapshot)

    async def _wait(self, moment: datetime | None, hours: float = 0.0) -> None:
        base = moment or self.agenda.now or await self.env.get_current_time()
        await self.agenda.until(add_working_hours(base, hours) if hours else base)

    # ------------------------------------------------------------------------------ an event's life
    def add(self, event: PlannedEvent) -> None:
        """Put ``event`` on the agenda at its report moment."""
        self.agenda.spawn(event.at, lambda: self._life(event))

    async def _start(self, event: PlannedEvent) -> tuple[str, str] | None:
        report = EventReport(category=event.category, description=event.description,
                             location=Location(grid=event.grid),
                             reporter=Reporter(event.reporter_name, event.reporter_phone), source=event.source)
        async with self.commands:
            try:
                started = await commands.start_event(self.ctx, report)
            except CommandError as exc:
                self.outcome.refusals[exc.key or f"status {exc.status}"] += 1
                return None
        self.outcome.started += 1
        if started.snapshot is not None:
            self.outcome.routed_at_once += 1
        else:  # answered 202 (not routed within the intake wait): look again later in simulated time, so
            # that the clock moves meanwhile (a real-time wait would hold every other step back)
            client = await self.ctx.temporal()
            handle = client.get_workflow_handle_for(EventLifecycle.run, started.event_id)
            for attempt in range(20):
                try:
                    async with self.commands:
                        await handle.query(EventLifecycle.snapshot)
                    break
                except (RPCError, WorkflowQueryFailedError):
                    log.debug("event %s not started yet (attempt %d)", started.event_id, attempt)
                    await self._wait(None, 0.25)
            else:
                self.outcome.refusals["start: never routed"] += 1
                return None
        return started.event_id, started.tracking_key or ""

    async def _life(self, event: PlannedEvent) -> None:
        try:
            await self._live(event)
        except Exception:  # one event's failure must not stop the city's year; it is counted
            log.exception("simulated event %s failed", event.index)
            self.outcome.refusals["error"] += 1

    async def _live(self, event: PlannedEvent) -> None:
        begun = await self._start(event)
        if begun is None:
            return
        event_id, key = begun
        d = event.draws
        first_handling: str | None = None
        extension_asked = rated = verified_once = False
        for _ in range(MAX_STEPS):
            snap = await self._snapshot(event_id)
            if snap.state in ENDED:
                self.outcome.finished += 1
                return
            if snap.pending:
                await self._supervise(snap, event)
                continue
            if snap.state == "feedback":
                if d.rating == "default" or rated and d.rating != "dissatisfied":
                    # No rating: the window's timer accepts it (its end is known once the reporter was asked).
                    await self._wait(_at(snap.rating_due), 0.5 if snap.rating_due else 1.0)
                    continue
                await self._wait(None, d.rate_hours)
                value = "satisfied" if rated else d.rating  # dissatisfied once, then content with the rework
                rated = True
                await self._rate(event_id, value, key)
                continue
            task = next((t for t in reversed(snap.tasks) if t.status in ("open", "claimed")
                         and t.kind in ("handle", "verify", "triage")), None)
            if task is None:  # between moves (rerouting): look again a little later
                await self._wait(None, 0.5)
                continue
            if task.kind == "triage":
                await self._triage(snap, task, event)
            elif task.kind == "verify":
                await self._verify(event_id, task, d.verify_hours, not (d.verify_fail and not verified_once),
                                   event, snap)
                verified_once = True
            else:
                first = first_handling in (None, task.task_id)
                first_handling = first_handling or task.task_id
                extension_asked = await self._handle(event_id, task, event, first, extension_asked)
        self.outcome.abandoned += 1

    async def _rate(self, event_id: str, value: str, key: str) -> None:
        await self._act(f"rate_{value}", lambda: commands.rate(self.ctx, event_id, value, "", key))

    async def _fresh(self, event_id: str, task_id: str) -> Task | None:
        """The task as it is now, when it is still open or claimed and the event has no pending request."""
        snap = await self._snapshot(event_id)
        task = next((t for t in snap.tasks if t.task_id == task_id), None)
        if task is None or task.status not in ("open", "claimed") or snap.pending or snap.state in ENDED:
            return None
        return task

    async def _claimed(self, event_id: str, task: Task, hours: float, who: CurrentUser) -> Task | None:
        """Claim ``task`` ``hours`` working hours after it was created (unless claimed already)."""
        if task.status == "claimed":
            return task if task.claimed_by == who.username else None
        await self._wait(_at(task.created_at), hours)
        fresh = await self._fresh(event_id, task.task_id)
        if fresh is None or fresh.unit != task.unit:
            return None
        if not await self._act("claim", lambda: commands.claim(self.ctx, who, task.task_id)):
            return None
        return fresh

    async def _handle(self, event_id: str, task: Task, event: PlannedEvent, first: bool, asked: bool) -> bool:
        d = event.draws
        who = self.people.of(task, d.pick)
        if who is None:
            self.outcome.refusals["no_person_in_unit"] += 1
            await self._wait(_at(task.marks.get("escalate")), 0.5)  # the red warning moves it on
            return asked
        if await self._claimed(event_id, task, d.claim_hours, who) is None:
            return asked
        if first and d.stuck:  # nobody finishes it: the grace period ends, the task climbs the ladder
            await self._wait(_at(task.marks.get("escalate")), 0.25)
            return asked
        if first and d.action in ("return", "escalate"):
            await self._wait(None, 0.5)
            if await self._fresh(event_id, task.task_id) is None:
                return asked
            action = "request_return" if d.action == "return" else "escalate"
            reason = "不属于本单位职责" if d.action == "return" else "超出本级处置权限"
            await self._act(action, lambda: commands.request(self.ctx, who, task.task_id, action, reason))
            return asked
        if first and d.action == "extension" and not asked:
            await self._wait(_at(task.created_at), task.hours * 0.5)
            if await self._fresh(event_id, task.task_id) is None:
                return True
            hours = max(1, min(240, math.ceil(task.hours / 2)))
            await self._act("request_extension", lambda: commands.request(
                self.ctx, who, task.task_id, "request_extension", "需协调多方,申请延期", hours=hours))
            return True
        current = await self._fresh(event_id, task.task_id)
        if current is None:
            return asked
        due = _at(current.marks.get("due") or current.due_at)
        if first and d.late_hours and due is not None:
            when = add_working_hours(due, d.late_hours)
        else:
            when = add_working_hours(_at(current.created_at) or self.agenda.now or due or datetime.now(CITY_TZ),
                                     max(0.25, d.work_share * current.hours))
        await self._wait(when)
        if await self._fresh(event_id, task.task_id) is None:
            return asked
        await self._act("complete", lambda: commands.complete(self.ctx, who, task.task_id, "已按要求处置完毕", None))
        return asked

    async def _verify(self, event_id: str, task: Task, hours: float, passed: bool, event: PlannedEvent,
                      snap: EventSnapshot) -> None:
        handler = next((t.claimed_by for t in reversed(snap.tasks) if t.kind == "handle" and t.status == "done"), None)
        who = self.people.of(task, event.draws.pick, not_user=handler)
        if who is None:
            self.outcome.refusals["no_person_in_unit"] += 1
            await self._wait(_at(task.marks.get("escalate") or task.due_at), 0.5)
            return
        if await self._claimed(event_id, task, hours, who) is None:
            return
        await self._act("verify_pass" if passed else "verify_fail", lambda: commands.complete(
            self.ctx, who, task.task_id, "现场核查" + ("通过" if passed else "未通过"), passed))

    async def _supervise(self, snap: EventSnapshot, event: PlannedEvent) -> None:
        await self._wait(None, SUPERVISOR_HOURS)
        who = self.people.supervisor_for(snap)
        fresh = await self._snapshot(snap.event_id)
        if who is None or not fresh.pending:
            return
        action = {"extension": "approve_extension" if event.draws.extension_approved else "deny_extension",
                  "return": "approve_return", "review": "review_rework"}.get(fresh.pending)
        if action is None:
            self.outcome.refusals[f"pending_{fresh.pending}"] += 1
            await self._wait(None, 8.0)
            return
        if not await self._act(action, lambda: commands.supervise(self.ctx, who, snap.event_id, action,
                                                                  reason="同意" if "approve" in action else "复核")):
            await self._wait(None, 8.0)

    async def _triage(self, snap: EventSnapshot, task: Task, event: PlannedEvent) -> None:
        """A supervisor of the triage task's unit places the event with its community."""
        await self._wait(_at(task.created_at), SUPERVISOR_HOURS)
        who = next((p for p in self.people.by_unit.get(task.unit, []) if p.is_supervisor), None)
        community = self.people.org.units[event.grid].parent if event.grid in self.people.org.units else None
        if who is None or community is None:
            self.outcome.refusals["no_triage_supervisor"] += 1
            await self._wait(None, 8.0)
            return
        # A triage task is placed as it stands (a claim is refused in state triage): the supervisor names
        # the category and the community, and the event is routed there.
        if not await self._act("triage", lambda: commands.triage(self.ctx, who, task.task_id, event.category,
                                                                 community, "按属地交办")):
            await self._wait(None, 8.0)


def settings_for(data_dir: Path, task_queue: str | None = None) -> Settings:
    """The platform settings of a simulation run: its own store and task queue."""
    return Settings(data_dir=data_dir, temporal_task_queue=task_queue or f"wulian-sim-{uuid.uuid4().hex[:8]}",
                    secret_key="simulate-" + uuid.uuid4().hex, intake_wait_seconds=5)


async def people_of(db: Database, org: OrgTree) -> People:
    """Everyone of the organisation who may act."""
    async with db.session() as session:
        from sqlmodel import select

        users = list((await session.exec(select(models.User))).all())
    return People(users, org)


def context(settings: Settings, db: Database, client: Client) -> AppContext:
    """The web's context around ``db`` and ``client`` (the commands take it)."""
    ctx = AppContext(settings=settings, db=db)
    ctx.set_client(client)
    return ctx


def first_day(now: datetime) -> date:
    """The simulated year starts on the day after ``now`` (city time)."""
    return now.astimezone(CITY_TZ).date() + timedelta(days=1)
