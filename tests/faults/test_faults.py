"""The fault suite's bounded form (``bench/faults.py`` is the full one): a platform of its own under a
load of reports and handling, with a worker, the Temporal dev server and the web killed (``kill -9``)
and the store made unavailable (a private PostgreSQL stopped; the SQLite file locked by another
process); afterwards the invariant checker (``wulian check``) finds nothing lost, duplicated or
inconsistent, and every report sent was accepted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.faults import PG_BIN, Plan, run_plan


def _assert_held(outcome) -> None:  # type: ignore[no-untyped-def]
    shown = "\n".join(outcome.lines())
    counts = outcome.report.counts()
    assert outcome.refusals == [], shown
    assert (outcome.sent, counts["lost"], counts["duplicated"], counts["inconsistent"], counts["undelivered"],
            counts["double_claims"], counts["unreadable"]) == (outcome.accepted, 0, 0, 0, 0, 0, 0), shown
    assert counts["checked"] == outcome.accepted, shown
    assert outcome.handled == outcome.accepted, shown  # every task claimed and completed, despite the faults
    assert all(f.recovery is not None for f in outcome.faults), shown


@pytest.mark.skipif(not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None,
                    reason="PostgreSQL binaries not installed")
async def test_kills_and_a_stopped_postgresql_lose_nothing(tmp_path: Path) -> None:
    plan = Plan(reports=24, concurrency=6, store="postgresql", kills={"worker": 1, "temporal": 1, "web": 1},
                outage=5.0, down=(0.5, 1.5), gap=(1.5, 3.0))
    outcome = await run_plan(plan, tmp_path)
    assert [f.kind for f in outcome.faults].count("postgres stopped") == 1, outcome.lines()
    assert len(outcome.faults) == 4, outcome.lines()
    _assert_held(outcome)


async def test_a_locked_sqlite_store_loses_nothing(tmp_path: Path) -> None:
    plan = Plan(reports=16, concurrency=4, store="sqlite", kills={"worker": 1}, outage=6.0, down=(0.5, 1.0),
                gap=(1.0, 2.0))
    outcome = await run_plan(plan, tmp_path)
    assert sorted(f.kind for f in outcome.faults) == ["sqlite locked", "worker"], outcome.lines()
    _assert_held(outcome)
