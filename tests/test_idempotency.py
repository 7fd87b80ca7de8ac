"""One report per one-time key (issue 10, item 3): three quick clicks on the report form made three
events. The form's hidden key and the API's ``Idempotency-Key`` header now give one event and the
same answer (web/idempotency.py, store/idempotency.py)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select, update
from temporalio.service import RPCError

from store import idempotency as stored_keys
from store import models
from store.receipts import key_matches
from store.timeutil import utcnow
from tests.platform import Platform
from tests.test_security import client, csrf
from web import commands, idempotency
from web.idempotency import form_key_problem, issue_form_key


def form_key(html: str) -> str:
    match = re.search(r'name="report_key" value="([^"]+)"', html)
    assert match, "no one-time key in the report form"
    return match.group(1)


def receipt_of(html: str) -> tuple[str, str]:
    receipt = re.search(r'id="receipt">([0-9A-Z]{10})<', html)
    key = re.search(r'id="tracking-key">([0-9A-Z-]{19})<', html)
    assert receipt and key, html[-1500:]
    return receipt.group(1), key.group(1)


async def events_described(platform: Platform, description: str) -> list[models.Event]:
    async with platform.db.session() as session:
        return list((await session.exec(select(models.Event).where(models.Event.description == description))).all())


async def settled_events(platform: Platform, description: str, at_least: int = 1) -> list[models.Event]:
    """The events with ``description`` once the store has at least ``at_least`` (and a moment for more)."""
    for _ in range(100):
        found = await events_described(platform, description)
        if len(found) >= at_least:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # a duplicate would be projected by now
    return await events_described(platform, description)


def report_fields(html: str, description: str, **extra: str) -> dict[str, str]:
    return {"category": "SR-01", "description": description, "grid": "HS01-G1", "_csrf_token": csrf(html),
            "report_key": form_key(html), **extra}


# ------------------------------------------------------------------ the report form
async def test_three_quick_submissions_of_the_form_make_one_event_and_one_receipt(platform: Platform) -> None:
    description = f"门口垃圾三连击 {uuid.uuid4().hex[:6]}"
    async with client(platform) as resident:
        html = (await resident.get("/report")).text
        fields = report_fields(html, description, phone="13800000000")
        answers = await asyncio.gather(*(resident.post("/report", data=fields) for _ in range(3)))
    assert [r.status_code for r in answers] == [200, 200, 200], [r.text[-500:] for r in answers]
    receipts = {receipt_of(r.text) for r in answers}
    assert len(receipts) == 1  # the same receipt page, with the same tracking key, three times
    events = await settled_events(platform, description)
    assert len(events) == 1
    (receipt, key), = receipts
    assert events[0].receipt_code == receipt and key_matches(key, events[0].tracking_key_hash)
    assert events[0].tier == "grid"  # not tiered up by its own copies


async def test_the_same_form_sent_again_later_gives_the_same_receipt_page(platform: Platform) -> None:
    description = f"路灯不亮 {uuid.uuid4().hex[:6]}"
    async with client(platform) as resident:
        html = (await resident.get("/report")).text
        first = await resident.post("/report", data=report_fields(html, description))
        again = await resident.post("/report", data=report_fields(html, description))
    assert first.status_code == again.status_code == 200
    assert receipt_of(first.text) == receipt_of(again.text)
    assert len(await settled_events(platform, description)) == 1


async def test_the_same_form_with_other_content_says_it_was_sent_and_offers_a_fresh_key(platform: Platform) -> None:
    description = f"井盖丢了 {uuid.uuid4().hex[:6]}"
    async with client(platform) as resident:
        html = (await resident.get("/report")).text
        receipt, _ = receipt_of((await resident.post("/report", data=report_fields(html, description))).text)
        edited = await resident.post("/report", data=report_fields(html, description + " 很危险"))
        assert edited.status_code == 409
        assert f"此表单已提交过（回执码 {receipt}）" in edited.text
        assert form_key(edited.text) != form_key(html) and description + " 很危险" in edited.text
        second = await resident.post("/report", data=report_fields(edited.text, description + " 很危险"))
        assert second.status_code == 200 and receipt_of(second.text)[0] != receipt
    assert len(await settled_events(platform, description)) == 1
    assert len(await settled_events(platform, description + " 很危险")) == 1


@pytest.mark.parametrize(("key", "shown"), [
    ("1.2.3", "此表单已失效"),
    ("not-a-key", "此表单已失效"),
    ("{expired}", "此表单打开已超过 24 小时"),
])
async def test_a_made_up_or_expired_form_key_is_refused_before_anything_is_made(
    platform: Platform, key: str, shown: str
) -> None:
    if key == "{expired}":
        key = issue_form_key(platform.settings.secret(), utcnow() - timedelta(hours=25))
    description = f"伪造的表单 {uuid.uuid4().hex[:6]}"
    async with client(platform) as resident:
        html = (await resident.get("/report")).text
        r = await resident.post("/report", data={**report_fields(html, description), "report_key": key})
    assert r.status_code == 400 and shown in r.text and description in r.text
    assert form_key(r.text) != key  # a fresh key to submit the kept text with
    assert await events_described(platform, description) == []


def test_form_keys_are_signed_and_expire() -> None:
    key = issue_form_key("s")
    assert form_key_problem("s", key) is None
    assert form_key_problem("other secret", key) == "invalid"
    stamp, nonce, signature = key.split(".")
    assert form_key_problem("s", f"{int(stamp) - 1}.{nonce}.{signature}") == "invalid"
    assert form_key_problem("s", issue_form_key("s", utcnow() - timedelta(hours=23))) is None
    assert form_key_problem("s", issue_form_key("s", utcnow() - timedelta(hours=25))) == "expired"
    # A forged key with non-ASCII text is refused, not a 500 (compare_digest raises on such text).
    assert form_key_problem("s", f"{stamp}.{nonce}.é") == "invalid"
    assert form_key_problem("s", "１２.a.b") == "invalid"  # full-width digits pass isdigit()


# ------------------------------------------------------------------ the API's Idempotency-Key
def _body(description: str) -> dict[str, Any]:
    return {"category": "SR-01", "description": description, "location": {"grid": "HS01-G1"},
            "reporter": {"name": "张三", "phone": "13800000000"}, "source": "api"}


async def _post(http: httpx.AsyncClient, body: dict[str, Any], key: str, **headers: str) -> httpx.Response:
    return await http.post("/api/events", json=body, headers={"Idempotency-Key": key, **headers})


async def test_the_same_idempotency_key_three_at_once_gives_one_event_and_the_same_answer(
    platform: Platform,
) -> None:
    description, key = f"API 三连发 {uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    answers = await asyncio.gather(*(_post(platform.http, _body(description), key) for _ in range(3)))
    assert [r.status_code for r in answers] == [201] * 3, [r.text for r in answers]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in answers) == ["", "true", "true"]
    events = await settled_events(platform, description)
    assert [e.event_id for e in events] == [answers[0].json()["event_id"]]
    assert key_matches(answers[0].json()["tracking_key"], events[0].tracking_key_hash)
    later = await _post(platform.http, _body(description), key)
    assert (later.status_code, later.json(), later.headers["Idempotent-Replayed"]) == (201, answers[0].json(), "true")


async def test_the_same_key_with_another_body_is_refused_with_422(platform: Platform) -> None:
    key = str(uuid.uuid4())
    description = f"API 改了内容 {uuid.uuid4().hex[:6]}"
    assert (await _post(platform.http, _body(description), key)).status_code == 201
    r = await _post(platform.http, _body(description + "!"), key)
    assert r.status_code == 422 and "Idempotency-Key was used for another request" in r.json()["detail"]
    assert await events_described(platform, description + "!") == []


async def test_keys_are_scoped_to_the_caller(platform: Platform) -> None:
    key = "order-1"  # a guessable key: still nobody else's answer
    description = f"API 范围 {uuid.uuid4().hex[:6]}"
    mine = await _post(platform.http, _body(description), key)
    async with client(platform, "10.7.0.1") as stranger:
        theirs = await _post(stranger, _body(description), key)
    staff = await _post(platform.http, _body(description), key, **await platform.login("wg_hs01_g1"))
    assert mine.status_code == theirs.status_code == staff.status_code == 201
    assert len({mine.json()["event_id"], theirs.json()["event_id"], staff.json()["event_id"]}) == 3
    assert "Idempotent-Replayed" not in theirs.headers and "tracking_key" in theirs.json()


@pytest.mark.parametrize(("key", "status"), [("k" * 255, 201), ("k" * 256, 400), ("", 400), ("键", 400),
                                             ("a b", 400)])
async def test_the_key_is_bounded_visible_ascii(platform: Platform, key: str, status: int) -> None:
    r = await platform.http.post("/api/events", json=_body(f"键长 {uuid.uuid4().hex[:6]}"),
                                 headers=[("Idempotency-Key", key.encode())])  # type: ignore[list-item]
    assert r.status_code == status, r.text


async def test_neither_key_is_stored_in_clear(platform: Platform) -> None:
    key = f"clear-{uuid.uuid4()}"
    answer = (await _post(platform.http, _body(f"存储 {uuid.uuid4().hex[:6]}"), key)).json()
    async with platform.db.session() as session:
        rows = (await session.exec(select(models.IdempotencyKey))).all()
    dumped = " ".join(str(r.model_dump()) for r in rows)
    assert rows and key not in dumped
    tracking = answer["tracking_key"]
    assert tracking not in dumped and tracking.replace("-", "") not in dumped
    assert answer["receipt_code"] in dumped  # the answer is kept, without the key


async def test_expired_keys_are_cleaned_up_and_give_a_new_event(platform: Platform) -> None:
    key, description = str(uuid.uuid4()), f"过期 {uuid.uuid4().hex[:6]}"
    first = (await _post(platform.http, _body(description), key)).json()
    async with platform.db.session() as session:
        await session.exec(update(models.IdempotencyKey).values(  # type: ignore[call-overload]
            created_at=utcnow() - timedelta(hours=25)))
        await session.commit()
    # Any claim deletes the rows older than 24 hours.
    assert (await _post(platform.http, _body(f"别的 {uuid.uuid4().hex[:6]}"), str(uuid.uuid4()))).status_code == 201
    async with platform.db.session() as session:
        old = (await session.exec(select(models.IdempotencyKey).where(
            col(models.IdempotencyKey.created_at) < utcnow() - timedelta(hours=24)))).all()
    assert old == []
    again = await _post(platform.http, _body(description), key)
    assert again.status_code == 201 and again.json()["event_id"] != first["event_id"]


async def test_a_failed_first_request_leaves_the_key_to_the_next_one(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = commands.start_event
    calls = 0

    async def flaky(*args: Any, **kwargs: Any) -> commands.Started:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise commands.CommandError(503, "the workflow engine is unavailable: test")
        return await real(*args, **kwargs)

    monkeypatch.setattr(commands, "start_event", flaky)
    key, description = str(uuid.uuid4()), f"重试 {uuid.uuid4().hex[:6]}"
    assert (await _post(platform.http, _body(description), key)).status_code == 503
    retried = await _post(platform.http, _body(description), key)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert len(await settled_events(platform, description)) == 1


async def test_a_claim_whose_request_died_after_the_start_is_taken_over_without_a_second_event(
    platform: Platform,
) -> None:
    # The first request claimed the key and started the workflow, then its process died: the claim
    # stays without an answer. After it goes stale the next request takes over, finds the same event
    # started (its id was drawn for the claim) and answers with it.
    key, description = str(uuid.uuid4()), f"接管 {uuid.uuid4().hex[:6]}"
    body = _body(description)
    from web.schemas import EventIn

    report = EventIn.model_validate(body).to_report()
    scope = "api:address:127.0.0.1"  # the platform's test client
    app_ctx = _app_context(platform)
    prepared = await commands.prepare(app_ctx, report)
    started = await commands.start_event(app_ctx, report, prepared)
    long_ago = utcnow() - timedelta(minutes=10)
    await stored_keys.claim(platform.db, models.IdempotencyKey(
        key_hash=idempotency.key_hash(platform.settings.secret(), scope, key),
        request_hash=idempotency.request_hash(EventIn.model_validate(body).model_dump(mode="json")),
        created_at=long_ago, claimed_at=long_ago, event_id=prepared.event_id,
        receipt_code=prepared.grant.receipt_code, tracking_nonce=prepared.grant.tracking_nonce,
        tracking_key_hash=prepared.grant.tracking_key_hash), utcnow())
    r = await _post(platform.http, body, key)
    assert r.status_code == 201, r.text
    assert (r.json()["event_id"], r.json()["receipt_code"]) == (started.event_id, started.receipt_code)
    assert len(await settled_events(platform, description)) == 1



async def test_a_report_the_workflow_would_refuse_is_refused_before_a_receipt_is_given(
    platform: Platform,
) -> None:
    # A caller of the command (not an entrance that checks first) with a number of an unassigned
    # range: refused with the catalogue's reason, and no workflow is started for it.
    from web.schemas import EventIn

    body = _body(f"号码无效 {uuid.uuid4().hex[:6]}")
    report = EventIn.model_validate(body).to_report()
    report.reporter.phone = "17412345678"
    app_ctx = _app_context(platform)
    prepared = await commands.prepare(app_ctx, report)
    with pytest.raises(commands.CommandError) as refused:
        await commands.start_event(app_ctx, report, prepared)
    assert refused.value.status == 400 and refused.value.code == "invalid_report"
    assert "reporter.phone" in refused.value.reason and "上报内容不符合要求" in refused.value.text("zh-CN")
    with pytest.raises(RPCError):
        await platform.client.get_workflow_handle(prepared.event_id).describe()

def _app_context(platform: Platform) -> Any:
    """The web app's context (the platform's app was built around it)."""
    from web.context import AppContext

    ctx = AppContext(settings=platform.settings, db=platform.db)
    ctx.set_client(platform.client)
    return ctx


async def test_after_a_new_secret_old_forms_are_refused_and_no_wrong_tracking_key_is_given(
    platform: Platform,
) -> None:
    # The form key is signed and the tracking key derived with the server secret: after the secret
    # changed, the old form is refused (submit again), and a kept answer gives no key rather than a wrong one.
    description = f"密钥换了 {uuid.uuid4().hex[:6]}"
    async with client(platform) as resident:
        html = (await resident.get("/report")).text
        receipt, _ = receipt_of((await resident.post("/report", data=report_fields(html, description))).text)
        before = platform.settings.secret_key
        platform.settings.secret_key = before + "-rotated"
        try:
            fields = report_fields(html, description)
            again = await resident.post("/report", data=fields)
        finally:
            platform.settings.secret_key = before
    assert again.status_code == 400 and "此表单已失效" in again.text  # the form's own signature broke too
    assert len(await settled_events(platform, description)) == 1
    row_answer = await _replayed_without_key(platform, description)
    assert row_answer == (receipt, None)


async def _replayed_without_key(platform: Platform, description: str) -> tuple[str, str | None]:
    """The kept answer of the form report with ``description``, given again after the secret changed."""
    async with platform.db.session() as session:
        event = (await session.exec(select(models.Event).where(models.Event.description == description))).one()
        row = (await session.exec(select(models.IdempotencyKey).where(
            models.IdempotencyKey.event_id == event.event_id))).one()
    before = platform.settings.secret_key
    platform.settings.secret_key = before + "-rotated"
    try:
        answer = idempotency._replay(_app_context(platform), row)
    finally:
        platform.settings.secret_key = before
    return str(answer.body["receipt_code"]), answer.tracking_key
