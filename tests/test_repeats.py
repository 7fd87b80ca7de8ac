"""The repeat rule counts other people, not copies (issue 10, item 3): three reports by one person in
a grid are one, a copy of an anonymous report is no second report, voided events and follows are no
reports (store/repeats.py, the routing activity)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from activities.lifecycle import LifecycleActivities
from store import models
from store.db import Database
from store.repeats import reporter_key
from store.seed import load_organisation
from store.timeutil import utcnow
from tests.platform import Platform
from workflows.types import Decision, EventReport, Location, Reporter, RoutingRequest

_ids = itertools.count(1)


@pytest.fixture
async def acts(tmp_path: Path) -> AsyncIterator[LifecycleActivities]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'repeats.db'}")
    await db.create_all()
    await load_organisation(db)
    yield LifecycleActivities(db, secret="x")
    await db.dispose()


async def earlier(acts: LifecycleActivities, *, phone: str = "", description: str = "门口垃圾",
                  external_id: str | None = None, source: str = "portal", state: str = "dispatched",
                  followers: int = 0, hours_ago: float = 1) -> None:
    """An earlier event of SR-01 in grid HS01-G1, as the projection stores it."""
    n = next(_ids)
    at = utcnow() - timedelta(hours=hours_ago)
    async with acts.db.session() as session:
        session.add(models.Event(
            event_id=f"EV-R-{n}", receipt_code=f"R{n:09d}", source=source, external_id=external_id,
            category="SR-01", description=description, grid="HS01-G1", community="HS01", street="HS",
            reporter_phone=phone, state=state, stage="handling", created_at=at, updated_at=at,
            follower_count=followers))
        await session.commit()


async def route(acts: LifecycleActivities, *, phone: str = "", description: str = "门口垃圾又堆起来了",
                external_id: str | None = None, source: str = "portal") -> Decision:
    report = EventReport(category="SR-01", description=description, location=Location(grid="HS01-G1"),
                         reporter=Reporter(phone=phone), source=source, external_id=external_id)
    return await acts.route_event(RoutingRequest(event_id="EV-R-NOW", report=report))


def test_a_reporter_is_the_phone_else_the_ticket_else_the_text() -> None:
    assert reporter_key("+86 138 0000 0000", "portal", None, "a") == reporter_key("13800000000", "api", "x", "b")
    assert reporter_key("", "hotline", "T-1", "a") == reporter_key("", "hotline", "T-1", "b") != \
        reporter_key("", "camera", "T-1", "a")
    assert reporter_key("", "portal", None, "门口 垃圾") == reporter_key("", "api", None, " 门口垃圾\n")
    assert reporter_key("", "portal", None, "门口垃圾") != reporter_key("", "portal", None, "路灯坏了")


async def test_three_reports_by_one_person_in_a_grid_are_one(acts: LifecycleActivities) -> None:
    await earlier(acts, phone="13800000000", description="门口垃圾")
    await earlier(acts, phone="+86 138 0000 0000", description="门口垃圾还没清")
    decision = await route(acts, phone="138-0000-0000")
    assert (decision.rule, decision.tier, decision.unit) == ("category:SR-01", "grid", "HS01-G1")
    assert decision.facts["repeat"] == 0


async def test_other_people_reporting_it_tier_it_up(acts: LifecycleActivities) -> None:
    await earlier(acts, phone="13800000001")
    await earlier(acts, phone="13800000001")  # the same neighbour twice: one
    await earlier(acts, phone="13900000002")
    decision = await route(acts, phone="13800000000")
    assert (decision.rule, decision.tier, decision.unit, decision.facts["repeat"]) == (
        "repeat", "community", "HS01", 2)


async def test_copies_of_an_anonymous_report_are_one_report(acts: LifecycleActivities) -> None:
    await earlier(acts, description="门口垃圾堆积")
    await earlier(acts, description="门口 垃圾堆积")
    decision = await route(acts, description="门口垃圾堆积")  # the third copy: nobody else reported it
    assert (decision.rule, decision.facts["repeat"]) == ("category:SR-01", 0)
    await earlier(acts, description="垃圾桶旁边也堆满了")
    decision = await route(acts, description="门口垃圾堆积")
    assert (decision.rule, decision.facts["repeat"]) == ("category:SR-01", 1)


async def test_tickets_of_an_integration_count_by_their_external_id(acts: LifecycleActivities) -> None:
    await earlier(acts, source="hotline", external_id="T-1")
    await earlier(acts, source="hotline", external_id="T-2")
    decision = await route(acts, source="hotline", external_id="T-3")
    assert (decision.rule, decision.facts["repeat"]) == ("repeat", 2)


async def test_voided_events_and_follows_are_no_reports(acts: LifecycleActivities) -> None:
    await earlier(acts, phone="13800000001", state="voided")
    await earlier(acts, phone="13900000002", state="voided")
    await earlier(acts, phone="13700000003", followers=30)  # 30 people said "me too": still one report
    decision = await route(acts, phone="13800000000")
    assert (decision.rule, decision.facts["repeat"]) == ("category:SR-01", 1)


async def test_reports_before_the_window_do_not_count(acts: LifecycleActivities) -> None:
    await earlier(acts, phone="13800000001", hours_ago=24 * 8)
    await earlier(acts, phone="13900000002", hours_ago=24 * 8)
    decision = await route(acts, phone="13800000000")
    assert decision.facts["repeat"] == 0


async def test_one_resident_reporting_three_times_through_the_api_stays_with_the_grid(platform: Platform) -> None:
    # Three reports (not copies: other words each time, no idempotency key) by one phone.
    answers = [await platform.report(description=text, location={"grid": "HS01-G3"},
                                     reporter={"name": "王五", "phone": "13700000009"})
               for text in ("菜场门口垃圾", "菜场门口垃圾还在", "菜场门口垃圾第三次反映")]
    assert [a["unit"] for a in answers] == ["HS01-G3"] * 3, [a["decision"] for a in answers]
    other = await platform.report(description="菜场门口垃圾，我也看到了", location={"grid": "HS01-G3"},
                                  reporter={"name": "赵六", "phone": "13700000008"})
    assert other["unit"] == "HS01-G3" and other["decision"]["rule"] == "category:SR-01"  # one other person
