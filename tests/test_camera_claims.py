"""The open event of a camera and category (``store/camera_alarms.py``), on SQLite and PostgreSQL:
concurrent alarms agree on one event, a later one within the window joins it, one after the window
or after the event ended moves the camera on to a new event; and the candidates of ``store/duplicates.py``."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from store import camera_alarms, duplicates, models
from store.db import Database
from store.timeutil import utcnow

WINDOW = timedelta(minutes=30)


async def _event(db: Database, event_id: str, state: str, **fields: object) -> None:
    now = utcnow()
    async with db.session() as session:
        session.add(models.Event(event_id=event_id, receipt_code=event_id[-10:], source="camera", category="SR-01",
                                 description="告警", state=state, stage="dispatch", created_at=now, updated_at=now,
                                 **fields))
        await session.commit()


async def test_concurrent_alarms_share_one_event_until_the_window_or_the_event_ends(any_db: Database) -> None:
    now = utcnow()
    claims = await asyncio.gather(*(camera_alarms.claim(any_db, "CAM-7", "SR-01", now, WINDOW, f"EV-NEW-{i}")
                                    for i in range(12)))
    assert len({c.event_id for c in claims}) == 1
    assert sum(c.new for c in claims) == 1
    first = claims[0].event_id
    await _event(any_db, first, "dispatched")
    later = await camera_alarms.claim(any_db, "CAM-7", "SR-01", now + timedelta(minutes=29), WINDOW, "EV-X1")
    assert later == camera_alarms.Claim(first, new=False)
    # The window slides from the last alarm: 29 + 29 minutes is still the same event.
    still = await camera_alarms.claim(any_db, "CAM-7", "SR-01", now + timedelta(minutes=58), WINDOW, "EV-X2")
    assert still.event_id == first
    other = await camera_alarms.claim(any_db, "CAM-7", "SR-02", now, WINDOW, "EV-OTHER")
    assert other == camera_alarms.Claim("EV-OTHER", new=True)
    gap = await camera_alarms.claim(any_db, "CAM-7", "SR-01", now + timedelta(minutes=89), WINDOW, "EV-GAP")
    assert gap == camera_alarms.Claim("EV-GAP", new=True)
    await _event(any_db, "EV-GAP", "voided")
    after_void = await camera_alarms.claim(any_db, "CAM-7", "SR-01", now + timedelta(minutes=90), WINDOW, "EV-N")
    assert after_void == camera_alarms.Claim("EV-N", new=True)


async def test_candidates_are_open_reports_of_the_category_nearby_or_at_the_same_address(any_db: Database) -> None:
    lat, lon = 28.7412, 118.6270
    await _event(any_db, "EV-NEAR-0000001", "handling", lat=lat + 0.0005, lon=lon, grid="HS01-G1")
    await _event(any_db, "EV-FAR-00000001", "dispatched", lat=lat + 0.002, lon=lon, grid="HS01-G1")
    await _event(any_db, "EV-DONE-0000001", "closed", lat=lat, lon=lon, grid="HS01-G1")
    await _event(any_db, "EV-MERGED-00001", "merged", lat=lat, lon=lon, grid="HS01-G1")
    await _event(any_db, "EV-ADDR-0000001", "dispatched", grid="HS01-G1", address="解放路 8 号")
    since = utcnow() - timedelta(days=30)
    near = await duplicates.candidates(any_db, category="SR-01", since=since, lat=lat, lon=lon, grid="HS01-G1",
                                       address=None)
    assert [(c.event_id, c.distance_m) for c in near] == [("EV-NEAR-0000001", 56)]
    by_place = await duplicates.candidates(any_db, category="SR-01", since=since, lat=None, lon=None,
                                           grid="HS01-G1", address="解放路8号 ".replace("8号", " 8 号"))
    assert [(c.event_id, c.distance_m) for c in by_place] == [("EV-ADDR-0000001", None)]
    assert await duplicates.candidates(any_db, category="SR-02", since=since, lat=lat, lon=lon, grid="HS01-G1",
                                       address=None) == []
    assert await duplicates.candidates(any_db, category="SR-01", since=since, lat=None, lon=None,
                                       grid="HS01-G2", address="解放路 8 号") == []
