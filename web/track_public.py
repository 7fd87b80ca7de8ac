"""What the tracking page shows of the handling: the handler's result and the photos marked public.

The rule (ARCHITECTURE.md, "Residents' location and the public result"): a photo is public only when
the handler who completed a *handling* task with it ticked "show on the tracking page"
(``photo.public``, set by ``web.commands.complete`` once the completion is accepted). Public photos
are served to anyone with the receipt code at ``/track/<code>/public/<photo id>``; every other photo
stays behind :func:`web.photos.viewable_photo` (staff in scope) or the reporter's tracking key
(their own report's photos). The result is the text of the latest completed handling task; it is
written for the reporter, and is shown from the moment the handling is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException, TooManyRequestsException
from litestar.response import File

from store import photos as photo_store
from store import queries
from store.db import Database
from web.client_address import client_ip
from web.context import AppContext
from web.errors import refusal
from web.photos import photo_dir
from web.request_limits import Limited, hit, track_limit


@dataclass
class HandlingOutcome:
    """The latest handling result of an event and its public photos (ids)."""

    result: str | None = None
    completed_at: str | None = None
    photos: list[str] = field(default_factory=list)


async def handling_outcome(db: Database, event_id: str) -> HandlingOutcome:
    """The result of the latest completed handling task and the event's public photos."""
    done = [t for t in await queries.event_tasks(db, event_id)
            if t.kind == "handle" and t.status == "done" and t.completed_at is not None]
    latest = max(done, key=lambda t: t.completed_at) if done else None  # type: ignore[arg-type,return-value]
    return HandlingOutcome(
        result=(latest.result or None) if latest else None,
        completed_at=latest.completed_at.isoformat() if latest and latest.completed_at else None,
        photos=await photo_store.public_photos(db, event_id),
    )


class PublicPhotoController(Controller):
    """Public photos of a handling result, by receipt code."""

    @get("/track/{code:str}/public/{photo_id:str}")
    async def public_photo(self, ctx: AppContext, request: Request, code: str, photo_id: str) -> File:
        """A photo its handler marked public, to anyone with the event's receipt code (404 for any
        other photo, also one of this event; rate-limited like tracking)."""
        try:
            await hit(ctx.db, track_limit(ctx.settings), client_ip(request, ctx.settings))
        except Limited as exc:
            raise TooManyRequestsException(str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
        event = await queries.event_by_receipt(ctx.db, code)
        photo = await photo_store.get(ctx.db, photo_id) if photo_store.is_photo_id(photo_id) else None
        path = photo_dir(ctx) / photo_id
        # One answer for every refusal: no hint which receipt codes or photos exist.
        if event is None or photo is None or not photo.public or photo.event_id != event.event_id \
                or not path.is_file():
            raise refusal(NotFoundException, "error.photo_missing")
        return File(path=path, media_type=photo.media_type or None, filename=photo.photo_id,
                    content_disposition_type="inline")


TRACK_PUBLIC_CONTROLLERS = [PublicPhotoController]
