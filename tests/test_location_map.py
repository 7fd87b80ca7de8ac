"""The event page's location sketch: grid centres of the street, the event's grid and point."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from store import models
from store.db import Database
from store.org import OrgTree
from web.location_map import HEIGHT, WIDTH, location_map

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


@pytest.fixture
async def tree(org_db: Database) -> OrgTree:
    return await OrgTree.load(org_db)


def _event(**fields: object) -> models.Event:
    base: dict[str, object] = dict(event_id="e", receipt_code="R1", source="portal", category="SR-01",
                                   description="d", state="dispatched", stage="handling",
                                   created_at=NOW, updated_at=NOW)
    return models.Event(**{**base, **fields})


async def test_the_grids_of_the_street_are_drawn_with_the_events_grid_highlighted(tree: OrgTree) -> None:
    grid = tree.units["HS01-G1"]
    picture = location_map(tree, _event(grid="HS01-G1", street="HS", lat=grid.lat, lon=grid.lon))
    assert picture is not None
    street_grids = {u.code for u in tree.units.values() if u.kind == "grid" and tree.street_of(u.code) == "HS"}
    assert {g.label for g in picture.grids} == street_grids  # no grid of another street
    assert [g.label for g in picture.grids if g.highlight] == ["HS01-G1"]
    assert all(0 <= g.x <= WIDTH and 0 <= g.y <= HEIGHT for g in picture.grids)
    here = next(g for g in picture.grids if g.highlight)
    assert picture.event is not None and (picture.event.x, picture.event.y) == (here.x, here.y)
    assert 0 < picture.scale_px < WIDTH and picture.scale_km > 0


async def test_north_is_up_and_east_is_right(tree: OrgTree) -> None:
    grid = tree.units["HS01-G1"]
    assert grid.lat is not None and grid.lon is not None
    north = location_map(tree, _event(grid="HS01-G1", street="HS", lat=grid.lat + 0.002, lon=grid.lon))
    east = location_map(tree, _event(grid="HS01-G1", street="HS", lat=grid.lat, lon=grid.lon + 0.002))
    centre = location_map(tree, _event(grid="HS01-G1", street="HS", lat=grid.lat, lon=grid.lon))
    assert north and east and centre and north.event and east.event and centre.event
    # The other points may shift the frame a little; relative to the grid's own dot the direction holds.
    dot = {p: next(g for g in m.grids if g.highlight) for p, m in (("n", north), ("e", east))}
    assert north.event.y < dot["n"].y and east.event.x > dot["e"].x


async def test_no_grid_and_no_coordinates_means_no_picture(tree: OrgTree) -> None:
    assert location_map(tree, _event()) is None
    only_grid = location_map(tree, _event(grid="HS01-G1", street="HS"))
    assert only_grid is not None and only_grid.event is None and any(g.highlight for g in only_grid.grids)
