"""Who may act on a resident's report: only the reporter rates (with the tracking key shown once),
anyone may follow an open report ("me too") from the nearby list, receipt codes are random, and
public tracking is rate-limited per client address (issue 9, findings 1 and 2)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from store import models, queries
from store.receipts import key_hash, normalise_key
from tests.platform import Platform, running_platform
from tests.test_security import _event_row, client, csrf
from web.commands import event_id_for
from workflows.types import EventReport, Notice, receipt_code_for


class Recorder:
    """A delivery adapter that keeps what it sends (the notices as they leave the platform)."""

    channel = "test"

    def __init__(self) -> None:
        self.sent: list[Notice] = []

    async def send(self, notice: Notice) -> None:
        self.sent.append(notice)


@pytest.fixture
async def recorded(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[tuple[Platform, Recorder]]:
    """A platform whose notices are recorded."""
    recorder = Recorder()
    async with running_platform(dev_env.client, tmp_path, with_worker=False) as p:
        async with p.start_worker(recorder):
            yield p, recorder


async def _until(check, what: str):  # type: ignore[no-untyped-def]
    for _ in range(100):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _to_feedback(p: Platform, event_id: str) -> None:
    """Handle and verify the event through the API, so that it waits for the reporter's rating."""
    gw, sq = await p.login("wg_hs01_g1"), await p.login("sq_hs01")  # the grid handles, its community verifies
    for kind, body in (("handle", {"result": "已清理"}), ("verify", {"result": "已核实", "passed": True})):
        async def open_task(kind: str = kind) -> str | None:
            tasks = await queries.event_tasks(p.db, event_id)
            return next((t.task_id for t in tasks if t.kind == kind and t.status == "open"), None)
        task_id = await _until(open_task, f"the {kind} task")
        who = gw if kind == "handle" else sq
        assert (await p.http.post(f"/api/tasks/{task_id}/claim", headers=who)).status_code == 200
        assert (await p.http.post(f"/api/tasks/{task_id}/complete", headers=who, json=body)).status_code == 200


async def test_only_the_reporter_rates_with_the_key_shown_once_and_kept_hashed(
    recorded: tuple[Platform, Recorder], dev_env: WorkflowEnvironment
) -> None:
    p, recorder = recorded
    created = await p.report()
    key, receipt = created["tracking_key"], created["receipt_code"]
    assert len(normalise_key(key)) * 5 >= 64  # at least 64 random bits
    event = await _event_row(p, created["event_id"])
    assert event.tracking_key_hash == hashlib.sha256(normalise_key(key).encode()).hexdigest()
    await _to_feedback(p, created["event_id"])

    url = f"/api/track/{receipt}/rating"
    for body in ({"rating": "satisfied"}, {"rating": "satisfied", "tracking_key": "WRONGKEY00000000"},
                 {"rating": "satisfied", "tracking_key": receipt}):
        r = await p.http.post(url, json=body)
        assert r.status_code == 403 and "tracking key" in r.json()["detail"], r.text
    assert (await queries.get_event(p.db, created["event_id"])).state == "feedback"  # type: ignore[union-attr]
    r = await p.http.post(url, json={"rating": "satisfied", "tracking_key": key})
    assert r.status_code == 200 and r.json()["state"] == "closed"

    # The reporter's notices carry the tracking link with the key; the outbox rows and the workflow's
    # history do not hold the key anywhere (only its hash and the nonce it is derived from).
    async def rate_request() -> Notice | None:
        return next((n for n in recorder.sent if n.kind == "rate_request"), None)
    sent = await _until(rate_request, "the rating request to be delivered")
    assert f"/track/{receipt}?key={normalise_key(key)}" in sent.body
    dispatched = next(n for n in recorder.sent if n.kind == "dispatched")
    assert normalise_key(key) in dispatched.body
    assert all(normalise_key(key) not in n.body for n in recorder.sent if n.kind in ("completed", "closed"))
    async with p.db.session() as session:
        bodies = (await session.exec(select(models.Notice.body))).all()
    assert bodies and all(normalise_key(key) not in b for b in bodies)
    history = await dev_env.client.get_workflow_handle(created["event_id"]).fetch_history()
    assert normalise_key(key) not in history.to_json() and key not in history.to_json()


async def test_the_tracking_page_asks_for_the_key_or_takes_it_from_the_link(platform: Platform) -> None:
    created = await platform.report()
    receipt, key = created["receipt_code"], created["tracking_key"]
    await _event_row(platform, created["event_id"])
    await _to_feedback(platform, created["event_id"])
    async with client(platform) as resident:
        page = (await resident.get(f"/track/{receipt}")).text  # reading needs only the receipt code
        assert "请对处理结果进行评价" in page and 'id="tracking_key"' in page
        page = (await resident.get(f"/track/{receipt}?key=WRONG")).text  # a wrong key in a link is asked again
        assert 'id="tracking_key"' in page and "评价码不正确" in page
        page = (await resident.get(f"/track/{receipt}?key={normalise_key(key)}")).text
        assert 'type="hidden" name="tracking_key"' in page and 'id="tracking_key"' not in page
        r = await resident.post(f"/track/{receipt}/rating", data={
            "_csrf_token": csrf(page), "rating": "satisfied", "tracking_key": "ABCD-ABCD-ABCD-ABCD"})
        assert r.status_code == 403 and "评价码不正确" in r.text
        r = await resident.post(f"/track/{receipt}/rating", data={
            "_csrf_token": csrf(page), "rating": "satisfied", "tracking_key": normalise_key(key)})
        assert r.status_code == 303 and "msg=msg.rated" in r.headers["location"]


async def test_nearby_offers_follow_me_too_which_counts_and_notifies_but_gives_nothing_to_act_on(
    recorded: tuple[Platform, Recorder],
) -> None:
    p, recorder = recorded
    created = await p.report(description="路灯不亮", category="SR-01")
    await _event_row(p, created["event_id"])
    listed = (await p.http.get("/api/events/nearby", params={"category": "SR-01", "grid": "HS01-G1"})).json()
    entry = next(e for e in listed["events"] if e["event_id"] == created["event_id"])
    assert entry["followers"] == 0 and "receipt_code" not in entry
    follow = f"/api/events/{created['event_id']}/follow"
    async with client(p, "10.9.0.1") as a, client(p, "10.9.0.2") as b:
        r = await a.post(follow, json={"phone": "13911112222"})
        assert r.status_code == 200 and r.json() == {"event_id": created["event_id"], "followers": 1,
                                                      "notified": True}
        assert created["receipt_code"] not in r.text and created["tracking_key"] not in r.text
        assert (await b.post(follow, json={"phone": "13911112222"})).json()["followers"] == 1  # the same person
        assert (await a.post(follow, json={})).json()["followers"] == 2  # me too, without a phone: per address
        assert (await a.post(follow, json={})).json()["followers"] == 2
        assert (await a.post(follow, json={"phone": "<script>"})).status_code == 400
        assert (await a.post("/api/events/EV-nope/follow", json={})).status_code == 404
    async def counted() -> bool:
        row = await queries.get_event(p.db, created["event_id"])
        return row is not None and row.follower_count == 2
    await _until(counted, "the follower count in the store")
    listed = (await p.http.get("/api/events/nearby", params={"category": "SR-01", "grid": "HS01-G1"})).json()
    assert next(e for e in listed["events"] if e["event_id"] == created["event_id"])["followers"] == 2

    # The follower is told of the progress, but never asked to rate and never given the key or the code.
    await _to_feedback(p, created["event_id"])
    async def told() -> Notice | None:
        return next((n for n in recorder.sent if n.recipient == "13911112222" and n.kind == "completed"), None)
    notice = await _until(told, "the follower's notice")
    assert created["receipt_code"] not in notice.body and normalise_key(created["tracking_key"]) not in notice.body
    await asyncio.sleep(0.5)
    assert not [n for n in recorder.sent if n.recipient == "13911112222" and n.kind == "rate_request"]
    r = await p.http.post(f"/api/track/{created['receipt_code']}/rating",
                          json={"rating": "satisfied", "tracking_key": created["tracking_key"]})
    assert r.status_code == 200
    async def closed() -> bool:
        row = await queries.get_event(p.db, created["event_id"])
        return row is not None and row.state == "closed"
    await _until(closed, "the event closed")
    assert (await p.http.post(follow, json={"phone": "13933334444"})).status_code == 404  # closed: no more


async def test_follows_are_rate_limited_per_address(platform: Platform) -> None:
    platform.settings.follows_per_hour = 2
    created = await platform.report()
    await _event_row(platform, created["event_id"])
    follow = f"/api/events/{created['event_id']}/follow"
    async with client(platform, "10.9.1.1") as a, client(platform, "10.9.1.2") as b:
        assert (await a.post(follow, json={"phone": "13900000001"})).status_code == 200
        assert (await a.post(follow, json={"phone": "13900000002"})).status_code == 200
        r = await a.post(follow, json={"phone": "13900000003"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert (await b.post(follow, json={"phone": "13900000003"})).status_code == 200


async def test_receipt_codes_are_random_and_stored_not_derived_from_public_ids(platform: Platform) -> None:
    first = await platform.report(source="hotline", external_id="12345-2026-7777")
    event_id = event_id_for(EventReport(source="hotline", external_id="12345-2026-7777"))
    assert first["event_id"] == event_id
    # What could be computed offline before: a hash of source and external id.
    assert first["receipt_code"] != receipt_code_for(event_id)
    again = await platform.http.post("/api/events", json={"description": "again", "source": "hotline",
                                                          "external_id": "12345-2026-7777"})
    assert again.json() == {"event_id": event_id, "duplicate": True}  # idempotent, and it tells nothing
    row = await _event_row(platform, event_id)
    assert row.receipt_code == first["receipt_code"]
    others = {(await platform.report(source="hotline", external_id=f"12345-2026-{n}"))["receipt_code"]
              for n in range(3)}
    assert len(others) == 3 and first["receipt_code"] not in others


async def test_tracking_is_rate_limited_per_client_address(platform: Platform) -> None:
    platform.settings.track_requests_per_window = 3
    created = await platform.report()
    await _event_row(platform, created["event_id"])
    receipt = created["receipt_code"]
    async with client(platform, "10.9.2.1") as a, client(platform, "10.9.2.2") as b:
        for path in (f"/api/track/{receipt}", "/api/track/0000000000", f"/track/{receipt}"):
            assert (await a.get(path)).status_code in (200, 404)
        r = await a.get(f"/api/track/{receipt}")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "too many" in r.json()["detail"]
        r = await a.get(f"/track/{receipt}")
        assert r.status_code == 429 and "查询过于频繁" in r.text and r.headers["retry-after"]
        r = await a.post(f"/api/track/{receipt}/rating", json={"rating": "satisfied", "tracking_key": "X"})
        assert r.status_code == 429
        assert (await b.get(f"/api/track/{receipt}")).status_code == 200  # another address is not affected
    row = await queries.get_event(platform.db, created["event_id"])
    assert row is not None and row.tracking_key_hash == key_hash(created["tracking_key"])


async def test_a_resident_sees_their_report_photos_only_with_the_tracking_key(platform: Platform) -> None:
    from tests.authz_matrix import PNG

    async with client(platform) as resident:
        html = (await resident.get("/report")).text
        r = await resident.post("/report", data={"category": "SR-01", "description": "门口垃圾", "grid": "HS01-G1",
                                                 "_csrf_token": csrf(html)},
                                files={"photos": ("bin.png", PNG, "image/png")})
        assert r.status_code == 200
        receipt = r.text.split('id="receipt">')[1][:10]
        key = r.text.split('id="tracking-key">')[1][:19]

        async def photos() -> list[str]:
            event = await queries.event_by_receipt(platform.db, receipt)
            return await queries.report_photos(platform.db, event.event_id) if event else []
        photo = (await _until(photos, "the report's photo"))[0]
        url = f"/track/{receipt}/photos/{photo}"
        assert (await resident.get(url)).status_code == 403  # the receipt code alone shows no photo
        assert (await resident.get(url, params={"key": "ABCD-ABCD-ABCD-ABCD"})).status_code == 403
        shown = await resident.get(url, params={"key": key})
        assert shown.status_code == 200 and shown.headers["content-type"].startswith("image/")
        assert (await resident.get(f"/photos/{photo}")).status_code == 403  # the staff path needs a login
        page = (await resident.get(f"/track/{receipt}", params={"key": normalise_key(key)})).text
        assert f'src="/track/{receipt}/photos/{photo}?key={normalise_key(key)}"' in page
        assert "/photos/" not in (await resident.get(f"/track/{receipt}")).text  # no key: no photos listed


async def test_a_receipt_code_proposed_through_the_temporal_client_is_checked(platform: Platform) -> None:
    """A Temporal client may propose any receipt code: one that another event has would break the
    store's unique index and stop the new event's projection for good; it gets a fresh code instead."""
    first = await platform.report()
    report = {"category": "SR-01", "description": "热线:门口垃圾", "location": {"grid": "HS01-G1"},
              "source": "hotline", "receipt_code": first["receipt_code"]}
    event_id = f"EV-RC-{uuid.uuid4().hex[:8]}"
    await platform.client.start_workflow("EventLifecycle", report, id=event_id, task_queue=platform.task_queue)
    row = await _event_row(platform, event_id)
    assert row.receipt_code != first["receipt_code"] and row.tracking_key_hash  # a fresh code and key
    assert (await _event_row(platform, first["event_id"])).receipt_code == first["receipt_code"]


async def test_one_phone_follows_only_so_many_reports_a_day_and_follows_are_counted_not_listed(
    platform: Platform,
) -> None:
    """The phone of a follow is not verified: one number gets the notices of at most a few reports a day
    (nobody floods a stranger's phone through the platform); the public timeline lists no follows."""
    platform.settings.follows_per_phone_per_day = 2
    events = [await platform.report(description=f"门口垃圾 {n}") for n in range(3)]
    for created in events:
        await _event_row(platform, created["event_id"])
    async with client(platform, "10.9.3.1") as a, client(platform, "10.9.3.2") as b:
        for created in events[:2]:
            assert (await a.post(f"/api/events/{created['event_id']}/follow", json={"phone": "13955556666"})
                    ).status_code == 200
        r = await b.post(f"/api/events/{events[2]['event_id']}/follow", json={"phone": "13955556666"})
        assert r.status_code == 429 and r.headers["retry-after"]  # from another address too
        assert (await b.post(f"/api/events/{events[2]['event_id']}/follow", json={})).status_code == 200

    async def followed() -> bool:
        row = await queries.get_event(platform.db, events[0]["event_id"])
        return row is not None and row.follower_count == 1
    await _until(followed, "the follow in the store")
    track = (await platform.http.get(f"/api/track/{events[0]['receipt_code']}")).json()
    assert track["followers"] == 1 and "follow" not in [e["action"] for e in track["timeline"]]


def test_the_logging_stand_in_masks_the_key_and_a_key_that_no_longer_derives_sends_no_link() -> None:
    from activities.delivery import mask_keys
    from activities.lifecycle import LifecycleActivities
    from store.receipts import tracking_key

    link = "[ABCDEFGHJK] 请评价 http://x/track/ABCDEFGHJK?key=SECRETKEY0000000"
    assert mask_keys(link) == "[ABCDEFGHJK] 请评价 http://x/track/ABCDEFGHJK?key=…"
    notice = Notice(notice_id="EV-1.N1", kind="rate_request", recipient="139", body="[ABCDEFGHJK] 请评价",
                    created_at="", tracking_nonce="n1", receipt_code="ABCDEFGHJK",
                    tracking_key_hash=key_hash(tracking_key("old-secret", "n1")))
    acts = LifecycleActivities(None, secret="old-secret", public_url="http://x")  # type: ignore[arg-type]
    assert f"?key={tracking_key('old-secret', 'n1')}" in acts.outgoing(notice).body
    rotated = LifecycleActivities(None, secret="new-secret", public_url="http://x")  # type: ignore[arg-type]
    assert rotated.outgoing(notice).body == notice.body  # no wrong key in a link
