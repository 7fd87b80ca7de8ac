"""Photos: checked and re-encoded on upload, recorded in the store, served within the event's scope.

- **Bytes, not declarations.** An upload is decoded with Pillow (JPEG, PNG or WebP only, at most
  :data:`MAX_PIXELS` pixels, fully loaded so a truncated file fails), turned upright by its EXIF
  orientation, shrunk to :data:`MAX_EDGE` pixels on its long side, and re-encoded from its pixels
  alone: no EXIF (a resident's photo carries their GPS position), no text chunks, no ICC profile
  (converted to sRGB first). Only the re-encoded bytes are stored, under a random id.
- **A record per photo** (``store.models.Photo``): the staff user who uploaded it, or an anonymous
  upload with its client address; when; the size; the event and task once attached (a report on
  ``/report``, a ``complete``).
- **Fetching** (``GET /photos/{id}``): :func:`viewable_photo` is the one access decision.
- **Anonymous uploads** are limited per client address and hour, the total size of unattached ones
  is capped, and unattached photos expire (rows and files) after ``photo_unattached_hours``,
  cleaned up as uploads come in (no cron).
"""

from __future__ import annotations

import asyncio
import io
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException, TooManyRequestsException
from litestar.params import Body
from litestar.response import File
from litestar.status_codes import HTTP_201_CREATED
from PIL import Image, ImageCms, ImageOps

from store import models, queries
from store import photos as photo_store
from store.receipts import key_matches
from store.timeutil import as_utc, utcnow
from web.access import signed_in
from web.auth import CurrentUser, resolve_user, visible_event
from web.client_address import client_ip
from web.commands import CommandError
from web.context import AppContext
from web.errors import refusal
from web.i18n import translate
from web.request_limits import Limited, hit, track_limit
from workflows import policy

#: Bytes an uploaded file may have.
MAX_PHOTO_BYTES = 5_000_000
#: Pixels a photo may have (a 50-megapixel camera's); more is refused before decoding (decompression bombs).
MAX_PIXELS = 50_000_000
#: The long side of a stored photo; larger photos are shrunk (enough to see a site, and bounded to serve).
MAX_EDGE = 4096
#: Photos on one completion and on one resident's report (the rules' limits, ``workflows.policy``).
MAX_TASK_PHOTOS = policy.MAX_COMPLETE_PHOTOS
MAX_REPORT_PHOTOS = policy.MAX_REPORT_PHOTOS
#: Pillow format → (extension, media type). Nothing else is decoded.
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp")}
_QUALITY = 85


class PhotoError(CommandError):
    """A refused photo: an HTTP status and a catalogue key (the API answers in English, the report
    page in the visitor's language)."""

    def __init__(self, status: int, key: str, headers: dict[str, str] | None = None, **values: Any) -> None:
        super().__init__(status, translate("en", key, **values), key, **values)
        self.headers = headers or {}

    def message(self, lang: str) -> str:
        """The reason in ``lang``."""
        return self.text(lang)


@dataclass(frozen=True)
class CleanPhoto:
    """A photo as it is stored: re-encoded, upright, without metadata."""

    content: bytes
    extension: str
    media_type: str
    width: int
    height: int


# ------------------------------------------------------------------ checking and re-encoding
def clean_photo(content: bytes) -> CleanPhoto:
    """Decode ``content`` as JPEG, PNG or WebP and re-encode it without any metadata; a
    :class:`PhotoError` (400) says why a file is refused. CPU-bound: run it in a thread."""
    if not content:
        raise PhotoError(400, "photo.error.empty")
    try:
        with Image.open(io.BytesIO(content), formats=list(FORMATS)) as checked:
            if checked.format == "PNG":
                checked.verify()  # every chunk's checksum, up to the end chunk (decoding alone stops earlier)
        with Image.open(io.BytesIO(content), formats=list(FORMATS)) as opened:
            fmt = opened.format or ""
            if opened.width * opened.height > MAX_PIXELS:
                raise PhotoError(400, "photo.error.pixels", max=MAX_PIXELS // 1_000_000)
            icc = opened.info.get("icc_profile")
            if fmt == "JPEG":
                opened.draft(None, (MAX_EDGE, MAX_EDGE))  # decode at 1/2, 1/4, 1/8 when that is enough
            opened.load()  # the whole image: a truncated file fails here
            image = ImageOps.exif_transpose(opened)  # upright, as the camera meant it
    except PhotoError:
        raise
    except Image.DecompressionBombError:
        raise PhotoError(400, "photo.error.pixels", max=MAX_PIXELS // 1_000_000) from None
    except Image.UnidentifiedImageError:
        raise PhotoError(400, "photo.error.type") from None
    except Exception:  # noqa: BLE001 - hostile input to a decoder: any failure means it cannot be read
        raise PhotoError(400, "photo.error.damaged") from None
    extension, media_type = FORMATS[fmt]
    image.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.LANCZOS)
    image = _plain_pixels(image, icc, keep_alpha=fmt != "JPEG")
    # A new image from the pixels alone: nothing of the original's info (EXIF, XMP, text chunks,
    # ICC, comments) can be carried into the saved file by any encoder.
    bare = Image.frombytes(image.mode, image.size, image.tobytes())
    out = io.BytesIO()
    if fmt == "JPEG":
        bare.save(out, "JPEG", quality=_QUALITY)
    elif fmt == "PNG":
        bare.save(out, "PNG")
    else:
        bare.save(out, "WEBP", quality=_QUALITY)
    return CleanPhoto(out.getvalue(), extension, media_type, bare.width, bare.height)


def _plain_pixels(image: Image.Image, icc: bytes | None, *, keep_alpha: bool) -> Image.Image:
    """``image`` as L, RGB or RGBA (RGBA only when it has transparency and ``keep_alpha``), its
    colours converted to sRGB when it carried an ICC profile (which is then dropped)."""
    alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    target = "RGBA" if alpha and keep_alpha else "RGB"
    if image.mode == "L" and not alpha:
        target = "L"
    if icc and image.mode in ("RGB", "RGBA", "CMYK"):
        try:
            converted = ImageCms.profileToProfile(
                image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
                outputMode="RGBA" if image.mode == "RGBA" else "RGB")
            if converted is not None:
                image = converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken profile: keep the pixels as they are
    return image if image.mode == target else image.convert(target)


# ------------------------------------------------------------------ storing
def photo_dir(ctx: AppContext) -> Path:
    """Where photo files are kept."""
    return ctx.settings.data_dir / "photos"


def form_uploads(form: FormMultiDict, name: str = "photos") -> list[UploadFile]:
    """The files of a form field; a file input left empty (no file name, nothing in it) is skipped."""
    return [v for v in form.getall(name, []) if isinstance(v, UploadFile) and v.filename]


async def read_photos(uploads: list[UploadFile], limit: int) -> list[CleanPhoto]:
    """Read, check and re-encode ``uploads`` (at most ``limit``); closes them."""
    try:
        if len(uploads) > limit:
            raise PhotoError(400, "photo.error.count", n=limit)
        cleaned: list[CleanPhoto] = []
        for upload in uploads:
            content = await upload.read(MAX_PHOTO_BYTES + 1)
            if len(content) > MAX_PHOTO_BYTES:
                raise PhotoError(413, "photo.error.size", mb=MAX_PHOTO_BYTES // 1_000_000)
            cleaned.append(await asyncio.to_thread(clean_photo, content))
        return cleaned
    finally:
        for upload in uploads:
            await upload.close()


def _write(folder: Path, photo_id: str, content: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{photo_id}.part"
    partial.write_bytes(content)
    os.replace(partial, folder / photo_id)  # never a half-written file under the photo's name


async def keep_photos(ctx: AppContext, cleaned: list[CleanPhoto], *, uploaded_by: str | None,
                      client: str, now: datetime | None = None) -> list[str]:
    """Store ``cleaned`` photos with their records; returns their ids."""
    now = now or utcnow()
    folder, ids = photo_dir(ctx), []
    for photo in cleaned:
        photo_id = f"{secrets.token_hex(16)}.{photo.extension}"
        await asyncio.to_thread(_write, folder, photo_id, photo.content)
        try:
            await photo_store.record(ctx.db, models.Photo(
                photo_id=photo_id, uploaded_by=uploaded_by, client_ip=client[:64], uploaded_at=now,
                size=len(photo.content), media_type=photo.media_type))
        except BaseException:
            (folder / photo_id).unlink(missing_ok=True)
            raise
        ids.append(photo_id)
    return ids


async def save_staff_photos(ctx: AppContext, request: Request, user: CurrentUser, uploads: list[UploadFile],
                            limit: int = MAX_TASK_PHOTOS) -> list[str]:
    """Check and store photos a logged-in user uploads (for ``complete``); returns their ids."""
    cleaned = await read_photos(uploads, limit)
    await expire_unattached(ctx)
    return await keep_photos(ctx, cleaned, uploaded_by=user.username, client=client_ip(request, ctx.settings))


async def save_anonymous_photos(ctx: AppContext, request: Request, uploads: list[UploadFile],
                                limit: int = MAX_REPORT_PHOTOS, now: datetime | None = None) -> list[str]:
    """Check and store photos uploaded without a login (a resident's report): at most
    ``photo_anonymous_per_hour`` per client address (429), and refused while the unattached ones
    already fill ``photo_unattached_max_bytes`` (503). Returns their ids, not yet attached."""
    if not uploads:
        return []
    now = now or utcnow()
    settings, client = ctx.settings, client_ip(request, ctx.settings)
    count, oldest = await photo_store.anonymous_uploads_since(ctx.db, client[:64], now - timedelta(hours=1))
    if len(uploads) <= limit and count + len(uploads) > settings.photo_anonymous_per_hour:
        for upload in uploads:
            await upload.close()
        wait = int((as_utc(oldest) + timedelta(hours=1) - now).total_seconds()) + 1 if oldest else 3600
        wait = max(60, wait)
        raise PhotoError(429, "photo.error.rate", headers={"Retry-After": str(wait)}, minutes=-(-wait // 60))
    cleaned = await read_photos(uploads, limit)  # too many at once: 400 here
    await expire_unattached(ctx, now)  # the expired do not count against the cap
    held = await photo_store.unattached_anonymous_bytes(ctx.db)
    if held + sum(len(p.content) for p in cleaned) > settings.photo_unattached_max_bytes:
        raise PhotoError(503, "photo.error.full", headers={"Retry-After": "3600"})
    return await keep_photos(ctx, cleaned, uploaded_by=None, client=client, now=now)


async def expire_unattached(ctx: AppContext, now: datetime | None = None) -> int:
    """Delete photos never attached to an event within ``photo_unattached_hours`` (records and
    files); returns how many. Called as uploads come in, so no scheduler is needed."""
    before = (now or utcnow()) - timedelta(hours=ctx.settings.photo_unattached_hours)
    removed = await photo_store.remove_unattached_before(ctx.db, before)
    folder = photo_dir(ctx)
    for photo_id in removed:
        if photo_store.is_photo_id(photo_id):
            (folder / photo_id).unlink(missing_ok=True)
    return len(removed)


# ------------------------------------------------------------------ fetching
async def viewable_photo(ctx: AppContext, photo_id: str, user: CurrentUser | None) -> tuple[models.Photo, Path]:
    """The one access decision for a photo: its record and file when the requester may see it.

    A staff user sees a photo attached to an event they may see (``visible_event``: 403 outside their
    scope), and an unattached photo they uploaded themselves; nobody else sees an unattached one (403).
    Unknown ids: 404. Without a login: 403 (a resident sees their own report's photos through the
    tracking key, at ``/track/<code>/photos/<id>?key=``: :meth:`PhotoController.reporter_photo`).
    """
    if user is None:
        raise refusal(PermissionDeniedException, "error.photo_login")
    photo = await photo_store.get(ctx.db, photo_id) if photo_store.is_photo_id(photo_id) else None
    path = photo_dir(ctx) / photo_id
    if photo is None or not path.is_file():
        raise refusal(NotFoundException, "error.photo_missing")
    if photo.event_id is not None and photo.event_id.startswith("inspection:"):
        # An inspection entry's evidence (web/assessment_pages.py): seen by those whose scope has its grid.
        from web.assessment_pages import inspection_photo_visible

        if not await inspection_photo_visible(ctx, user, photo.event_id):
            raise refusal(PermissionDeniedException, "error.photo_scope")
    elif photo.event_id is not None and photo.event_id.startswith("process:"):
        # A process task's photo (web/process_pages.py): seen by those who may see the instance.
        from web.process_pages import visible_instance

        try:
            await visible_instance(ctx, user, photo.event_id.removeprefix("process:"))
        except NotFoundException:
            raise refusal(PermissionDeniedException, "error.photo_scope") from None
    elif photo.event_id is not None:
        try:
            await visible_event(ctx, user, photo.event_id)
        except PermissionDeniedException:
            raise refusal(PermissionDeniedException, "error.photo_scope") from None
        except NotFoundException:
            raise refusal(NotFoundException, "error.photo_missing") from None
    elif photo.uploaded_by != user.username:
        raise refusal(PermissionDeniedException, "error.photo_other")
    return photo, path


@dataclass
class PhotoUpload:
    """Body of ``POST /api/photos``: ``multipart/form-data`` with the photo in the file part ``data``."""

    data: UploadFile | None = None


class PhotoController(Controller):
    """Uploading (staff, for ``complete``) and fetching stored photos."""

    @post("/api/photos", status_code=HTTP_201_CREATED, guards=[signed_in])
    async def upload(
        self, ctx: AppContext, user: CurrentUser, request: Request,
        data: Annotated[PhotoUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> dict[str, str]:
        """Store a photo (JPEG, PNG or WebP, up to 5 MB, checked and re-encoded without metadata);
        returns its id for ``complete``. Unattached photos expire."""
        upload = data.data
        if upload is None:  # the file under another name, as this endpoint has always taken
            upload = next((v for v in (await request.form()).values() if isinstance(v, UploadFile)), None)
        if upload is None:  # a malformed request from staff is a 400 (the guard answers strangers first)
            raise PhotoError(400, "photo.error.no_file")
        return {"photo_id": (await save_staff_photos(ctx, request, user, [upload], 1))[0]}

    @get("/photos/{photo_id:str}")
    async def photo(self, ctx: AppContext, request: Request, photo_id: str) -> File:
        """A stored photo, to a logged-in user who may see it (:func:`viewable_photo`)."""
        user = await resolve_user(ctx, request, api=False) or await resolve_user(ctx, request, api=True)
        photo, path = await viewable_photo(ctx, photo_id, user)
        return _file(photo, path)

    @get("/track/{code:str}/photos/{photo_id:str}")
    async def reporter_photo(self, ctx: AppContext, request: Request, code: str, photo_id: str,
                             key: str = "") -> File:
        """A photo the resident attached to their report, to the holder of its tracking key only
        (403 without it or with a wrong one; rate-limited like tracking)."""
        try:
            await hit(ctx.db, track_limit(ctx.settings), client_ip(request, ctx.settings))
        except Limited as exc:
            raise TooManyRequestsException(str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
        event = await queries.event_by_receipt(ctx.db, code)
        if event is None or not key_matches(key, event.tracking_key_hash):
            raise refusal(PermissionDeniedException, "error.photo_key")
        photo = await photo_store.get(ctx.db, photo_id) if photo_store.is_photo_id(photo_id) else None
        path = photo_dir(ctx) / photo_id
        # Only what the reporter sent (anonymous uploads of this event), never the staff's photos.
        if photo is None or photo.event_id != event.event_id or photo.uploaded_by is not None or not path.is_file():
            raise refusal(NotFoundException, "error.photo_missing_report")
        return _file(photo, path)


def _file(photo: models.Photo, path: Path) -> File:
    return File(path=path, media_type=photo.media_type or None, filename=photo.photo_id,
                content_disposition_type="inline")


PHOTO_CONTROLLERS = [PhotoController]
