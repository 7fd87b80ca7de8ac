"""``wulian simulate``: a small seeded city through the real workflow on the time-skipping server, and a
candidate list compared with the active one over the same simulated year."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from rules.responsibility_list import DEFAULT_LIST_PATH, ResponsibilityList
from store import models
from store.db import Database
from store.org import OrgTree
from wulian.rule_registry import parse_list
from wulian.simulation.plan import City, plan
from wulian.simulation.year import Options, active_list, city_plan, compare, simulate, test_server_binary
from wulian.temporal_setup import ensure_search_attributes


async def test_the_same_seed_draws_the_same_year(org_db: Database) -> None:
    org = await OrgTree.load(org_db)
    lst = parse_list(DEFAULT_LIST_PATH.read_text(encoding="utf-8"))
    first = plan(City.of(org, lst, 7), 7, 300, __import__("datetime").date(2018, 1, 1), 365)
    again = plan(City.of(org, lst, 7), 7, 300, __import__("datetime").date(2018, 1, 1), 365)
    other = plan(City.of(org, lst, 8), 8, 300, __import__("datetime").date(2018, 1, 1), 365)
    assert first == again and first != other
    tiers = Counter(lst.by_code()[e.category].tier for e in first)
    assert (tiers["grid"] + tiers["community"] + tiers["street"]) / len(first) > 0.9  # mostly grassroots



async def test_every_planned_report_passes_the_workflows_own_input_check(org_db: Database) -> None:
    # A planned report the check refuses is never routed: the simulated year would lose it (it drew
    # unassigned mobile ranges such as 174 and 154 for about 7% of the reports).
    from datetime import date

    from workflows.inputs import normalised, report_problems
    from workflows.types import EventReport, Location, Reporter

    org = await OrgTree.load(org_db)
    lst = parse_list(DEFAULT_LIST_PATH.read_text(encoding="utf-8"))
    refused = []
    for e in plan(City.of(org, lst, 3), 3, 2_000, date(2018, 1, 1), 365):
        report = EventReport(category=e.category, description=e.description, location=Location(grid=e.grid),
                             reporter=Reporter(e.reporter_name, e.reporter_phone), source=e.source)
        if problems := report_problems(normalised(report)):
            refused.append((e.reporter_phone, problems))
    assert refused == []

def _busiest_community_category(events: list, lst: ResponsibilityList) -> str:  # type: ignore[type-arg]
    counts = Counter(e.category for e in events if lst.by_code()[e.category].tier == "community")
    return counts.most_common(1)[0][0]


async def test_a_category_moved_from_community_to_street_shows_the_streets_added_workload(
    org_db: Database, tmp_path: Path
) -> None:
    options = Options(events=3_000, days=365, seed=2018)
    await compare(options, parse_list(DEFAULT_LIST_PATH.read_text(encoding="utf-8")), org_db)  # stores the list
    active = await active_list(org_db)
    org = await OrgTree.load(org_db)
    from datetime import date

    events = plan(City.of(org, active, options.seed), options.seed, options.events, date(2018, 1, 1), options.days)
    moved = _busiest_community_category(events, active)
    raw = json.loads(DEFAULT_LIST_PATH.read_text(encoding="utf-8"))
    raw["version"] = raw["version"] + "-street"
    for cat in raw["categories"]:
        if cat["code"] == moved:
            cat["tier"] = "street"
    candidate = parse_list(json.dumps(raw))
    before, after, n = await compare(options, candidate, org_db)
    assert n == 3_000
    reports = Counter(org.place_grid(e.grid).street for e in events if e.category == moved)
    street, count = reports.most_common(1)[0]
    assert count > 0
    added = after.units[street].workload - before.units[street].workload
    assert added >= count * 0.8  # (a few of them were routed elsewhere anyway: repeats, escalations)
    community_loss = sum(after.units[c].workload - before.units[c].workload for c, u in org.units.items()
                         if u.kind == "community" and org.units[c].parent == street)
    assert community_loss < 0
    # What the move does not touch stays as it was: the same reports and decisions under both lists.
    grids = [u for u, info in org.units.items() if info.kind == "grid"]
    assert [before.units[g].workload for g in grids] == [after.units[g].workload for g in grids]
    from wulian.simulation.compare import differences

    rows, total = differences(before, after)
    assert rows[0].unit in {street} | {c for c, u in org.units.items() if u.parent == street}
    assert total.candidate.workload >= total.active.workload


#: A small city whose plan has returns that the list sends to triage, an escalation, a denied extension
#: and a dissatisfied rating (seed 12 draws them), so every kind of actor acts.
SMALL_CITY = Options(events=30, days=4, seed=12, tick_minutes=60)


async def _triaged(db: Database) -> int:
    """Triage tasks the store shows done (each placed by a supervisor)."""
    async with db.session() as session:
        rows = (await session.exec(select(models.Task).where(models.Task.kind == "triage"))).all()
    return sum(1 for t in rows if t.status == "done")


async def test_a_small_city_runs_through_the_real_workflow_and_yields_indicators(
    own_time_env: WorkflowEnvironment, org_db: Database, tmp_path: Path
) -> None:
    # A server of its own: the simulation leaves its events' workflows behind, whose timers would
    # hold up the shared server's time skipping for the tests after it.
    result = await simulate(SMALL_CITY, tmp_path, env=own_time_env, db=org_db)
    assert result.outcome.started == 30
    assert result.summary.events == 30
    assert result.summary.closed == 30 and result.outcome.abandoned == 0
    assert not result.outcome.refusals, result.outcome.refusals
    values = result.summary.indicators
    assert values["closed_rate"].value == 1.0
    assert values["events"].value == 30
    assert result.outcome.actions["claim"] >= 50 and result.outcome.actions["complete"] >= 25
    # A return the list could not place again went to triage, and the simulated supervisor placed it
    # (a triage task is placed as it stands, without a claim: once every such event was abandoned).
    assert result.outcome.actions["approve_return"] >= 1
    assert result.outcome.actions["triage"] == await _triaged(org_db) >= 1
    # The plan is the one the seed draws.
    events = city_plan(await OrgTree.load(org_db), await active_list(org_db), SMALL_CITY, result.first)
    assert len(events) == 30


async def test_workers_in_processes_of_their_own_play_the_same_year(
    own_time_env: WorkflowEnvironment, org_db: Database, tmp_path: Path
) -> None:
    """``--workers 1``: the platform's worker in a child process, on the same server and store, gives the
    same year as the worker inside the simulation's process (the actors' decisions are drawn from the seed,
    and what they meet is the platform's doing, whichever process runs it)."""
    inside = await simulate(SMALL_CITY, tmp_path / "inside", env=own_time_env, db=org_db)
    other = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_binary())
    await ensure_search_attributes(other.client, "default")
    beside_db = Database(f"sqlite+aiosqlite:///{tmp_path / 'beside.db'}")
    try:
        beside = await simulate(replace(SMALL_CITY, workers=1), tmp_path / "beside", env=other, db=beside_db)
    finally:
        await beside_db.dispose()
        await other.shutdown()
    assert beside.outcome.actions == inside.outcome.actions
    assert beside.summary.by_state == inside.summary.by_state == {"closed": 30}
    assert not beside.outcome.refusals
    # The child wrote its log in the run's folder.
    assert (tmp_path / "beside" / "worker-1.log").exists()
