"""The resident portal (photos on a report, open reports nearby) and the organisation admin pages."""

from __future__ import annotations

import io
import re

from PIL import Image

from store import queries
from tests.platform import Platform
from tests.test_security import _event_row, client, csrf, page_login

#: A 1×1 PNG (a valid one: photos are decoded, and the former fixture's image data was broken).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63fccfc0500f000485018084a98c210000000049454e44ae426082"
)


async def test_report_with_a_photo_shows_it_on_the_event_page(platform: Platform) -> None:
    async with client(platform) as resident:
        html = (await resident.get("/report")).text
        assert 'enctype="multipart/form-data"' in html and 'name="photos"' in html
        r = await resident.post("/report", data={
            "category": "SR-01", "description": "垃圾桶满了", "grid": "HS01-G1", "_csrf_token": csrf(html),
        }, files={"photos": ("bin.png", PNG, "image/png")})
        assert r.status_code == 200, r.text
        receipt = re.search(r'id="receipt">([0-9A-Z]{10})<', r.text).group(1)  # type: ignore[union-attr]
        assert 'id="photos-count"' in r.text
        r = await resident.post("/report", data={
            "category": "SR-01", "description": "坏照片", "grid": "HS01-G1", "_csrf_token": csrf(html),
        }, files={"photos": ("x.gif", b"GIF89a", "image/gif")})
        assert r.status_code == 400 and "照片须为 JPEG、PNG 或 WebP 格式" in r.text  # in the page's language
    event = await queries.event_by_receipt(platform.db, receipt)
    for _ in range(50):
        if event is not None:
            break
        event = await queries.event_by_receipt(platform.db, receipt)
    assert event is not None
    photos = await queries.report_photos(platform.db, event.event_id)
    assert len(photos) == 1 and photos[0].endswith(".png")
    async with client(platform) as worker:
        await page_login(worker, "wg_hs01_g1")
        page = (await worker.get(f"/events/{event.event_id}")).text
        assert f'src="/photos/{photos[0]}"' in page
        shown = await worker.get(f"/photos/{photos[0]}")
        # Re-encoded (no metadata), the same pixel.
        assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(shown.content)).getpixel((0, 0)) == Image.open(io.BytesIO(PNG)).getpixel((0, 0))


async def test_report_without_photos_still_works_url_encoded(platform: Platform) -> None:
    async with client(platform) as resident:
        html = (await resident.get("/report")).text
        r = await resident.post("/report", data={"category": "SR-01", "description": "无照片", "grid": "HS01-G1",
                                                 "_csrf_token": csrf(html)})
        assert r.status_code == 200 and 'id="receipt"' in r.text and 'id="photos-count"' not in r.text


async def test_nearby_open_reports_are_public_and_minimal(platform: Platform) -> None:
    created = await platform.report(description="小区门口垃圾堆积很久没人清理了，气味很大，请尽快处理，谢谢" * 2)
    await _event_row(platform, created["event_id"])
    r = await platform.http.get("/api/events/nearby", params={"category": "SR-01", "grid": "HS01-G1"})
    assert r.status_code == 200
    body = r.json()
    assert body["grid"] == "HS01-G1"
    found = [e for e in body["events"] if e["event_id"] == created["event_id"]]
    # Nothing that reads the report's timeline or acts on it: no receipt code, only "follow / me too".
    assert found and set(found[0]) == {"event_id", "state", "state_label", "description", "created", "followers"}
    assert created["receipt_code"] not in r.text and created["tracking_key"] not in r.text
    assert found[0]["description"].endswith("…") and "张三" not in r.text and "13800000000" not in r.text
    r = await platform.http.get("/api/events/nearby", params={"category": "SR-01", "grid": "HS01-G2"})
    assert r.json()["events"] == []
    r = await platform.http.get("/api/events/nearby", params={"category": "", "grid": "HS01-G1"})
    assert r.json()["events"] == []
    r = await platform.http.get("/api/events/nearby", params={"category": "SR-01", "grid": "NOPE"})
    assert r.status_code == 200 and r.json()["events"] == []


async def test_admin_sees_org_tree_users_and_cadres(platform: Platform) -> None:
    async with client(platform) as admin:
        assert (await page_login(admin, "admin", "admin12345")).status_code == 303
        org = (await admin.get("/admin/org")).text
        assert 'id="org-tree"' in org and "HS01-G1" in org and "D-ZF" in org and "CC-HS" in org
        assert "派驻街道" in org
        users = (await admin.get("/admin/users?unit=HS01-G1")).text
        assert "wg_hs01_g1" in users and "wg_hs01_g2" not in users
        cadres = (await admin.get("/admin/users?role=dispatched_cadre")).text
        assert "pz_zf_hs" in cadres and "wg_hs01_g1" not in cadres.split('id="cadres"')[0]
        rules = (await admin.get("/admin/rules")).text
        assert 'href="/admin/org"' in rules and 'href="/admin/users"' in rules


async def test_org_pages_are_admin_only(platform: Platform) -> None:
    async with client(platform) as worker:
        assert (await worker.get("/admin/org")).status_code in (302, 303, 307)  # not logged in: to /login
        await page_login(worker, "zx_hs")
        assert (await worker.get("/admin/org")).status_code == 403
        assert (await worker.get("/admin/users")).status_code == 403
