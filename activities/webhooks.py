"""The activities of the webhook delivery workflow (``workflows/webhook_delivery.py``) and the wake-up
the projection sends it.

``send_webhook`` makes one attempt: the change's stored body, signed (Standard Webhooks headers
``webhook-id`` = the change id, ``webhook-timestamp``, ``webhook-signature``), POSTed to the address
``store.webhook_urls.pinned`` checked (no second resolution, no redirects). A 2xx answer is
delivered; anything else is recorded (status, latency, error) and raised, so Temporal retries it
with back-off; once the change is older than the give-up age it is dead-lettered instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from store import webhooks
from store.db import Database
from store.webhook_urls import TargetRefused, pinned
from workflows.webhook_delivery import (
    ACTIVITY_NEXT,
    ACTIVITY_SEND,
    NextDelivery,
    wake,
)
from wulian.settings import Settings

log = logging.getLogger("wulian.webhooks")


class WebhookActivities:
    """The delivery activities, bound to a store, the server secret and the settings."""

    def __init__(self, db: Database, settings: Settings, *, secret: str,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.db = db
        self.settings = settings
        self.secret = secret
        self.transport = transport  # tests may pass one

    @activity.defn(name=ACTIVITY_NEXT)
    async def next_webhook_delivery(self, subscription_id: int) -> NextDelivery:
        """The subscription's oldest pending delivery, with the retry policy to send it with."""
        found = await webhooks.next_pending(self.db, subscription_id)
        s = self.settings
        return NextDelivery(inactive=found.inactive, delivery_id=found.delivery_id,
                            retry_initial_seconds=s.webhook_retry_initial_seconds,
                            retry_max_seconds=s.webhook_retry_max_seconds,
                            attempt_timeout_seconds=s.webhook_timeout_seconds + 5,
                            poll_seconds=s.webhook_poll_seconds)

    @activity.defn(name=ACTIVITY_SEND)
    async def send_webhook(self, delivery_id: int) -> str:
        """One attempt; answers ``delivered``, ``dead`` (given up) or the status it already had."""
        loaded = await webhooks.load(self.db, delivery_id)
        if loaded is None:
            return "missing"
        row, sub = loaded
        if row.status != "pending":  # an attempt of a worker that died after recording it
            return row.status
        if not sub.active:
            return "inactive"
        if webhooks.age_exceeded(row, self.settings.webhook_give_up_hours):
            await webhooks.record(self.db, delivery_id, status="dead", http_status=None, latency_ms=None,
                                  error=row.last_error or "given up")
            log.warning("webhook %s: change %s given up after %s attempts", sub.id, row.change_id, row.attempts)
            return "dead"
        secret = webhooks.derive_secret(self.secret, sub.secret_nonce)
        if webhooks.secret_hash(secret) != sub.secret_hash:
            return await self._failed(delivery_id, None, None, "the signing secret no longer derives from the "
                                      "server secret (WULIAN_SECRET_KEY changed?)")
        body = row.body.encode()
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "user-agent": "wulian-webhooks/1",
                   "webhook-id": row.change_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": webhooks.sign(secret, row.change_id, timestamp, body)}
        started = time.monotonic()
        try:
            target, address = await pinned(sub.url, self.settings.webhook_allow_private_targets)
            url, extensions = _connect_url(target.scheme, target.host, address, target.port, target.path)
            headers["host"] = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
            async with httpx.AsyncClient(timeout=self.settings.webhook_timeout_seconds, transport=self.transport,
                                         follow_redirects=False, trust_env=False) as client:
                # Only the status is read: the receiver's body is never read (a hostile one could stream
                # without end, each chunk restarting the read timeout).
                async with client.stream("POST", url, content=body, headers=headers, extensions=extensions) as answer:
                    status = answer.status_code
        except TargetRefused as exc:
            return await self._failed(delivery_id, None, None, f"target refused: {exc}")
        except (httpx.HTTPError, OSError) as exc:
            latency = int((time.monotonic() - started) * 1000)
            return await self._failed(delivery_id, None, latency, f"{type(exc).__name__}: {exc}")
        latency = int((time.monotonic() - started) * 1000)
        if 200 <= status < 300:
            await webhooks.record(self.db, delivery_id, status="delivered", http_status=status,
                                  latency_ms=latency, error=None)
            return "delivered"
        return await self._failed(delivery_id, status, latency, f"HTTP {status}")

    async def _failed(self, delivery_id: int, status: int | None, latency: int | None, error: str) -> str:
        await webhooks.record(self.db, delivery_id, status=None, http_status=status, latency_ms=latency, error=error)
        log.info("webhook delivery %s failed (retried): %s", delivery_id, error)
        # Benign: the SDK logs it at DEBUG instead of a traceback per attempt (a receiver down for a day
        # is hundreds of attempts); the row holds the attempts and the last error for the admin page.
        raise ApplicationError(error, type="WebhookFailed", category=ApplicationErrorCategory.BENIGN)

    def all(self) -> list[object]:
        """The activity callables, for a Worker."""
        return [self.next_webhook_delivery, self.send_webhook]


def _connect_url(scheme: str, host: str, address: str, port: int, path: str) -> tuple[str, dict[str, str]]:
    """The URL to connect to the checked address, keeping the name for TLS (SNI and certificate)."""
    literal = f"[{address}]" if ":" in address else address
    extensions = {"sni_hostname": host} if scheme == "https" and host != address else {}
    return f"{scheme}://{literal}:{port}{path}", extensions


def waker(client: Client, task_queue: str) -> Callable[[set[int]], None]:
    """What the projection activity calls after a commit that queued changes: wakes the subscriptions'
    workflows in the background, so a projection never waits for Temporal; the ids of a burst are
    gathered and each woken once per round (a lost wake-up is caught by the workflow's own polling)."""
    waiting: set[int] = set()
    running: list[asyncio.Task[None]] = []

    async def flush() -> None:
        while waiting:
            ids = sorted(waiting)
            waiting.clear()
            for sid in ids:
                try:
                    await wake(client, task_queue, sid)
                except Exception as exc:  # noqa: BLE001 - logged; the workflow polls
                    log.warning("could not wake webhook delivery %s: %s", sid, exc)

    def call(ids: set[int]) -> None:
        waiting.update(ids)
        if waiting and not any(not task.done() for task in running):
            running[:] = [asyncio.get_running_loop().create_task(flush())]

    return call


async def wake_active(client: Client, db: Database, task_queue: str) -> int:
    """Wake (or start) the delivery workflow of every active subscription (a worker's start)."""
    ids = await webhooks.active_ids(db)
    for sid in ids:
        await wake(client, task_queue, sid)
    return len(ids)


async def wake_active_retrying(client: Client, db: Database, task_queue: str, *, first_delay: float = 1.0,
                               max_delay: float = 30.0) -> int:
    """:func:`wake_active`, retried with back-off until the store and the server answer.

    A worker that starts while the store is away (restarted during a PostgreSQL outage, say) serves
    its queue meanwhile instead of exiting on this first read: the deliveries only wait, and each
    change is woken again by its own projection anyway."""
    delay = first_delay
    while True:
        try:
            return await wake_active(client, db, task_queue)
        except Exception as exc:  # noqa: BLE001 - whatever the outage raises, the answer is to wait
            log.warning("could not wake the webhook deliveries (%s); again in %.1f s", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
