"""The report form's "use my location": the browser's position (the geolocation API, in
``web/static/locate.js``) is sent here and answered with the nearest grid, by the same placement the
routing uses (:meth:`store.org.OrgTree.nearest_grid`: the nearest grid centre of the organisation
tree within 1.5 km). The position is not stored or logged; the form only gets the grid picked."""

from __future__ import annotations

from typing import Annotated, TypedDict

from litestar import Controller, Request, get
from litestar.exceptions import TooManyRequestsException
from litestar.params import Parameter

from web.client_address import client_ip
from web.context import AppContext
from web.request_limits import Limited, hit, track_limit


class NearestGridAnswer(TypedDict):
    """The grid nearest to a position: its code and names, and the distance to its centre (km, 2
    decimals); all null when no grid centre is within 1.5 km."""

    grid: str | None
    name_zh: str | None
    name_en: str | None
    km: float | None


class LocateController(Controller):
    """Public: the grid of a position, for the report form."""

    path = "/api/grids"

    @get("/nearest")
    async def nearest(
        self, ctx: AppContext, request: Request,
        lat: Annotated[float, Parameter(ge=-90, le=90, description="latitude (WGS 84, degrees)")],
        lon: Annotated[float, Parameter(ge=-180, le=180, description="longitude (WGS 84, degrees)")],
    ) -> NearestGridAnswer:
        """The grid whose centre is nearest to ``lat``/``lon`` (within 1.5 km, else nulls); 400 for a
        position outside the ranges; rate-limited per client address like tracking (429)."""
        try:
            await hit(ctx.db, track_limit(ctx.settings), client_ip(request, ctx.settings))
        except Limited as exc:
            raise TooManyRequestsException(str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
        found = (await ctx.org()).nearest_grid(lat, lon)
        if found is None:
            return {"grid": None, "name_zh": None, "name_en": None, "km": None}
        unit, km = found
        return {"grid": unit.code, "name_zh": unit.name_zh, "name_en": unit.name_en, "km": round(km, 2)}


LOCATE_CONTROLLERS = [LocateController]
