"""A small picture of where an event is, drawn from the organisation's own data (no map tiles): the
grid centres of the event's street as dots, the event's grid highlighted, the reported point as a
marker. Rendered as inline SVG by the event page."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from store import models
from store.org import OrgTree

WIDTH, HEIGHT, MARGIN = 320, 200, 24


@dataclass
class MapPoint:
    """A point in the picture's coordinates (pixels from the top left)."""

    x: float
    y: float
    label: str = ""
    highlight: bool = False


@dataclass
class LocationMap:
    """What the template draws."""

    width: int = WIDTH
    height: int = HEIGHT
    grids: list[MapPoint] = field(default_factory=list)
    event: MapPoint | None = None
    scale_km: float = 0.0  # the length of the scale bar, in km
    scale_px: float = 0.0


def location_map(org: OrgTree, event: models.Event) -> LocationMap | None:
    """The picture for ``event``, or None when neither its grid nor its coordinates are known."""
    street = event.street or (org.street_of(event.grid) if event.grid and event.grid in org.units else None)
    grids = [u for u in org.units.values() if u.kind == "grid" and u.lat is not None and u.lon is not None
             and (street is None or org.street_of(u.code) == street)]
    if event.grid is None and event.lat is None:
        return None
    points = [(u.lat, u.lon) for u in grids]
    if event.lat is not None and event.lon is not None:
        points.append((event.lat, event.lon))
    if not points:
        return None
    lats = [p[0] for p in points if p[0] is not None]
    lons = [p[1] for p in points if p[1] is not None]
    # An equirectangular projection is exact enough over a street: x is scaled by cos(latitude).
    mid = math.radians((min(lats) + max(lats)) / 2)
    span_x = max((max(lons) - min(lons)) * math.cos(mid), 1e-3)
    span_y = max(max(lats) - min(lats), 1e-3)
    scale = min((WIDTH - 2 * MARGIN) / span_x, (HEIGHT - 2 * MARGIN) / span_y)
    ox = (WIDTH - span_x * scale) / 2
    oy = (HEIGHT - span_y * scale) / 2

    def place(lat: float, lon: float) -> tuple[float, float]:
        return (round(ox + (lon - min(lons)) * math.cos(mid) * scale, 1),
                round(HEIGHT - oy - (lat - min(lats)) * scale, 1))

    picture = LocationMap()
    for unit in sorted(grids, key=lambda u: u.code):
        x, y = place(unit.lat, unit.lon)  # type: ignore[arg-type]
        picture.grids.append(MapPoint(x, y, unit.code, unit.code == event.grid))
    if event.lat is not None and event.lon is not None:
        x, y = place(event.lat, event.lon)
        picture.event = MapPoint(x, y)
    km_per_px = 111.32 / scale  # one degree of latitude is about 111 km
    picture.scale_km = _round_km(km_per_px * 80)
    picture.scale_px = round(picture.scale_km / km_per_px, 1)
    return picture


def _round_km(km: float) -> float:
    """A round length for the scale bar (1, 2 or 5 times a power of ten)."""
    power = 10 ** math.floor(math.log10(km))
    return next(f * power for f in (5, 2, 1) if f * power <= km)
