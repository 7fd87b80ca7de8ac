"""One report per one-time key: the report form's hidden key and the API's ``Idempotency-Key`` header.

Three quick clicks on the report form used to make three events (and the third was tiered up by the
repeat rule). Now:

- **The form** carries a key issued when it is rendered (:func:`issue_form_key`: the time, a random
  nonce and an HMAC of both with the server secret, so it cannot be made up and expires after 24 h).
- **The API** takes an ``Idempotency-Key`` header (1 to 255 visible ASCII characters, chosen by the
  client, e.g. a UUID), scoped to the caller: the logged-in user, else the client address
  (``web.client_address``), so nobody replays another's answer.

Either key is stored only as an HMAC of its scope and itself (:func:`key_hash`). :func:`once` claims the
key in the store (``store/idempotency.py``) before the workflow starts: of concurrent submissions with
the same key exactly one starts the event; the others wait up to ``intake_wait_seconds`` + 5 s for its
answer and give the same one. Within 24 hours the same key gives the same status and body, the same
event; the same key with another request is refused (:class:`KeyReused`: 422 on the API, as Stripe
does; on the form, the page says it was submitted and offers a fresh key).

The answer kept holds no tracking key (only its nonce and hash, as the event does): the key is derived
again from the nonce with the server secret (``store/receipts.py``) when the answer is given again.
That is what a browser needs: after three clicks it shows the answer to the last request only, so that
answer must carry the key too. Both the key hashes and the form keys' signatures use the server secret:
a new ``WULIAN_SECRET_KEY`` refuses the forms rendered before (the page asks to submit again) and
starts the API's keys anew; a kept answer whose tracking key no longer derives gives none rather than
a wrong one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from litestar import Request

from store import idempotency as keys
from store import models, receipts
from store.timeutil import as_utc, utcnow
from web import commands
from web.auth import resolve_user
from web.client_address import client_ip
from web.context import AppContext
from workflows.types import EventReport

#: The hidden field of the report form.
FORM_FIELD = "report_key"
#: The API's request header.
HEADER = "Idempotency-Key"
#: Longest ``Idempotency-Key`` (as Stripe's).
MAX_HEADER_KEY = 255
#: What an ``Idempotency-Key`` may hold: visible ASCII.
HEADER_KEY_PATTERN = r"^[!-~]+$"
#: Seconds between two looks at a claim another request is running.
POLL_SECONDS = 0.1
#: A claim older than this whose request has not answered is taken over (its request died).
MIN_STALE = timedelta(seconds=60)


class KeyReused(Exception):
    """The key was used with another request within 24 hours."""

    def __init__(self, first: models.IdempotencyKey) -> None:
        super().__init__("the key was used with another request")
        self.first = first


class StillRunning(Exception):
    """The request holding the key has not answered within the wait."""


@dataclass
class Answer:
    """The answer to a keyed report: status and body as first given (without the tracking key), the
    reporter's tracking key (derived again for a replay; None when it no longer derives or there is
    none) and whether it is a replay."""

    status: int
    body: dict[str, Any]
    tracking_key: str | None
    replayed: bool


#: Starts the report with what was prepared for it; returns the status and body to keep.
Run = Callable[[commands.Prepared], Awaitable[tuple[int, dict[str, Any]]]]


# ------------------------------------------------------------------ keys
def _sign(secret: str, text: str) -> str:
    digest = hmac.new(secret.encode(), f"report-form\x00{text}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def issue_form_key(secret: str, now: datetime | None = None) -> str:
    """A fresh key for a report form: ``<unix time>.<random nonce>.<HMAC of both>``."""
    text = f"{int((now or utcnow()).timestamp())}.{secrets.token_urlsafe(16)}"
    return f"{text}.{_sign(secret, text)}"


def form_key_problem(secret: str, key: str, now: datetime | None = None) -> str | None:
    """Why a submitted form key is refused (``invalid``: not one of ours; ``expired``: over 24 hours
    old, so its first answer may be gone), or None."""
    parts = key.split(".")
    # ASCII only: compare_digest raises on non-ASCII text (a 500 for a forged key), and ours are ASCII.
    if len(parts) != 3 or len(key) > 100 or not key.isascii() or not parts[0].isdigit():
        return "invalid"
    if not hmac.compare_digest(_sign(secret, f"{parts[0]}.{parts[1]}"), parts[2]):
        return "invalid"
    age = (now or utcnow()).timestamp() - int(parts[0])
    return "expired" if age > keys.TTL.total_seconds() or age < -300 else None


def key_hash(secret: str, scope: str, key: str) -> str:
    """What is stored of a key: an HMAC of its scope and itself with the server secret."""
    return hmac.new(secret.encode(), f"idempotency\x00{scope}\x00{key}".encode(), hashlib.sha256).hexdigest()


def request_hash(payload: dict[str, Any]) -> str:
    """The sha256 of a request's content (keys sorted), to tell the same request from another."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def api_scope(ctx: AppContext, request: Request) -> str:  # type: ignore[type-arg]
    """Whose ``Idempotency-Key`` it is: the logged-in user's, else the client address's."""
    user = await resolve_user(ctx, request, api=True)
    return f"user:{user.username}" if user else f"address:{client_ip(request, ctx.settings)}"


# ------------------------------------------------------------------ once
async def once(ctx: AppContext, report: EventReport, key: str, content: str, run: Run) -> Answer:
    """Run the report ``run`` once for the key hash ``key`` and request hash ``content``: the first
    request runs it, the others (concurrent, or within 24 hours) get its answer."""
    prepared = await commands.prepare(ctx, report)
    now = utcnow()
    grant = prepared.grant
    mine = models.IdempotencyKey(
        key_hash=key, request_hash=content, created_at=now, claimed_at=now, event_id=prepared.event_id,
        receipt_code=grant.receipt_code, tracking_nonce=grant.tracking_nonce,
        tracking_key_hash=grant.tracking_key_hash)
    settings = ctx.settings
    deadline = time.monotonic() + settings.intake_wait_seconds + 5
    stale = max(MIN_STALE, timedelta(seconds=3 * settings.intake_wait_seconds))
    held = await keys.claim(ctx.db, mine, now)
    while True:
        if held is None:  # claimed: this request starts the event
            return await _run(ctx, key, prepared, run)
        if held.request_hash != content:
            raise KeyReused(held)
        if held.status is not None:
            return _replay(ctx, held)
        if as_utc(held.claimed_at) < utcnow() - stale and await keys.take_over(ctx.db, held, utcnow()):
            return await _run(ctx, key, _prepared_again(ctx, held), run)
        if time.monotonic() > deadline:
            raise StillRunning()
        await asyncio.sleep(POLL_SECONDS)
        held = await keys.get(ctx.db, key)
        if held is None:  # expired and deleted meanwhile: claim it anew
            held = await keys.claim(ctx.db, mine, utcnow())


async def _run(ctx: AppContext, key: str, prepared: commands.Prepared, run: Run) -> Answer:
    try:
        status, body = await run(prepared)
    except Exception:
        # Failed (the workflow engine unreachable, a photo refused...): the next request with the key
        # takes over at once, with the same event id, so a start that did happen is found, not repeated.
        # A cancelled request leaves its claim to go stale instead (taken over after a minute).
        await keys.release(ctx.db, key)
        raise
    await keys.finish(ctx.db, key, status, body)
    return Answer(status, body, prepared.grant.tracking_key, replayed=False)


def _key_again(ctx: AppContext, row: models.IdempotencyKey) -> str | None:
    """The reporter's tracking key derived again from the row's nonce; None when it no longer derives
    to the hash the event keeps (the server secret changed)."""
    if not row.tracking_nonce:
        return None
    key = receipts.tracking_key(ctx.settings.secret(), row.tracking_nonce)
    return key if receipts.key_matches(key, row.tracking_key_hash) else None


def _replay(ctx: AppContext, row: models.IdempotencyKey) -> Answer:
    assert row.status is not None
    return Answer(row.status, dict(row.body or {}), _key_again(ctx, row), replayed=True)


def _prepared_again(ctx: AppContext, row: models.IdempotencyKey) -> commands.Prepared:
    grant = receipts.Grant(row.receipt_code, _key_again(ctx, row) or "", row.tracking_key_hash, row.tracking_nonce)
    return commands.Prepared(row.event_id, grant, adopt=True)
