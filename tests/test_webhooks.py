"""Outbound webhooks (issue 12, item 3): a receiver that fails 5 times per change then succeeds gets
every change of an event's whole loop once by change id, in order, signed; a worker killed in the
middle of a delivery loses nothing; the outbox written by the projection; URL policy; dead letters
and replay."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
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

from store import webhooks
from store.webhook_urls import TargetRefused, check_url
from tests.platform import Platform, running_platform
from tests.scenarios import happy_path

ROOT = Path(__file__).resolve().parents[1]
#: The loop of tests.scenarios.happy_path: report, route, claim, complete, the verifier's claim and
#: pass, the rating and the close.
LOOP = ["reported", "dispatched", "claimed", "completed", "claimed", "verified", "rated", "closed"]
FAST = {"webhook_allow_private_targets": True, "webhook_retry_initial_seconds": 0.05,
        "webhook_retry_max_seconds": 0.2, "webhook_timeout_seconds": 2.0, "webhook_poll_seconds": 1.0}


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
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            path = self.path.split("?", 1)[0].strip("/")
            status = receiver.answer(path, {k.lower(): v for k, v in self.headers.items()}, body)
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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.base = f"http://127.0.0.1:{server.server_address[1]}"
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
        yield p


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


def check_loop(got: list[dict[str, Any]], event_id: str, receipt: str) -> None:
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
                snap = await handle.query("snapshot")
            log = await webhooks.deliveries(p.db, every.subscription.id or 0)
    check_loop(got, handle.id, snap["receipt_code"])
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
                snap = await handle.query("snapshot")
            finally:
                for proc in (first, second):
                    if proc is not None and proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
                        await asyncio.to_thread(proc.wait, 30)
            log = await webhooks.deliveries(p.db, sub.subscription.id or 0)
    assert delivered_before == ["reported", "dispatched", "claimed"]
    check_loop(got, handle.id, snap["receipt_code"])
    completed = f"{handle.id}.{next(b['data']['seq'] for b in got if b['data']['change'] == 'completed')}"
    assert receiver.attempts[("all", completed)] >= 2  # the killed attempt, then the new worker's
    assert len({b["data"]["change_id"] for _, b in receiver.accepted}) == len(LOOP)
    assert {r.status for r in log} == {"delivered"} and len(log) == len(LOOP)
    check_signed(receiver, {"all": sub.secret})
