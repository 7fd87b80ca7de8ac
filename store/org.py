"""The organisation tree: units, locating an event in a grid, and unit scopes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlmodel import select

from store import models
from store.db import Database
from workflows.policy import is_city_centre

#: A point further than this from every grid centre is not placed in any grid.
MAX_GRID_DISTANCE_KM = 1.5


@dataclass
class Placement:
    """An event's place in the tree (any part may be unknown)."""

    grid: str | None = None
    community: str | None = None
    street: str | None = None
    how: str = "unknown"


class OrgTree:
    """An in-memory copy of the units, for fast lookups (reload after changes)."""

    def __init__(self, units: list[models.Unit]) -> None:
        self.units = {u.code: u for u in units}
        self.children: dict[str | None, list[models.Unit]] = {}
        for unit in units:
            self.children.setdefault(unit.parent, []).append(unit)

    @classmethod
    async def load(cls, db: Database) -> OrgTree:
        """Read all units."""
        async with db.session() as session:
            return cls(list((await session.exec(select(models.Unit))).all()))

    def ancestors(self, code: str) -> list[str]:
        """``code`` and its ancestors, nearest first."""
        chain: list[str] = []
        current: str | None = code
        while current and current in self.units and current not in chain:
            chain.append(current)
            current = self.units[current].parent
        return chain

    def descendants(self, code: str) -> set[str]:
        """``code`` and every unit below it."""
        found = {code}
        stack = [code]
        while stack:
            for child in self.children.get(stack.pop(), []):
                if child.code not in found:
                    found.add(child.code)
                    stack.append(child.code)
        return found

    def city_centre(self) -> str | None:
        """The city's command centre (the top of every escalation ladder, where unplaced events of no
        street go): the unit the tree has as the city-tier command centre, never a code assumed."""
        return next((code for code, unit in sorted(self.units.items()) if is_city_centre(unit.kind, unit.tier)), None)

    def street_of(self, code: str) -> str | None:
        """The street a unit belongs to (a street command centre belongs to its street)."""
        for anc in self.ancestors(code):
            if self.units[anc].kind == "street":
                return anc
        return None

    def place_grid(self, grid: str) -> Placement:
        """The community and street of a grid."""
        unit = self.units.get(grid)
        if unit is None or unit.kind != "grid":
            return Placement(how="unknown grid")
        community = unit.parent
        street = self.units[community].parent if community in self.units else None
        return Placement(grid=grid, community=community, street=street, how="grid")

    def locate(
        self, grid: str | None, lat: float | None, lon: float | None, address: str | None
    ) -> Placement:
        """Place an event: by grid code, else the nearest grid centre, else address keywords."""
        if grid:
            placed = self.place_grid(grid.strip().upper())
            if placed.grid:
                return placed
        grids = [u for u in self.units.values() if u.kind == "grid"]
        if lat is not None and lon is not None:
            nearest = self.nearest_grid(lat, lon)
            if nearest is not None:
                placed = self.place_grid(nearest[0].code)
                placed.how = "coordinates"
                return placed
        if address:
            for unit in grids:
                if any(k and k in address for k in unit.address_keywords):
                    placed = self.place_grid(unit.code)
                    placed.how = "address"
                    return placed
            for unit in self.units.values():
                if unit.kind in ("community", "street") and unit.name_zh and unit.name_zh in address:
                    if unit.kind == "community":
                        return Placement(community=unit.code, street=unit.parent, how="address")
                    return Placement(street=unit.code, how="address")
        return Placement()

    def nearest_grid(self, lat: float, lon: float) -> tuple[models.Unit, float] | None:
        """The grid whose centre is nearest to ``lat``/``lon`` and its distance in km, when one is
        within :data:`MAX_GRID_DISTANCE_KM` (the routing's placement by coordinates, and the report
        form's "use my location")."""
        best, best_km = None, MAX_GRID_DISTANCE_KM
        for unit in self.units.values():
            if unit.kind != "grid" or unit.lat is None or unit.lon is None:
                continue
            km = _distance_km(lat, lon, unit.lat, unit.lon)
            if km <= best_km:
                best, best_km = unit, km
        return (best, best_km) if best is not None else None

    def tree(self) -> list[dict[str, object]]:
        """The whole tree as nested dicts (for the API)."""

        def node(unit: models.Unit) -> dict[str, object]:
            return {
                "code": unit.code,
                "kind": unit.kind,
                "tier": unit.tier,
                "name_zh": unit.name_zh,
                "name_en": unit.name_en,
                "children": [node(c) for c in sorted(self.children.get(unit.code, []), key=lambda u: u.code)],
            }

        return [node(u) for u in sorted(self.children.get(None, []), key=lambda u: u.code)]


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(a))
