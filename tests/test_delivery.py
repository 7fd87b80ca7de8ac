"""Delivery adapters for reporter notices."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from activities.delivery import LoggingAdapter, WebhookAdapter, adapter_for
from workflows.types import Notice

NOTICE = Notice("EV-1.N1", "dispatched", "13800000000", "[ABC] 已受理", "2026-11-28T08:00:00+00:00")


async def test_webhook_posts_the_notice_with_an_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    adapter = WebhookAdapter("http://gateway.test/notices", transport=httpx.MockTransport(answer))
    await adapter.send(NOTICE)
    [request] = seen
    assert request.headers["Idempotency-Key"] == "EV-1.N1"
    assert json.loads(request.content) == {"notice_id": "EV-1.N1", "kind": "dispatched", "recipient": "13800000000",
                                           "body": "[ABC] 已受理", "created_at": "2026-11-28T08:00:00+00:00"}


async def test_webhook_failure_raises_so_the_activity_retries() -> None:
    adapter = WebhookAdapter("http://gateway.test/notices",
                             transport=httpx.MockTransport(lambda request: httpx.Response(503)))
    with pytest.raises(httpx.HTTPStatusError):
        await adapter.send(NOTICE)


async def test_without_a_webhook_notices_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert isinstance(adapter_for(""), LoggingAdapter)
    assert isinstance(adapter_for("http://x.test/"), WebhookAdapter)
    with caplog.at_level(logging.INFO, logger="wulian.delivery"):
        await LoggingAdapter().send(NOTICE)
    assert "EV-1.N1" in caplog.text and "13800000000" in caplog.text
