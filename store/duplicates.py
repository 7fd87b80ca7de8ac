"""Open reports a new report may duplicate (issue 12, item 4): the same category, open, reported within
the last days, and within :data:`~workflows.policy.DUPLICATE_METRES` where both have coordinates, else
in the same grid at the same address. Offered to the reporter to follow ("me too"), never merged by
themselves: a supervisor merges (``web/commands.merge``).

One range of ``ix_event_category_created`` (category, newest first), at most :data:`SCAN` rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from store import models
from store.db import Database
from workflows.policy import DUPLICATE_METRES

#: States whose events take no followers (ended) and are never offered.
ENDED_STATES = ("closed", "voided", "merged")
#: Rows of the category read at most, newest first.
SCAN = 200
#: Characters of a description a page shows (as the public nearby list).
SUMMARY = 40


@dataclass(frozen=True)
class Candidate:
    """An open report the new one may duplicate: what a follow needs, never who reported it."""

    event_id: str
    category: str
    distance_m: int | None  # None: matched by grid and address
    summary: str = ""  # the description shortened as the public nearby list shows it (pages only)


def metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in metres (haversine, mean earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def _address(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


#: Distances are answered in bands of this many metres, never to the metre: exact distances from
#: three chosen points would give away where another resident stood.
DISTANCE_BAND = 50


def within(distance_m: int | None) -> int | None:
    """The band a candidate's distance is answered in (50 or 100 m), ``None`` for a grid-and-address match."""
    if distance_m is None:
        return None
    return max(1, math.ceil(distance_m / DISTANCE_BAND)) * DISTANCE_BAND


def matches(event: models.Event, lat: float | None, lon: float | None, grid: str | None,
            address: str | None) -> int | None | bool:
    """The distance in metres when ``event`` lies within reach of the point, ``None`` when it matches by
    grid and address (one of the two has no coordinates), ``False`` when it is no duplicate."""
    if lat is not None and lon is not None and event.lat is not None and event.lon is not None:
        distance = metres(lat, lon, event.lat, event.lon)
        return round(distance) if distance <= DUPLICATE_METRES else False
    if grid and address and event.grid == grid and _address(event.address) == _address(address):
        return None
    return False


async def candidates(db: Database, *, category: str, since: datetime, lat: float | None, lon: float | None,
                     grid: str | None, address: str | None, exclude: str = "", limit: int = 5) -> list[Candidate]:
    """Open reports of ``category`` since ``since`` that the report at this place may duplicate, the
    nearest first (those matched by grid and address after them), at most ``limit``."""
    if not category or (lat is None and not (grid and address)):
        return []
    async with db.session() as session:
        rows = (await session.exec(
            select(models.Event)
            .where(models.Event.category == category, col(models.Event.created_at) >= since,
                   col(models.Event.state).not_in(ENDED_STATES), models.Event.event_id != exclude)
            .order_by(col(models.Event.created_at).desc())
            .limit(SCAN))).all()
    found: list[Candidate] = []
    for row in rows:
        hit = matches(row, lat, lon, grid, address)
        if hit is not False:
            text = row.description if len(row.description) <= SUMMARY else row.description[:SUMMARY] + "…"
            found.append(Candidate(row.event_id, row.category, hit if isinstance(hit, int) else None, text))
    found.sort(key=lambda c: (c.distance_m is None, c.distance_m or 0))
    return found[:limit]
