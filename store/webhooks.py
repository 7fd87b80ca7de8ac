"""Outbound webhooks in the store: subscriptions, the outbox of deliveries, and the signature.

- A **subscription** (``WebhookSubscription``) names its integration, a URL (``store.webhook_urls``),
  the change kinds wanted (:data:`CHANGE_KINDS`) and is active or not. Its signing secret
  (``whsec_`` + base64 of 32 bytes, the Standard Webhooks form) is derived from the server secret and
  a random nonce, shown once when it is created, and never stored (only its sha256).
- **Changes** are the event's timeline entries whose action is one of :data:`ACTION_KINDS`. The
  projection calls :func:`enqueue` in the event's own transaction for the entries it adds, writing
  one ``WebhookDelivery`` row per (active subscription wanting the kind, change): a change is queued
  exactly when its timeline entry is stored, once (the projection's version guard; the unique
  ``(subscription_id, change_id)``), and a crash loses nothing.
- **The body** (:func:`change_body`) holds the change id (``<event id>.<seq>``, the same on every
  attempt), event id, receipt code, kind, state, time (+08:00) and the handling unit; never a
  reporter's name or phone.
- **Signing** (:func:`sign`): Standard Webhooks, HMAC-SHA256 over ``id.timestamp.body`` with the
  secret's decoded bytes, header ``webhook-signature: v1,<base64>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from store import models
from store.admin_common import AdminError, audit
from store.db import Database
from store.timeutil import as_utc, parse_required, utcnow
from store.webhook_urls import TargetRefused, check_url
from workflows.types import EventSnapshot, TimelineEntry

#: The change kinds a subscription may ask for, in the order of an event's loop.
CHANGE_KINDS = ("reported", "dispatched", "claimed", "completed", "verified", "rated", "closed", "voided",
                "reopened", "escalated", "returned", "merged", "unmerged")
#: The timeline actions that are changes, and the kind each is. Claims of co-handling tasks
#: (``cohandle``), reminders, pauses, requests that wait for a supervisor and the like are not.
ACTION_KINDS = {
    "report": "reported",
    "route": "dispatched", "triage": "dispatched", "reassign": "dispatched",
    "claim": "claimed",
    "complete": "completed",
    "verify_pass": "verified",
    "rate": "rated", "accept_by_default": "rated",
    "close": "closed",
    "void": "voided",
    "reopen": "reopened",
    "escalate": "escalated", "force_escalate": "escalated", "escalate_overdue": "escalated",
    "approve_return": "returned",
    "merge": "merged", "unmerge": "unmerged",  # a duplicate merged into its primary, and the undo
}
#: What a new subscription gets when it names no kinds: all of them.
DEFAULT_KINDS = CHANGE_KINDS
#: A change's time is shown in the city's time (UTC+8, no daylight saving).
CITY_OFFSET = timezone(timedelta(hours=8))
MAX_INTEGRATION = 64
#: Active subscriptions an integration may have at once.
MAX_PER_INTEGRATION = 10
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, no secret


@dataclass(frozen=True)
class NewSubscription:
    """A subscription just created, with its secret (shown this once)."""

    subscription: models.WebhookSubscription
    secret: str


def derive_secret(server_secret: str, nonce: str) -> str:
    """The subscription's signing secret: ``whsec_`` + base64 of HMAC-SHA256(server secret, nonce)."""
    raw = hmac.new(server_secret.encode(), f"webhook-secret:{nonce}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def secret_hash(secret: str) -> str:
    """The sha256 kept to notice a secret that no longer derives (the server secret changed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (Standard Webhooks): ``v1,`` + base64 of HMAC-SHA256 of
    ``msg_id.timestamp.body`` keyed with the secret's base64-decoded part."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def check_kinds(kinds: list[str] | tuple[str, ...]) -> list[str]:
    """The kinds asked for, in :data:`CHANGE_KINDS` order, each once; an unknown one is refused."""
    wanted = set(kinds)
    unknown = sorted(wanted - set(CHANGE_KINDS))
    if unknown:
        raise AdminError("webhooks.err.kind", "kinds", kind=", ".join(unknown))
    if not wanted:
        raise AdminError("webhooks.err.no_kinds", "kinds")
    return [k for k in CHANGE_KINDS if k in wanted]


def check_integration(name: str) -> str:
    """The integration's name: 1–64 printable characters, trimmed."""
    name = (name or "").strip()
    if not name or len(name) > MAX_INTEGRATION or any(not c.isprintable() for c in name):
        raise AdminError("webhooks.err.integration", "integration", limit=MAX_INTEGRATION)
    return name


async def create(db: Database, *, integration: str, url: str, kinds: list[str] | tuple[str, ...],
                 actor: str, server_secret: str, allow_private: bool) -> NewSubscription:
    """Check and store a subscription (audited); the secret is returned this once. An integration
    has at most :data:`MAX_PER_INTEGRATION` active ones (each is a workflow and a row per change)."""
    integration = check_integration(integration)
    try:
        check_url(url, allow_private)
    except TargetRefused as exc:
        raise AdminError(f"webhooks.url.{exc.code}", "url") from None
    wanted = check_kinds(kinds)
    nonce = secrets.token_hex(16)
    secret = derive_secret(server_secret, nonce)
    async with db.transaction() as session:
        active = (await session.exec(select(func.count()).select_from(models.WebhookSubscription).where(
            models.WebhookSubscription.integration == integration,
            col(models.WebhookSubscription.active).is_(True)))).one()
        if active >= MAX_PER_INTEGRATION:
            raise AdminError("webhooks.err.too_many", "integration", limit=MAX_PER_INTEGRATION)
        row = models.WebhookSubscription(integration=integration, url=url, kinds=wanted, secret_nonce=nonce,
                                         secret_hash=secret_hash(secret), active=True, created_at=utcnow(),
                                         created_by=actor)
        session.add(row)
        await session.flush()
        audit(session, actor, "webhook_create", f"webhook:{row.id}",
              f"{integration} {url} {','.join(wanted)}")
        await session.commit()
        await session.refresh(row)
    return NewSubscription(row, secret)


async def deactivate(db: Database, subscription_id: int, actor: str) -> models.WebhookSubscription:
    """Stop a subscription (audited): nothing more is queued or sent for it; its log stays."""
    async with db.transaction() as session:
        row = await session.get(models.WebhookSubscription, subscription_id)
        if row is None:
            raise LookupError(subscription_id)
        if row.active:
            row.active, row.deactivated_at = False, utcnow()
            session.add(row)
            audit(session, actor, "webhook_deactivate", f"webhook:{subscription_id}", row.integration)
        await session.commit()
        await session.refresh(row)
    return row


async def subscriptions(db: Database) -> list[models.WebhookSubscription]:
    """Every subscription, newest first."""
    async with db.session() as session:
        rows = await session.exec(select(models.WebhookSubscription).order_by(
            col(models.WebhookSubscription.id).desc()))
        return list(rows.all())


async def get(db: Database, subscription_id: int) -> models.WebhookSubscription | None:
    """One subscription."""
    async with db.session() as session:
        return await session.get(models.WebhookSubscription, subscription_id)


async def active_ids(db: Database) -> list[int]:
    """The ids of the active subscriptions."""
    async with db.session() as session:
        rows = await session.exec(select(models.WebhookSubscription.id).where(
            col(models.WebhookSubscription.active).is_(True)))
        return [i for i in rows.all() if i is not None]


async def counts(db: Database) -> dict[int, dict[str, int]]:
    """Deliveries per subscription and status."""
    async with db.session() as session:
        rows = await session.exec(
            select(models.WebhookDelivery.subscription_id, models.WebhookDelivery.status, func.count())
            .group_by(col(models.WebhookDelivery.subscription_id), col(models.WebhookDelivery.status)))
        out: dict[int, dict[str, int]] = {}
        for sub, status, n in rows.all():
            out.setdefault(sub, {})[status] = n
        return out


async def deliveries(db: Database, subscription_id: int, *, limit: int = 200,
                     status: str | None = None) -> list[models.WebhookDelivery]:
    """A subscription's delivery log, newest first."""
    query = select(models.WebhookDelivery).where(models.WebhookDelivery.subscription_id == subscription_id)
    if status:
        query = query.where(models.WebhookDelivery.status == status)
    async with db.session() as session:
        rows = await session.exec(query.order_by(col(models.WebhookDelivery.id).desc()).limit(limit))
        return list(rows.all())


def change_id(event_id: str, seq: int) -> str:
    """The change's id: stable, the same on every attempt and replay."""
    return f"{event_id}.{seq}"


def _handling_unit(snap: EventSnapshot, entry: TimelineEntry) -> str | None:
    """The unit handling the event as of ``entry``: none before it is routed. (One projection may
    carry several changes: the report and its dispatch are projected together since issue 13.)"""
    if entry.action == "report" or entry.to_state == "intake":
        return None
    for task in reversed(snap.tasks):
        if task.kind == "handle":
            return task.unit
    return snap.decision.unit if snap.decision else None


def change_body(snap: EventSnapshot, entry: TimelineEntry, kind: str, *, own: bool = False) -> dict[str, Any]:
    """What a receiver gets for one change (Standard Webhooks' ``type``/``timestamp``/``data`` shape).
    No reporter's name or phone, no description, no tracking key. The receipt code (which opens the
    report's status and timeline to whoever holds it) only when ``own``: the subscriber's integration
    made the report; for every other event it is null."""
    at = parse_required(entry.at).astimezone(CITY_OFFSET).isoformat(timespec="seconds")
    return {
        "type": f"event.{kind}",
        "timestamp": at,
        "data": {
            "change_id": change_id(snap.event_id, entry.seq),
            "event_id": snap.event_id,
            "receipt_code": snap.receipt_code if own else None,
            "change": kind,
            "seq": entry.seq,
            "state": entry.to_state or snap.state,
            "at": at,
            "unit": _handling_unit(snap, entry),
            "category": snap.report.category,
        },
    }


async def enqueue(session: AsyncSession, snap: EventSnapshot, entries: list[TimelineEntry]) -> set[int]:
    """Queue the changes among ``entries`` (timeline entries just stored) for every active
    subscription that wants them, in the projection's transaction. Returns the subscriptions queued
    for (to wake their delivery workflows once the transaction is committed)."""
    changes = [(e, ACTION_KINDS[e.action]) for e in entries if e.action in ACTION_KINDS]
    if not changes:
        return set()
    subs = (await session.exec(select(models.WebhookSubscription).where(
        col(models.WebhookSubscription.active).is_(True)))).all()
    if not subs:
        return set()
    now = utcnow()
    woken: set[int] = set()
    maker = snap.report.integration
    for entry, kind in changes:
        bodies = {own: json.dumps(change_body(snap, entry, kind, own=own), ensure_ascii=False, separators=(",", ":"))
                  for own in (False, True)}
        for sub in subs:
            if kind in sub.kinds and sub.id is not None:
                body = bodies[bool(maker) and sub.integration == maker]
                session.add(models.WebhookDelivery(
                    subscription_id=sub.id, change_id=change_id(snap.event_id, entry.seq), event_id=snap.event_id,
                    seq=entry.seq, kind=kind, body=body, status="pending", created_at=now, queued_at=now))
                woken.add(sub.id)
    return woken


@dataclass(frozen=True)
class Next:
    """What a subscription's delivery workflow does next: stop (``inactive``), wait (no ``delivery_id``)
    or send one delivery."""

    inactive: bool
    delivery_id: int | None


async def next_pending(db: Database, subscription_id: int) -> Next:
    """The subscription's oldest pending delivery (``id`` order, so an event's changes go in order)."""
    async with db.session() as session:
        sub = await session.get(models.WebhookSubscription, subscription_id)
        if sub is None or not sub.active:
            return Next(True, None)
        found = (await session.exec(
            select(models.WebhookDelivery.id)
            .where(models.WebhookDelivery.subscription_id == subscription_id,
                   models.WebhookDelivery.status == "pending")
            .order_by(col(models.WebhookDelivery.id)).limit(1))).first()
        return Next(False, found)


async def load(db: Database, delivery_id: int) -> tuple[models.WebhookDelivery, models.WebhookSubscription] | None:
    """A delivery with its subscription."""
    async with db.session() as session:
        row = await session.get(models.WebhookDelivery, delivery_id)
        if row is None:
            return None
        sub = await session.get(models.WebhookSubscription, row.subscription_id)
        return (row, sub) if sub is not None else None


async def record(db: Database, delivery_id: int, *, status: str | None, http_status: int | None,
                 latency_ms: int | None, error: str | None) -> None:
    """Record one attempt (and its outcome: ``delivered``, ``dead`` or still pending with ``None``)."""
    async def work(db: Database) -> None:
        async with db.transaction() as session:
            row = await session.get(models.WebhookDelivery, delivery_id)
            if row is None or row.status != "pending":
                return
            now = utcnow()
            if status != "dead":
                row.attempts += 1
                row.last_attempt_at = now
                row.last_status, row.last_latency_ms = http_status, latency_ms
            row.last_error = error[:500] if error else None
            if status:
                row.status = status
                if status == "delivered":
                    row.delivered_at = now
            session.add(row)
            await session.commit()
    await db.write(work)


async def replay(db: Database, subscription_id: int, delivery_id: int, actor: str) -> models.WebhookDelivery:
    """Queue a delivered or dead-lettered change again (same change id and body; audited); the give-up
    age counts from now. A pending one is left as it is."""
    async with db.transaction() as session:
        row = await session.get(models.WebhookDelivery, delivery_id)
        if row is None or row.subscription_id != subscription_id:
            raise LookupError(delivery_id)
        sub = await session.get(models.WebhookSubscription, subscription_id)
        if sub is None or not sub.active:
            raise AdminError("webhooks.err.inactive")
        if row.status != "pending":
            await session.exec(update(models.WebhookDelivery).where(  # type: ignore[call-overload]
                col(models.WebhookDelivery.id) == delivery_id).values(
                status="pending", queued_at=utcnow(), replays=models.WebhookDelivery.replays + 1))
            audit(session, actor, "webhook_replay", f"webhook:{subscription_id}", row.change_id)
        await session.commit()
        await session.refresh(row)
    return row


def age_exceeded(row: models.WebhookDelivery, give_up_hours: float, now: datetime | None = None) -> bool:
    """Whether a pending delivery is past its give-up age."""
    return ((now or utcnow()) - as_utc(row.queued_at)) > timedelta(hours=give_up_hours)
