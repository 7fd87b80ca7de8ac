"""Production shape (issue 13, item 6): two worker processes and two web processes against one
Temporal dev server and PostgreSQL (a database of its own on the shared server, dropped afterwards),
reports spread over both webs, and claims of one task racing through different webs: its assignee
(the cadre stationed in the street) through both webs at once, and a colleague of the same department
at the same moment: exactly one claim wins; afterwards the invariant checker finds every
report once, in Temporal and in the store, with the store equal to the workflows."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from bench.faults import Load, Plan, Processes, run_plan
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="WULIAN_TEST_DATABASE_URL not set")

#: Of the comprehensive law enforcement department, where SR-10 goes: the cadre stationed in street HS
#: (the task's assignee for a report there) and the department's own staff.
RIVALS = ("pz_zf_hs", "bm_zf")
#: Who claims through which web, all at once.
CLAIMS = (("pz_zf_hs", 0), ("pz_zf_hs", 1), ("bm_zf", 1))
RACES = 6


def _dsn(database: str) -> str:
    return PG_URL.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + f"/{database}"


async def test_two_workers_two_webs_and_racing_claims(tmp_path: Path) -> None:
    database = f"wulian_shape_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{database}"')
    outcomes: list[tuple[str, list[int], list[str | None]]] = []

    async def race(procs: Processes, load: Load) -> None:
        """Report SR-10 events (department ZF) and let two of its people claim each at once, one per web."""
        async with httpx.AsyncClient(timeout=30) as http:
            tokens = {}
            for i, user in enumerate(RIVALS):
                answer = await http.post(f"{procs.web_urls[i]}/api/auth/login",
                                         json={"username": user, "password": "demo12345"})
                assert answer.status_code == 200, answer.text
                tokens[user] = answer.json()["token"]
            for n in range(RACES):
                receipt = await load.report(http, 10_000 + n, category="SR-10", handle=False)
                assert receipt is not None and receipt.status == 201, load.refusals
                task = f"{receipt.event_id}.T1"
                answers = await asyncio.gather(*(
                    http.post(f"{procs.web_urls[web]}/api/tasks/{task}/claim",
                              headers={"Authorization": f"Bearer {tokens[user]}"}) for user, web in CLAIMS))
                outcomes.append((task, sorted(a.status_code for a in answers),
                                 [a.json().get("claimed_by") if a.status_code == 200 else a.text[:300]
                                  for a in answers]))

    try:
        plan = Plan(reports=30, concurrency=6, store="postgresql", kills={}, outage=0, workers=2, webs=2)
        outcome = await run_plan(plan, tmp_path, database_url=_dsn(database).replace(
            "postgresql://", "postgresql+asyncpg://"), during=race)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    shown = "\n".join(outcome.lines())
    assert len(outcomes) == RACES, shown
    for task, statuses, winners in outcomes:
        assert statuses[0] == 200 and set(statuses[1:]) <= {403, 409}, f"{task}: {statuses} {winners}"
        assert [w for w in winners if w in RIVALS] == ["pz_zf_hs"], f"{task}: {winners} (one claim must win)"
    counts = outcome.report.counts()
    assert outcome.refusals == [], shown
    assert (counts["lost"], counts["duplicated"], counts["inconsistent"], counts["double_claims"],
            counts["unreadable"]) == (0, 0, 0, 0, 0), shown
    assert outcome.accepted == outcome.sent >= 30 + RACES and counts["checked"] == outcome.accepted, shown
    assert outcome.handled == outcome.accepted - RACES, shown
    # Both webs took reports, both workers ran workflows.
    assert all(log.stat().st_size > 0 for log in (tmp_path / "logs").glob("worker*.log")), shown
