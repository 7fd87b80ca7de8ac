"""Photos (issue 9, finding 6 and the first bullet of finding 3): the bytes are checked and re-encoded
without EXIF, each photo is recorded, a photo is served within its event's scope, ``complete`` takes
only the user's own uploads, anonymous uploads are limited, capped and expire; ``POST /api/photos``
never ends in a 500."""

from __future__ import annotations

import asyncio
import io
import re
import struct
import uuid
import zlib
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image, PngImagePlugin

from store import models, queries
from store.db import Database
from store.timeutil import utcnow
from tests.platform import Platform
from tests.test_e2e_api import _task_of
from tests.test_security import _event_row, client, csrf, page_login

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg_with_gps(width: int = 40, height: int = 20) -> bytes:
    """A real camera-like JPEG: EXIF with the GPS position of the place, the maker, and
    orientation 6 (the camera was turned: shown rotated by 90°)."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (31.0, 13.0, 30.0), 3: "E", 4: (121.0, 28.0, 10.0)})
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "JPEG", exif=exif)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)[2] == (31.0, 13.0, 30.0)  # it does carry GPS
    return data


def png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "home: 31.2304,121.4737")
    out = io.BytesIO()
    Image.new("RGBA", (30, 30), (0, 128, 0, 100)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


#: A PNG of a few bytes whose header claims 100 000 × 100 000 pixels (a decompression bomb).
HEADER_BOMB = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
               + _chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _chunk(b"IEND", b""))
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def bilevel_png(width: int, height: int) -> bytes:
    """A real, tiny PNG with many pixels (one bit each, all white: compresses to a few KB)."""
    out = io.BytesIO()
    Image.new("1", (width, height), 1).save(out, "PNG")
    return out.getvalue()


def assert_clean(content: bytes) -> Image.Image:
    """``content`` is a decodable image without any EXIF or text metadata."""
    image = Image.open(io.BytesIO(content))
    image.load()
    assert dict(image.getexif()) == {} and b"Exif" not in content and b"PhoneMaker" not in content
    assert "exif" not in image.info and "comment" not in image.info and "Comment" not in image.info
    return image


# ------------------------------------------------------------------ the bytes (unit)
def test_a_jpeg_is_stored_upright_without_exif_or_gps() -> None:
    from web.photos import clean_photo

    cleaned = clean_photo(jpeg_with_gps(40, 20))
    image = assert_clean(cleaned.content)
    assert image.format == "JPEG" and cleaned.media_type == "image/jpeg" and cleaned.extension == "jpg"
    assert image.size == (20, 40)  # the orientation was applied before the EXIF was dropped
    png = clean_photo(png_with_text())
    image = assert_clean(png.content)
    assert image.format == "PNG" and image.mode == "RGBA" and b"31.2304" not in png.content


@pytest.mark.parametrize(("name", "content", "key"), [
    ("html sent as a jpeg", HTML, "photo.error.type"),
    ("empty", b"", "photo.error.empty"),
    ("a GIF", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "photo.error.type"),
    ("truncated jpeg", jpeg_with_gps(400, 300)[:1500], "photo.error.damaged"),
    ("truncated png", png_with_text()[:-20], "photo.error.damaged"),
    ("a header bomb", HEADER_BOMB, "photo.error.pixels"),
    ("56 megapixels in 7 KB", bilevel_png(8000, 7000), "photo.error.pixels"),
])
def test_files_that_are_no_photo_are_refused_with_a_reason(name: str, content: bytes, key: str) -> None:
    from web.photos import PhotoError, clean_photo

    with pytest.raises(PhotoError) as refused:
        clean_photo(content)
    assert refused.value.status == 400 and refused.value.key == key, name
    assert refused.value.message("zh-CN") != key and refused.value.reason != key  # a message, not a key


# ------------------------------------------------------------------ records and expiry (store)
async def test_unattached_photos_expire_with_their_files_and_are_counted(any_db: Database, tmp_path: Path) -> None:
    from store import photos as photo_store
    from web.context import AppContext
    from web.photos import expire_unattached, photo_dir
    from wulian.settings import Settings

    ctx = AppContext(settings=Settings(data_dir=tmp_path, secret_key="s" * 40, photo_unattached_hours=24), db=any_db)
    now = utcnow()
    folder = photo_dir(ctx)
    folder.mkdir(parents=True)

    async def upload(age_hours: float, *, by: str | None = None, ip: str = "10.0.0.1", size: int = 100) -> str:
        photo_id = f"{uuid.uuid4().hex}.jpg"
        (folder / photo_id).write_bytes(b"x" * size)
        await photo_store.record(any_db, models.Photo(
            photo_id=photo_id, uploaded_by=by, client_ip=ip, uploaded_at=now - timedelta(hours=age_hours),
            size=size, media_type="image/jpeg"))
        return photo_id

    old, old_attached, fresh = await upload(30), await upload(30), await upload(0.5, size=250)
    old_staff, recent_other_ip = await upload(25, by="wg_hs01_g1"), await upload(0.2, ip="10.0.0.2")
    await photo_store.attach(any_db, [old_attached], "EV-1", "EV-1.T1")
    # Anonymous uploads per address in the last hour, and the bytes held by unattached anonymous ones.
    count, oldest = await photo_store.anonymous_uploads_since(any_db, "10.0.0.1", now - timedelta(hours=1))
    assert count == 1 and oldest is not None
    assert await photo_store.unattached_anonymous_bytes(any_db) == 100 + 250 + 100  # old, fresh, other ip

    assert await expire_unattached(ctx, now) == 2  # the old anonymous and the old staff upload
    for gone in (old, old_staff):
        assert await photo_store.get(any_db, gone) is None and not (folder / gone).exists()
    for kept in (old_attached, fresh, recent_other_ip):
        assert await photo_store.get(any_db, kept) is not None and (folder / kept).exists()
    attached = await photo_store.get(any_db, old_attached)
    assert attached is not None and (attached.event_id, attached.task_id) == ("EV-1", "EV-1.T1")
    assert await photo_store.unattached_anonymous_bytes(any_db) == 250 + 100


# ------------------------------------------------------------------ the API (end to end)
def _files(content: bytes, name: str = "site.jpg", media_type: str = "image/jpeg") -> dict[str, tuple[str, bytes, str]]:
    return {"data": (name, content, media_type)}


async def _record(platform: Platform, photo_id: str) -> models.Photo:
    async with platform.db.session() as session:
        row = await session.get(models.Photo, photo_id)
    assert row is not None, photo_id
    return row


async def test_api_upload_checks_the_bytes_strips_gps_and_never_ends_in_a_500(platform: Platform) -> None:
    http = platform.http
    # Finding 3: multipart without a file part was a 500, with or without a token. Without one it is
    # now refused before its body is read (the route's guard, web/access.py); with one, a 400 below.
    r = await http.post("/api/photos", files={"x": (None, "1")})
    assert r.status_code == 401, r.text
    r = await http.post("/api/photos", files=_files(png_with_text(), "a.png", "image/png"))
    assert r.status_code == 401, r.text  # a real upload needs a token
    gw = await platform.login("wg_hs01_g1")
    r = await http.post("/api/photos", headers=gw, files={"x": (None, "1")})
    assert r.status_code == 400 and "no file part" in r.json()["detail"], r.text
    for body, media_type in ((b"hello", "text/plain"), (b'{"data": 1}', "application/json")):
        r = await http.post("/api/photos", headers={**gw, "content-type": media_type}, content=body)
        assert r.status_code == 400 and r.json()["detail"], r.text
    # Declared types mean nothing: the bytes decide.
    for content, reason in ((HTML, "JPEG, PNG or WebP"), (b"", "empty"),
                            (jpeg_with_gps(400, 300)[:1500], "damaged or truncated")):
        r = await http.post("/api/photos", headers=gw, files=_files(content))
        assert r.status_code == 400 and reason in r.json()["detail"], r.text
    # An upload also removes photos left unattached past photo_unattached_hours (no cron).
    stale = f"{uuid.uuid4().hex}.jpg"
    (platform.settings.data_dir / "photos").mkdir(exist_ok=True)
    (platform.settings.data_dir / "photos" / stale).write_bytes(b"old")
    async with platform.db.session() as session:
        session.add(models.Photo(photo_id=stale, uploaded_by="wg_hs01_g2", client_ip="127.0.0.1", size=3,
                                 uploaded_at=utcnow() - timedelta(hours=platform.settings.photo_unattached_hours + 1)))
        await session.commit()
    r = await http.post("/api/photos", headers=gw, files=_files(jpeg_with_gps(), "x.txt", "text/plain"))
    assert r.status_code == 201, r.text
    assert not (platform.settings.data_dir / "photos" / stale).exists()
    photo_id = r.json()["photo_id"]
    assert re.fullmatch(r"[0-9a-f]{32}\.jpg", photo_id)
    stored = (platform.settings.data_dir / "photos" / photo_id).read_bytes()
    assert assert_clean(stored).size == (20, 40)
    row = await _record(platform, photo_id)
    assert (row.uploaded_by, row.size, row.media_type, row.event_id) == ("wg_hs01_g1", len(stored), "image/jpeg", None)
    assert row.client_ip == "127.0.0.1" and row.uploaded_at is not None
    served = await http.get(f"/photos/{photo_id}", headers=gw)
    assert served.status_code == 200 and served.content == stored and served.headers["content-type"] == "image/jpeg"


async def test_photos_are_served_within_the_event_scope_and_complete_takes_only_own_uploads(
        platform: Platform) -> None:
    http = platform.http
    created = await platform.report()
    event_id = created["event_id"]
    g1, g2, community, other_street = [await platform.login(u) for u in
                                       ("wg_hs01_g1", "wg_hs01_g2", "sq_hs01", "wg_st01_g1")]

    async def upload(headers: dict[str, str]) -> str:
        r = await http.post("/api/photos", headers=headers, files=_files(jpeg_with_gps()))
        assert r.status_code == 201, r.text
        return str(r.json()["photo_id"])

    mine, theirs = await upload(g1), await upload(g2)
    # Unattached: only the uploader sees it.
    assert (await http.get(f"/photos/{mine}", headers=g1)).status_code == 200
    assert (await http.get(f"/photos/{mine}", headers=g2)).status_code == 403
    assert (await http.get(f"/photos/{mine}")).status_code == 403  # no login
    assert (await http.get(f"/photos/{'0' * 32}.jpg", headers=g1)).status_code == 404
    assert (await http.get("/photos/..%2F..%2Fplatform.db", headers=g1)).status_code == 404

    task = await _task_of(platform, g1, event_id, "handle")
    assert (await http.post(f"/api/tasks/{task['task_id']}/claim", headers=g1)).status_code == 200
    complete = f"/api/tasks/{task['task_id']}/complete"
    r = await http.post(complete, headers=g1, json={"result": "已清理", "photos": ["../../../etc/passwd"]})
    assert r.status_code == 400 and "not a photo id" in r.json()["detail"], r.text
    r = await http.post(complete, headers=g1, json={"result": "已清理", "photos": [f"{'a' * 32}.jpg"]})
    assert r.status_code == 400 and "neither one of your uploads" in r.json()["detail"], r.text
    r = await http.post(complete, headers=g1, json={"result": "已清理", "photos": [mine, theirs]})
    assert r.status_code == 400 and theirs in r.json()["detail"], r.text
    assert (await queries.get_task(platform.db, task["task_id"])).status == "claimed"  # type: ignore[union-attr]
    r = await http.post(complete, headers=g1, json={"result": "已清理", "photos": [mine]})
    assert r.status_code == 200, r.text
    row = await _record(platform, mine)
    assert (row.event_id, row.task_id) == (event_id, task["task_id"]) and row.attached_at is not None

    # Attached: whoever may see the event sees it, nobody else (the uploader of another grid neither).
    assert (await http.get(f"/photos/{mine}", headers=g1)).status_code == 200
    assert (await http.get(f"/photos/{mine}", headers=community)).status_code == 200
    for outsider in (g2, other_street):
        r = await http.get(f"/photos/{mine}", headers=outsider)
        assert r.status_code == 403 and "该照片所属事件不在本单位的管辖范围内" in r.text  # (the page's language)
    # A photo already of this event may be given again (here on the verification, by the community).
    verify = await _task_of(platform, community, event_id, "verify")
    assert (await http.post(f"/api/tasks/{verify['task_id']}/claim", headers=community)).status_code == 200
    r = await http.post(f"/api/tasks/{verify['task_id']}/complete", headers=community,
                        json={"result": "核查通过", "passed": True, "photos": [mine]})
    assert r.status_code == 200, r.text
    assert (await _record(platform, mine)).task_id == task["task_id"]  # keeps its first attachment
    async with client(platform) as page:  # the page session (cookie) follows the same rule
        await page_login(page, "wg_hs01_g2")
        assert (await page.get(f"/photos/{mine}")).status_code == 403
        assert (await page.get(f"/photos/{theirs}")).status_code == 200


async def _report(http: httpx.AsyncClient, photos: list[bytes], description: str = "垃圾桶满了") -> httpx.Response:
    html = (await http.get("/report")).text
    return await http.post("/report", data={"category": "SR-01", "description": description, "grid": "HS01-G1",
                                            "_csrf_token": csrf(html)},
                           files=[("photos", (f"p{i}.jpg", content, "image/jpeg")) for i, content in enumerate(photos)])


async def test_report_page_limits_anonymous_uploads_per_address_and_caps_unattached_ones(
        platform: Platform) -> None:
    from store import photos as photo_store

    platform.settings.photo_anonymous_per_hour = 4
    photo = jpeg_with_gps()
    async with client(platform, "10.9.0.1") as resident, client(platform, "10.9.0.2") as neighbour:
        r = await _report(resident, [HTML])
        assert r.status_code == 400 and "照片须为 JPEG、PNG 或 WebP 格式" in r.text  # in the page's language
        r = await _report(resident, [photo] * 3)
        assert r.status_code == 200 and 'id="photos-count"' in r.text, r.text
        receipt = re.search(r'id="receipt">([0-9A-Z]{10})<', r.text).group(1)  # type: ignore[union-attr]
        r = await _report(resident, [photo] * 2)  # 5 > 4 within the hour from this address
        assert r.status_code == 429 and "一小时内上传的照片过多" in r.text and int(r.headers["retry-after"]) > 60
        resident.cookies.set("lang", "en")
        r = await _report(resident, [photo])
        assert r.status_code == 200, r.text  # 4: still allowed
        r = await _report(resident, [photo])
        assert r.status_code == 429 and "too many photos were uploaded from your network" in r.text
        assert (await _report(resident, [])).status_code == 200  # the report itself goes through without photos
        assert (await _report(neighbour, [photo])).status_code == 200  # another address has its own count

        # The cap on unattached anonymous photos (e.g. reports that could not be started).
        await photo_store.record(platform.db, models.Photo(
            photo_id=f"{uuid.uuid4().hex}.jpg", uploaded_by=None, client_ip="10.9.9.9", uploaded_at=utcnow(),
            size=platform.settings.photo_unattached_max_bytes - 100, media_type="image/jpeg"))
        r = await _report(neighbour, [photo])
        assert r.status_code == 503 and "照片上传暂时已满" in r.text, r.text

    # The report's photos are recorded as anonymous uploads from the address, attached to the event.
    event = await queries.event_by_receipt(platform.db, receipt)
    for _ in range(50):
        if event is not None:
            break
        await asyncio.sleep(0.1)
        event = await queries.event_by_receipt(platform.db, receipt)
    assert event is not None
    ids = await queries.report_photos(platform.db, event.event_id)
    assert len(ids) == 3
    for photo_id in ids:
        row = await _record(platform, photo_id)
        assert (row.uploaded_by, row.client_ip, row.event_id, row.task_id) == (None, "10.9.0.1", event.event_id, None)
        assert_clean((platform.settings.data_dir / "photos" / photo_id).read_bytes())
    await _event_row(platform, event.event_id)
