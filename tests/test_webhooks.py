"""Outbound webhooks (issue 12, item 3): a receiver that fails 5 times per change then succeeds gets
every change of an event's whole loop once by change id, in order, signed; a worker killed in the
middle of a delivery loses nothing; the outbox written by the projection; URL policy; dead letters
and replay."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from store import webhooks
from store.admin_common import AdminError
from store.projection import apply_snapshot
from store.webhook_urls import TargetRefused, check_url
from tests.platform import Platform, running_platform
from tests.scenarios import happy_path
from worker import workflow_runner
from workflows.event_lifecycle import EventLifecycle
from workflows.webhook_delivery import WebhookDelivery, workflow_id

ROOT = Path(__file__).resolve().parents[1]
#: The loop of tests.scenarios.happy_path: report, route, claim, complete, the verifier's claim and
#: pass, the rating and the close.
LOOP = ["reported", "dispatched", "claimed", "completed", "claimed", "verified", "rated", "closed"]
FAST = {"webhook_allow_private_targets": True, "webhook_retry_initial_seconds": 0.05,
        "webhook_retry_max_seconds": 0.2, "webhook_timeout_seconds": 2.0,
        # Longer than any test: every delivery below is set off by a wake-up (the projection's, a
        # worker's start), never by the workflow's own polling.
        "webhook_poll_seconds": 600.0}


def documented_verifier() -> Callable[[str, dict[str, str], bytes], bool]:
    """``verify_webhook`` exactly as docs/WEBHOOKS.md shows it to integrators."""
    text = (ROOT / "docs" / "WEBHOOKS.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify_webhook" in block)
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 - our own documentation's snippet
    return namespace["verify_webhook"]  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """A local HTTP receiver, one path per subscription: answers 500 to the first ``fails`` requests
    of each path, then 200; ``hold`` (a change kind) keeps the first attempt of that kind waiting
    until ``release`` is set, then refuses it."""

    fails: int = 5
    hold: str | None = None
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)  # per (path, change id)
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    def url(self, path: str) -> str:
        return f"{self.base}/{path}?from=wulian"

    accepted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        key = (path, headers.get("webhook-id", ""))
        with self.lock:
            self.received.append((path, headers, body))
            self.attempts[key] = self.attempts.get(key, 0) + 1
            refused = sum(1 for p, _, _ in self.received if p == path) <= self.fails
        if self.hold == json.loads(body)["data"]["change"] and not self.held.is_set():
            self.held.set()
            self.release.wait(30)
            return 500
        if refused:
            return 500
        with self.lock:
            self.accepted.append((path, json.loads(body)))
        return 200

    def delivered(self, path: str) -> list[dict[str, Any]]:
        """The bodies accepted on ``path``, each change id once (the receiver drops repeats), in the
        order they were first accepted."""
        seen: dict[str, dict[str, Any]] = {}
        with self.lock:
            for got, body in self.accepted:
                if got == path:
                    seen.setdefault(body["data"]["change_id"], body)
        return list(seen.values())


@contextmanager
def receiving(receiver: Receiver, tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            path = self.path.split("?", 1)[0].strip("/")
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.answer(path, headers, body)
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:  # the worker that sent it is gone
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.base = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()


@asynccontextmanager
async def webhook_platform(client: Any, tmp_path: Path) -> AsyncIterator[Platform]:
    async with running_platform(client, tmp_path, with_worker=False) as p:
        p.settings = p.settings.model_copy(update=FAST)
        try:
            yield p
        finally:  # no delivery workflow is left polling a task queue nobody serves any more
            for sub in await webhooks.subscriptions(p.db):
                with contextlib.suppress(Exception):
                    await client.get_workflow_handle(workflow_id(p.task_queue, sub.id or 0)).terminate("test over")


async def subscribe(p: Platform, url: str, kinds: tuple[str, ...] = webhooks.CHANGE_KINDS) -> webhooks.NewSubscription:
    return await webhooks.create(p.db, integration="district-system", url=url, kinds=kinds, actor="admin",
                                 server_secret=p.settings.secret(), allow_private=True)


async def arrived(receiver: Receiver, path: str, n: int, seconds: float = 90) -> list[dict[str, Any]]:
    for _ in range(int(seconds * 10)):
        got = receiver.delivered(path)
        if len(got) >= n:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(receiver.delivered(path))} of {n} changes arrived: {receiver.delivered(path)}")


def check_signed(receiver: Receiver, secrets: dict[str, str]) -> None:
    """Every request received (retries too) carries a valid signature of its subscription's secret,
    by the documented snippet and by the standardwebhooks package; a changed body or another
    subscription's secret does not verify."""
    verify = documented_verifier()
    for path, headers, body in receiver.received:
        assert verify(secrets[path], headers, body)
        Webhook(secrets[path]).verify(body, headers)
        for other, secret in secrets.items():
            if other != path:
                assert not verify(secret, headers, body)
    _, headers, body = receiver.received[0]
    assert not verify(secrets[receiver.received[0][0]], headers, body.replace(b"}", b" }", 1))


def check_loop(got: list[dict[str, Any]], event_id: str, receipt: str | None) -> None:
    """The whole loop, once per change id, in the timeline's order, without the reporter."""
    assert [b["data"]["change"] for b in got] == LOOP
    assert [b["data"]["change_id"] for b in got] == [f"{event_id}.{b['data']['seq']}" for b in got]
    seqs = [b["data"]["seq"] for b in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for body in got:
        data = body["data"]
        assert data["event_id"] == event_id and data["receipt_code"] == receipt
        assert data["at"].endswith("+08:00") and body["type"] == f"event.{data['change']}"
        assert data["unit"] == (None if data["change"] == "reported" else "HS01-G1")  # not routed yet
    assert got[-1]["data"]["state"] == "closed"
    text = json.dumps(got, ensure_ascii=False)
    assert "张三" not in text and "13800000000" not in text  # the scenario's reporter


async def test_receiver_failing_five_times_gets_the_whole_loop_once_in_order(
        dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    with receiving(Receiver(fails=5)) as receiver:
        async with webhook_platform(dev_env.client, tmp_path) as p:
            every = await subscribe(p, receiver.url("all"))
            closes = await subscribe(p, receiver.url("closes"), ("closed",))
            async with p.start_worker():
                handle = await happy_path(dev_env, p.task_queue)
                got = await arrived(receiver, "all", len(LOOP))
                assert len(await arrived(receiver, "closes", 1)) == 1
                final = await handle.query(EventLifecycle.snapshot)
                # The delivery workflow's history replays on the code as it is (deterministic).
                history = await dev_env.client.get_workflow_handle(
                    workflow_id(p.task_queue, every.subscription.id or 0)).fetch_history()
                await Replayer(workflows=[WebhookDelivery], workflow_runner=workflow_runner()).replay_workflow(history)
            log = await webhooks.deliveries(p.db, every.subscription.id or 0)
            # The same snapshot projected again (a retry, `wulian store repair`) queues nothing more.
            assert not await apply_snapshot(p.db, final)
            assert await apply_snapshot(p.db, dataclasses.replace(final, version=final.version + 1))
            assert len(await webhooks.deliveries(p.db, every.subscription.id or 0)) == len(LOOP)
    check_loop(got, handle.id, None)  # not the subscriber's own report: no receipt code
    assert [b["data"]["change"] for b in receiver.delivered("closes")] == ["closed"]
    # Five refusals of the first change, retried with its change id until accepted; the later
    # changes waited behind it (each sent once, none accepted before it); nothing sent again after
    # its success.
    first = f"{handle.id}.1"
    assert receiver.attempts[("all", first)] == 6 and receiver.attempts[("closes", got[-1]["data"]["change_id"])] == 6
    assert all(n == 1 for (path, msg), n in receiver.attempts.items() if path == "all" and msg != first)
    assert len(receiver.accepted) == len(LOOP) + 1
    check_signed(receiver, {"all": every.secret, "closes": closes.secret})
    # The delivery log: each change delivered, with its attempts and the receiver's status.
    assert [(r.kind, r.attempts) for r in reversed(log)] == [(k, 6 if i == 0 else 1) for i, k in enumerate(LOOP)]
    assert {(r.status, r.last_status, r.last_error) for r in log} == {("delivered", 200, None)}
    assert all(r.last_latency_ms is not None and r.delivered_at is not None for r in log)


def _worker_process(p: Platform, dev_env: WorkflowEnvironment, tmp_path: Path, n: int) -> subprocess.Popen[bytes]:
    """``worker.py`` as its own process on the platform's store and task queue (so it can be killed)."""
    env = {**os.environ, "WULIAN_DATABASE_URL": p.db.url, "WULIAN_DATA_DIR": str(tmp_path),
           "WULIAN_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "WULIAN_TEMPORAL_TASK_QUEUE": p.task_queue, "WULIAN_SECRET_KEY": p.settings.secret()}
    env.update({f"WULIAN_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in FAST.items()})
    log = (tmp_path / f"worker{n}.log").open("wb")
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


async def test_a_worker_killed_during_a_delivery_loses_no_change(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    with receiving(Receiver(fails=0, hold="completed")) as receiver:
        async with webhook_platform(dev_env.client, tmp_path) as p:
            sub = await subscribe(p, receiver.url("all"))
            first = _worker_process(p, dev_env, tmp_path, 1)
            second = None
            try:
                loop = asyncio.create_task(happy_path(dev_env, p.task_queue))
                # The worker is in the middle of sending "completed" (the receiver holds the request)...
                assert await asyncio.to_thread(receiver.held.wait, 90), "the held delivery never came"
                first.send_signal(signal.SIGKILL)  # ... and dies without a word.
                await asyncio.to_thread(first.wait, 30)
                receiver.release.set()
                delivered_before = [b["data"]["change"] for b in receiver.delivered("all")]
                second = _worker_process(p, dev_env, tmp_path, 2)
                handle = await asyncio.wait_for(loop, 120)  # the loop goes on with the new worker
                got = await arrived(receiver, "all", len(LOOP), 120)
            finally:
                for proc in (first, second):
                    if proc is not None and proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
                        await asyncio.to_thread(proc.wait, 30)
            log = await webhooks.deliveries(p.db, sub.subscription.id or 0)
    assert delivered_before == ["reported", "dispatched", "claimed"]
    check_loop(got, handle.id, None)  # not the subscriber's own report: no receipt code
    completed = f"{handle.id}.{next(b['data']['seq'] for b in got if b['data']['change'] == 'completed')}"
    assert receiver.attempts[("all", completed)] >= 2  # the killed attempt, then the new worker's
    assert len({b["data"]["change_id"] for _, b in receiver.accepted}) == len(LOOP)
    assert {r.status for r in log} == {"delivered"} and len(log) == len(LOOP)
    check_signed(receiver, {"all": sub.secret})


# ------------------------------------------------------------------ the URL policy

@pytest.mark.parametrize(("url", "private", "code"), [
    ("https://hooks.example.cn/wulian?x=1", False, None),
    ("http://203.0.113.9/x", False, "forbidden_address"),  # documentation range: nobody's
    ("http://8.8.8.8:8080/hook", False, None),
    ("ftp://hooks.example.cn/x", True, "scheme"),
    ("javascript:alert(1)", True, "scheme"),
    ("file:///etc/passwd", True, "scheme"),
    ("https://user:pw@hooks.example.cn/", True, "credentials"),
    ("https:///nohost", True, "host"),
    ("https://hooks.example.cn/a b", True, "syntax"),
    ("http://hooks.example.cn:99999/", True, "syntax"),
    ("", True, "empty"),
    ("https://x.cn/" + "a" * 500, True, "too_long"),
    ("http://169.254.169.254/latest/meta-data/", True, "forbidden_address"),  # cloud metadata, always
    ("http://[fe80::1]/x", True, "forbidden_address"),
    ("http://[::ffff:169.254.169.254]/x", True, "forbidden_address"),
    ("http://0.0.0.0/x", True, "forbidden_address"),
    ("http://224.0.0.1/x", True, "forbidden_address"),
    ("http://127.0.0.1:8080/x", False, "private_address"),
    ("http://127.0.0.1:8080/x", True, None),
    ("http://localhost/x", False, "private_address"),
    ("http://10.1.2.3/x", False, "private_address"),
    ("http://192.168.1.1/x", False, "private_address"),
    ("http://100.64.0.1/x", False, "private_address"),
    ("http://[fd00::1]/x", False, "private_address"),
    ("http://[::1]/x", False, "private_address"),
    ("http://[::1]/x", True, None),
])
def test_which_urls_a_subscription_may_target(url: str, private: bool, code: str | None) -> None:
    if code is None:
        check_url(url, private)
    else:
        with pytest.raises(TargetRefused) as refused:
            check_url(url, private)
        assert refused.value.code == code


async def test_a_name_is_checked_by_the_addresses_it_resolves_to() -> None:
    from store.webhook_urls import pinned

    with pytest.raises(TargetRefused) as refused:  # "localhost" resolves to loopback
        await pinned("http://localhost.:8080/x", False)
    assert refused.value.code == "private_address"
    target, address = await pinned("http://localhost:8080/x", True)
    assert address in ("127.0.0.1", "::1") and target.port == 8080 and target.path == "/x"
    with pytest.raises(TargetRefused) as refused:
        await pinned("http://no-such-host.invalid/x", True)
    assert refused.value.code == "unresolved"


# ------------------------------------------------------------------ the outbox without Temporal

async def _queue(db: Any, sub_id: int, event_id: str, seq: int, kind: str) -> int:
    from store import models
    from store.timeutil import utcnow

    async with db.transaction() as session:
        body = json.dumps({"type": f"event.{kind}", "data": {"change_id": f"{event_id}.{seq}", "change": kind}})
        row = models.WebhookDelivery(subscription_id=sub_id, change_id=f"{event_id}.{seq}", event_id=event_id,
                                     seq=seq, kind=kind, body=body, created_at=utcnow(), queued_at=utcnow())
        session.add(row)
        await session.commit()
        await session.refresh(row)
        assert row.id is not None
        return row.id


async def test_dead_letters_replay_and_deactivation(any_db: Any, tmp_path: Path) -> None:
    from temporalio.exceptions import ApplicationError

    from activities.webhooks import WebhookActivities
    from store import models
    from wulian.settings import Settings

    settings = Settings(data_dir=tmp_path, secret_key="webhook-test-secret", **FAST)  # type: ignore[arg-type]
    acts = WebhookActivities(any_db, settings, secret=settings.secret())
    with receiving(Receiver(fails=1000)) as receiver:
        made = await webhooks.create(any_db, integration="区级系统", url=receiver.url("a"), kinds=["claimed"],
                                     actor="admin", server_secret=settings.secret(), allow_private=True)
        sid = made.subscription.id
        assert sid is not None
        first = await _queue(any_db, sid, "EV-1", 3, "claimed")
        second = await _queue(any_db, sid, "EV-1", 5, "claimed")
        # A refused attempt is recorded and raised (Temporal retries it); the next change waits.
        with pytest.raises(ApplicationError):
            await acts.send_webhook(first)
        row = (await webhooks.deliveries(any_db, sid, status="pending"))[-1]
        assert (row.id, row.attempts, row.last_status, row.last_error) == (first, 1, 500, "HTTP 500")
        assert row.last_latency_ms is not None
        assert (await webhooks.next_pending(any_db, sid)).delivery_id == first
        # Past its give-up age: dead-lettered, and the next change is the next to go.
        acts.settings = settings.model_copy(update={"webhook_give_up_hours": 1e-9})
        assert await acts.send_webhook(first) == "dead"
        assert (await webhooks.next_pending(any_db, sid)).delivery_id == second
        dead = await webhooks.deliveries(any_db, sid, status="dead")
        assert [(d.id, d.attempts, d.last_error) for d in dead] == [(first, 1, "HTTP 500")]
        # Replayed: pending again, the oldest, with its give-up age counted from now; delivered once the
        # receiver answers, with the same change id and body as before.
        acts.settings = settings
        await webhooks.replay(any_db, sid, first, "admin")
        assert (await webhooks.next_pending(any_db, sid)).delivery_id == first
        receiver.fails = 0
        assert await acts.send_webhook(first) == "delivered"
        assert await acts.send_webhook(first) == "delivered"  # a repeated attempt sends nothing more
        sent = [(h["webhook-id"], b) for p, h, b in receiver.received]
        assert len(sent) == 2 and sent[0] == sent[1] and sent[0][0] == "EV-1.3"
        replayed = (await webhooks.deliveries(any_db, sid, status="delivered"))[0]
        assert (replayed.replays, replayed.attempts, replayed.last_status) == (1, 2, 200)
        # Deactivated: nothing more is sent, the workflow is told to stop; the log stays.
        await webhooks.deactivate(any_db, sid, "admin")
        assert (await webhooks.next_pending(any_db, sid)).inactive
        assert await acts.send_webhook(second) == "inactive"
        assert len(receiver.received) == 2
        with pytest.raises(AdminError):
            await webhooks.replay(any_db, sid, first, "admin")
    # A private target is refused by the attempt too when the setting does not allow it.
    other = await webhooks.create(any_db, integration="内网系统", url="http://127.0.0.1:9/x", kinds=["closed"],
                                  actor="admin", server_secret=settings.secret(), allow_private=True)
    assert other.subscription.id is not None
    third = await _queue(any_db, other.subscription.id, "EV-2", 9, "closed")
    acts.settings = settings.model_copy(update={"webhook_allow_private_targets": False})
    with pytest.raises(ApplicationError):
        await acts.send_webhook(third)
    row = (await webhooks.deliveries(any_db, other.subscription.id))[0]
    assert row.last_error == "target refused: private_address: 127.0.0.1"
    async with any_db.session() as session:
        from sqlmodel import select
        actions = [a.action for a in (await session.exec(select(models.AuditEntry).where(
            models.AuditEntry.target == f"webhook:{sid}"))).all()]
    assert actions == ["webhook_create", "webhook_replay", "webhook_deactivate"]


def test_the_secret_derives_from_the_server_secret_and_signs_as_standard_webhooks() -> None:
    secret = webhooks.derive_secret("server", "nonce")
    assert secret.startswith("whsec_") and secret == webhooks.derive_secret("server", "nonce")
    assert secret != webhooks.derive_secret("server", "other") != webhooks.derive_secret("other", "nonce")
    import time

    from standardwebhooks.webhooks import WebhookVerificationError

    body, now = b'{"a":1}', int(time.time())
    headers = {"webhook-id": "EV-1.2", "webhook-timestamp": str(now),
               "webhook-signature": webhooks.sign(secret, "EV-1.2", now, body)}
    Webhook(secret).verify(body, headers)
    assert documented_verifier()(secret, headers, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)
    for changed in ({"webhook-id": "EV-1.3"}, {"webhook-timestamp": str(now + 1)}):
        assert not documented_verifier()(secret, {**headers, **changed}, body)
    old = now - 3600  # a captured request sent again an hour later
    stale = {**headers, "webhook-timestamp": str(old), "webhook-signature": webhooks.sign(secret, "EV-1.2", old, body)}
    assert not documented_verifier()(secret, stale, body)


# ------------------------------------------------------------------ the admin pages and the CLI

async def test_administrators_manage_subscriptions_on_the_admin_page(org_db: Any, tmp_path: Path) -> None:
    from tests import webapp
    from tests.platform import csrf

    ctx = webapp.context(org_db, tmp_path)
    browser = webapp.browsers(ctx)
    async with browser() as http:
        await webapp.page_login(http, "admin", "admin12345")
        page = await http.get("/admin/webhooks")
        assert page.status_code == 200 and "事件变更推送" in page.text and "还没有订阅" in page.text
        token = csrf(page.text)
        good = {"integration": "区级系统", "url": "https://hooks.example.cn/wulian", "_csrf_token": token}
        for form, text in (
            ({**good, "url": "http://169.254.169.254/latest/meta-data/", "kinds": "closed"}, "云元数据"),
            ({**good, "url": "http://127.0.0.1:8080/x", "kinds": "closed"}, "内网地址"),
            ({**good, "url": "gopher://hooks.example.cn/", "kinds": "closed"}, "只能是 HTTP 或 HTTPS 地址"),
            ({**good, "integration": " ", "kinds": "closed"}, "对接系统名称须为 1 至 64 个可见字符"),
            (good, "请至少选择一种变更"),
            ({**good, "kinds": "exploded"}, "未知的变更类型：exploded"),
        ):
            refused = await http.post("/admin/webhooks", data=form)
            assert refused.status_code == 400 and text in refused.text, (form, refused.text[-2000:])
            assert 'aria-invalid="true"' in refused.text and form["integration"].strip() in refused.text
        assert await webhooks.subscriptions(org_db) == []
        made = await http.post("/admin/webhooks", data={**good, "kinds": ["claimed", "closed"]})
        assert made.status_code == 200, made.text[-1000:]
        shown = re.search(r'id="secret"[^>]*>(whsec_[^<]+)<', made.text)
        assert shown and "只显示这一次" in made.text
        [sub] = await webhooks.subscriptions(org_db)
        assert (sub.integration, sub.url, sub.kinds) == ("区级系统", good["url"], ["claimed", "closed"]) and sub.active
        assert shown.group(1) == webhooks.derive_secret(ctx.settings.secret(), sub.secret_nonce)
        assert sub.secret_hash == webhooks.secret_hash(shown.group(1)) and shown.group(1) not in repr(sub)
        listed = (await http.get("/admin/webhooks")).text
        assert "whsec_" not in listed and "区级系统" in listed and "签收、结案" in listed
        # The log: a dead letter with its last error, replayed from its button.
        assert sub.id is not None
        dead = await _queue(org_db, sub.id, "EV-9", 4, "claimed")
        await webhooks.record(org_db, dead, status=None, http_status=503, latency_ms=12, error="HTTP 503")
        await webhooks.record(org_db, dead, status="dead", http_status=None, latency_ms=None, error="HTTP 503")
        detail = (await http.get(f"/admin/webhooks/{sub.id}?status=dead")).text
        assert "EV-9.4" in detail and "HTTP 503" in detail and "12 毫秒" in detail and "死信" in detail
        replay = f"/admin/webhooks/{sub.id}/deliveries/{dead}/replay"
        assert replay in detail
        r = await http.post(replay, data={"_csrf_token": csrf(detail)})
        assert r.status_code == 303 and r.headers["location"].endswith("msg=webhooks.msg.replayed")
        [row] = await webhooks.deliveries(org_db, sub.id)
        assert (row.status, row.replays, row.attempts) == ("pending", 1, 1)
        assert "已重新排队推送" in (await http.get(r.headers["location"])).text
        assert (await http.post(f"/admin/webhooks/{sub.id}/deliveries/{dead + 1}/replay",
                                data={"_csrf_token": csrf(detail)})).status_code == 404
        # Deactivated: said so, no more replay buttons.
        r = await http.post(f"/admin/webhooks/{sub.id}/deactivate", data={"_csrf_token": csrf(detail)})
        assert r.status_code == 303
        after = (await http.get(r.headers["location"])).text
        assert "订阅已停用，不再推送" in after and "/replay" not in after
        assert (await http.get("/admin/webhooks/999")).status_code == 404
        # Without the CSRF token nothing is made.
        forged = await http.post("/admin/webhooks", data={**good, "_csrf_token": "x", "kinds": "closed"})
        assert forged.status_code == 403 and len(await webhooks.subscriptions(org_db)) == 1
        await http.get("/lang/en")
        english = (await http.get(f"/admin/webhooks/{sub.id}")).text
        assert "Delivery log" in english and "deactivated" in english


def test_the_cli_creates_lists_and_deactivates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from wulian.cli import app
    from wulian.settings import get_settings

    monkeypatch.setenv("WULIAN_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("WULIAN_SECRET_KEY", "cli-test-secret")
    monkeypatch.setenv("WULIAN_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        cli = CliRunner()
        made = cli.invoke(app, ["webhook", "create", "hotline-12345", "https://hooks.example.cn/in",
                                "--kind", "closed", "--kind", "dispatched"])
        assert made.exit_code == 0, made.output
        assert "webhook 1: hotline-12345 → https://hooks.example.cn/in (dispatched, closed)" in made.output
        secret = re.search(r"shown once, keep it\): (whsec_\S+)", made.output)
        assert secret and secret.group(1).startswith("whsec_")
        refused = cli.invoke(app, ["webhook", "create", "x", "http://169.254.169.254/"])
        assert refused.exit_code == 1 and "link-local" in refused.output
        refused = cli.invoke(app, ["webhook", "create", "x", "https://a.cn/", "--kind", "nope"])
        assert refused.exit_code == 1 and "unknown change kind (nope)" in refused.output
        listed = cli.invoke(app, ["webhook", "list"])
        assert listed.exit_code == 0
        assert "hotline-12345\tactive\thttps://hooks.example.cn/in\tdispatched,closed" in listed.output
        assert secret.group(1) not in listed.output
        assert cli.invoke(app, ["webhook", "deactivate", "1"]).exit_code == 0
        assert "\tinactive\t" in cli.invoke(app, ["webhook", "list"]).output
        missing = cli.invoke(app, ["webhook", "deactivate", "7"])
        assert missing.exit_code == 1 and "no webhook subscription 7" in missing.output
    finally:
        get_settings.cache_clear()


def test_every_change_kind_comes_from_actions_the_workflow_records() -> None:
    """The actions mapped to change kinds are the workflow's own (a trigger of the state machine, or an
    entry it logs), and every kind a subscription may ask for is made by one of them."""
    from workflows.lifecycle import TRANSITIONS

    triggers = {t["trigger"] for t in TRANSITIONS}
    source = (ROOT / "workflows" / "event_core.py").read_text(encoding="utf-8")
    for action in webhooks.ACTION_KINDS:
        assert action in triggers or f'self._log("{action}"' in source, action
    assert set(webhooks.ACTION_KINDS.values()) == set(webhooks.CHANGE_KINDS)


async def test_the_projection_queues_each_change_once_in_its_transaction(any_db: Any) -> None:
    """The outbox rows come with the timeline entries they are made of: once per (subscription,
    change), whatever the order, repetition or concurrency of the projections; only for the kinds
    and active subscriptions asked; bodies without the reporter."""
    from sqlalchemy.exc import DBAPIError

    from tests.test_store import EVENT_ID, snapshot

    async def sub(kinds: tuple[str, ...]) -> int:
        made = await webhooks.create(any_db, integration="区级系统", url="https://hooks.example.cn/x", kinds=kinds,
                                     actor="admin", server_secret="s", allow_private=False)
        assert made.subscription.id is not None
        return made.subscription.id

    every, claims, stopped = await sub(webhooks.CHANGE_KINDS), await sub(("claimed",)), await sub(("claimed",))
    await webhooks.deactivate(any_db, stopped, "admin")
    woken: set[int] = set()
    results = await asyncio.gather(*(apply_snapshot(any_db, snapshot(v), woken) for v in (1, 3, 2)),
                                   return_exceptions=True)
    for version, result in zip((1, 3, 2), results, strict=True):
        if isinstance(result, BaseException):  # a conflicting first insert: the activity retries it
            assert isinstance(result, DBAPIError), repr(result)
            await apply_snapshot(any_db, snapshot(version), woken)
    assert not await apply_snapshot(any_db, snapshot(3), woken)
    assert woken == {every, claims}
    rows = list(reversed(await webhooks.deliveries(any_db, every)))
    assert [(r.seq, r.kind, r.change_id) for r in rows] == [
        (1, "reported", f"{EVENT_ID}.1"), (2, "dispatched", f"{EVENT_ID}.2"), (3, "claimed", f"{EVENT_ID}.3"),
        (4, "completed", f"{EVENT_ID}.4")]
    assert [r.kind for r in await webhooks.deliveries(any_db, claims)] == ["claimed"]
    assert await webhooks.deliveries(any_db, stopped) == []
    body = json.loads(rows[2].body)
    assert body["data"] == {
        "change_id": f"{EVENT_ID}.3", "event_id": EVENT_ID, "receipt_code": None,
        "change": "claimed", "seq": 3, "state": "handling", "at": "2026-03-04T03:00:00+08:00", "unit": "HS01-G1",
        "category": "SR-01"}
    assert not any(text in r.body for r in rows for text in ("张三", "13800000000", "北苑小区"))


async def test_only_the_subscribers_own_reports_carry_their_receipt_code(any_db: Any) -> None:
    """A receipt code opens a report's status and timeline to whoever holds it: a subscriber gets it
    for the reports its own integration made, null for everybody else's."""
    from tests.test_store import snapshot

    async def sub(integration: str) -> int:
        made = await webhooks.create(any_db, integration=integration, url="https://hooks.example.cn/x",
                                     kinds=webhooks.CHANGE_KINDS, actor="admin", server_secret="s",
                                     allow_private=False)
        assert made.subscription.id is not None
        return made.subscription.id

    mine, other = await sub("hotline-12345"), await sub("区级系统")
    first = snapshot(1)
    snap = dataclasses.replace(first, report=dataclasses.replace(first.report, integration="hotline-12345"))
    assert await apply_snapshot(any_db, snap, set())
    to_mine, to_other = await webhooks.deliveries(any_db, mine), await webhooks.deliveries(any_db, other)
    assert [r.change_id for r in to_mine] == [r.change_id for r in to_other] != [] and snap.receipt_code
    assert {json.loads(r.body)["data"]["receipt_code"] for r in to_mine} == {snap.receipt_code}
    assert {json.loads(r.body)["data"]["receipt_code"] for r in to_other} == {None}


async def test_a_merge_and_its_undo_are_changes_subscribers_are_told_of(any_db: Any) -> None:
    """A duplicate merged into its primary (and the merge undone) reaches the subscribers that want
    those kinds, after the event's earlier changes."""
    from tests.test_store import snapshot

    made = await webhooks.create(any_db, integration="区级系统", url="https://hooks.example.cn/x",
                                 kinds=["reported", "merged", "unmerged"], actor="admin", server_secret="s",
                                 allow_private=False)
    first = snapshot(1)
    last = first.timeline[-1]
    merge = dataclasses.replace(last, seq=last.seq + 1, action="merge", from_state=last.to_state, to_state="merged")
    undo = dataclasses.replace(last, seq=last.seq + 2, action="unmerge", from_state="merged", to_state=last.to_state)
    assert await apply_snapshot(any_db, first, set())
    assert await apply_snapshot(any_db, dataclasses.replace(first, version=first.version + 1,
                                                            timeline=[*first.timeline, merge, undo]), set())
    rows = list(reversed(await webhooks.deliveries(any_db, made.subscription.id or 0)))
    assert [(r.seq, r.kind) for r in rows] == [(1, "reported"), (merge.seq, "merged"), (undo.seq, "unmerged")]
    assert json.loads(rows[1].body)["data"]["state"] == "merged"


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl makes the test's certificate")
async def test_https_goes_to_the_checked_address_with_the_name_for_tls(org_db: Any, tmp_path: Path) -> None:
    """An attempt connects to the address it checked, never resolving the name again, and still
    verifies the receiver's certificate for the name in the URL (SNI)."""
    import httpx
    from temporalio.exceptions import ApplicationError

    from activities.webhooks import WebhookActivities
    from wulian.settings import Settings

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await asyncio.to_thread(
        subprocess.run, ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                         str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    settings = Settings(data_dir=tmp_path, secret_key="webhook-tls-secret", **FAST)  # type: ignore[arg-type]
    trusting = httpx.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=str(cert)))
    acts = WebhookActivities(org_db, settings, secret=settings.secret(), transport=trusting)
    with receiving(Receiver(fails=0), tls=server_side) as receiver:
        port = receiver.base.rsplit(":", 1)[1]
        by_name = await webhooks.create(org_db, integration="区级系统", url=f"https://localhost:{port}/tls",
                                        kinds=["closed"], actor="admin", server_secret=settings.secret(),
                                        allow_private=True)
        by_address = await webhooks.create(org_db, integration="区级系统", url=f"https://127.0.0.1:{port}/tls",
                                           kinds=["closed"], actor="admin", server_secret=settings.secret(),
                                           allow_private=True)
        assert by_name.subscription.id and by_address.subscription.id
        good = await _queue(org_db, by_name.subscription.id, "EV-7", 2, "closed")
        assert await acts.send_webhook(good) == "delivered"
        [(path, headers, _)] = receiver.received
        assert path == "tls" and headers["host"] == f"localhost:{port}"
        # The certificate names localhost, not 127.0.0.1: refused, recorded, retried.
        bad = await _queue(org_db, by_address.subscription.id, "EV-7", 2, "closed")
        with pytest.raises(ApplicationError):
            await acts.send_webhook(bad)
        [row] = await webhooks.deliveries(org_db, by_address.subscription.id)
        assert row.status == "pending" and row.last_error and "CERTIFICATE_VERIFY_FAILED" in row.last_error
        assert len(receiver.received) == 1


async def test_a_worker_starting_during_a_store_outage_wakes_the_deliveries_once_the_store_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker restarted while its store was away once died on its first read (the fault suite's
    worker then never came back); now it waits for the store and wakes the deliveries then."""
    from activities.webhooks import wake_active_retrying
    from store.db import Database

    # A store whose every read fails (no tables yet), as a stopped PostgreSQL's would.
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'wulian.db'}")
    try:
        with caplog.at_level("WARNING", logger="wulian.webhooks"):
            waking = asyncio.create_task(wake_active_retrying(None, db, "tq", first_delay=0.05))  # type: ignore[arg-type]
            await asyncio.sleep(0.3)
            assert not waking.done()  # still waiting, not ended by the error
            assert any("could not wake the webhook deliveries" in r.getMessage() for r in caplog.records)
            await db.upgrade()
            assert await asyncio.wait_for(waking, 5) == 0  # the store answered: no subscription to wake
    finally:
        await db.dispose()
