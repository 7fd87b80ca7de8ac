"""An integration's own webhook subscriptions over the JSON API (web/api_subscriptions.py): a key
with ``subscribe`` subscribes, lists, reads the log of and ends only its own subscriptions."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from store import api_keys, models, webhooks
from store.db import Database
from tests import webapp


async def test_an_integration_manages_only_its_own_subscriptions(org_db: Database, tmp_path: Path) -> None:
    ctx = webapp.context(org_db, tmp_path)
    browser = webapp.browsers(ctx)
    _, key_a = await api_keys.create_key(org_db, "camera-hub", ("subscribe",), "admin")
    _, key_b = await api_keys.create_key(org_db, "other-city", ("subscribe",), "admin")
    _, reporter = await api_keys.create_key(org_db, "hotline", ("report", "read"), "admin")
    a, b = {"X-API-Key": key_a}, {"X-API-Key": key_b}
    async with browser() as http:
        made = await http.post("/api/subscriptions", headers=a,
                               json={"url": "https://hooks.example.org/wulian", "kinds": ["closed", "dispatched"]})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["kinds"] == ["dispatched", "closed"] and body["active"] is True
        assert body["secret"].startswith("whsec_")
        sid = body["id"]
        # The store's subscription is the key's integration's, and the secret it signs with is the one shown.
        row = await webhooks.get(org_db, sid)
        assert row is not None and row.integration == "camera-hub"
        assert webhooks.secret_hash(body["secret"]) == row.secret_hash

        listed = await http.get("/api/subscriptions", headers=a)
        assert [s["id"] for s in listed.json()] == [sid] and "secret" not in listed.json()[0]
        assert (await http.get("/api/subscriptions", headers=b)).json() == []
        # Another integration's subscription is as missing: no log, no end.
        assert (await http.get(f"/api/subscriptions/{sid}/deliveries", headers=b)).status_code == 404
        assert (await http.delete(f"/api/subscriptions/{sid}", headers=b)).status_code == 404
        assert (await http.get(f"/api/subscriptions/{sid}/deliveries", headers=a)).json() == []

        # The rules are the store's: a private or metadata address, an unknown kind are refused (400).
        for wrong in ({"url": "http://169.254.169.254/latest"}, {"url": "http://127.0.0.1:9/x"},
                      {"url": "https://hooks.example.org/x", "kinds": ["everything"]},
                      {"url": "ftp://hooks.example.org/x"}):
            refused = await http.post("/api/subscriptions", headers=a, json=wrong)
            assert refused.status_code == 400, (wrong, refused.text)
        # Without the scope, without a key, with a staff login only: refused.
        assert (await http.get("/api/subscriptions", headers={"X-API-Key": reporter})).status_code == 403
        assert (await http.get("/api/subscriptions")).status_code == 401
        token = await webapp.api_login(http, "admin", "admin12345")
        assert (await http.get("/api/subscriptions", headers=token)).status_code == 401

        ended = await http.delete(f"/api/subscriptions/{sid}", headers=a)
        assert ended.status_code == 200 and ended.json()["active"] is False
    async with org_db.session() as session:
        audits = (await session.exec(select(models.AuditEntry).where(
            models.AuditEntry.action.in_(("webhook_create", "webhook_deactivate"))))).all()  # type: ignore[attr-defined]
    assert [(e.actor, e.action) for e in audits] == [
        ("integration:camera-hub", "webhook_create"), ("integration:camera-hub", "webhook_deactivate")]
    assert len([s for s in await webhooks.subscriptions(org_db)]) == 1  # nothing refused was stored


async def test_an_integration_has_at_most_ten_active_subscriptions(org_db: Database) -> None:
    from store.admin_common import AdminError

    async def subscribe(integration: str) -> webhooks.NewSubscription:
        return await webhooks.create(org_db, integration=integration, url="https://hooks.example.org/x",
                                     kinds=["closed"], actor="admin", server_secret="s", allow_private=False)

    made = [await subscribe("camera-hub") for _ in range(webhooks.MAX_PER_INTEGRATION)]
    try:
        await subscribe("camera-hub")
    except AdminError as exc:
        assert exc.key == "webhooks.err.too_many"
    else:
        raise AssertionError("an eleventh active subscription was stored")
    assert (await subscribe("other-city")).subscription.active  # another integration's count is its own
    await webhooks.deactivate(org_db, made[0].subscription.id or 0, "admin")
    assert (await subscribe("camera-hub")).subscription.active  # an ended one makes room
