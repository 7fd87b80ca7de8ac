"""Delivery adapters for reporter notices: a webhook for real, and an SMS/WeChat interface whose
default implementation only logs (a real gateway plugs in behind the same interface)."""

from __future__ import annotations

import logging
import re
from typing import Protocol

import httpx

from workflows.types import Notice

log = logging.getLogger("wulian.delivery")


class Adapter(Protocol):
    """Sends one notice; raises on failure (the activity's retry policy then retries it)."""

    channel: str

    async def send(self, notice: Notice) -> None:
        """Deliver ``notice``; idempotent on the receiver's side by ``notice.notice_id``."""
        ...


_KEY_IN_LINK = re.compile(r"([?&]key=)[^&\s]+")


def mask_keys(text: str) -> str:
    """``text`` with the key of any tracking link replaced by ``…`` (for logs)."""
    return _KEY_IN_LINK.sub(r"\1…", text)


class LoggingAdapter:
    """SMS/WeChat stand-in: writes the message to the log (no gateway configured)."""

    channel = "sms-log"

    async def send(self, notice: Notice) -> None:
        """Log the notice as if it had been sent (a tracking key in it masked: the log keeps no key)."""
        log.info("notice %s to %s: %s", notice.notice_id, notice.recipient, mask_keys(notice.body))


class WebhookAdapter:
    """POSTs the notice as JSON to a URL; any non-2xx answer is a failure to retry."""

    channel = "webhook"

    def __init__(self, url: str, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.transport = transport  # tests pass a mock transport

    async def send(self, notice: Notice) -> None:
        """POST the notice; the receiver deduplicates by ``Idempotency-Key``."""
        body = {"notice_id": notice.notice_id, "kind": notice.kind, "recipient": notice.recipient,
                "body": notice.body, "created_at": notice.created_at}
        async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
            response = await client.post(self.url, json=body, headers={"Idempotency-Key": notice.notice_id})
        response.raise_for_status()


def adapter_for(webhook_url: str) -> Adapter:
    """The webhook adapter when a URL is configured, else the logging SMS/WeChat stand-in."""
    return WebhookAdapter(webhook_url) if webhook_url else LoggingAdapter()
