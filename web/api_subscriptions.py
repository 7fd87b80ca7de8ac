"""An integration's own webhook subscriptions over the JSON API (``/api/subscriptions``), with an API
key that has the ``subscribe`` scope (``X-API-Key``; web/api_keys.py).

An integration subscribes, lists, reads the delivery log of and ends only its own subscriptions: the
subscription's ``integration`` is the key's name, and another integration's subscription answers 404
(as one that does not exist). The rules of a subscription (the URL policy, the change kinds) are
``store/webhooks.py``'s, the same as on the administrators' page; the signing secret is in the answer
to the creation only. Every use of the key is audited by the guard, every creation and end by the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.status_codes import HTTP_201_CREATED

from store import models, webhooks
from store.admin_common import AdminError
from web.admin_webhooks import wake_subscription
from web.api_keys import scope_guard
from web.commands import CommandError
from web.context import AppContext
from web.i18n import translate

#: The delivery log's rows in an answer, newest first.
LOG_LIMIT = 200


@dataclass
class SubscriptionIn:
    """Body of ``POST /api/subscriptions``: the receiver's URL (http or https; see docs/WEBHOOKS.md for
    which addresses are refused) and the change kinds wanted (default: every kind)."""

    url: str
    kinds: list[str] = field(default_factory=lambda: list(webhooks.DEFAULT_KINDS))


@dataclass
class SubscriptionOut:
    """A subscription (never its secret)."""

    id: int
    url: str
    kinds: list[str]
    active: bool
    created_at: str

    @classmethod
    def of(cls, row: models.WebhookSubscription) -> SubscriptionOut:
        return cls(row.id or 0, row.url, list(row.kinds), row.active, row.created_at.isoformat())


@dataclass
class NewSubscriptionOut(SubscriptionOut):
    """A subscription just made, with its signing secret (``whsec_...``): shown this once."""

    secret: str = ""


@dataclass
class DeliveryOut:
    """One change sent (or to send) to a subscription: its change id, event, kind, status (pending,
    delivered, dead), attempts, the receiver's last HTTP status, latency and the kind of its last error
    (the detail is on the administrators' page)."""

    change_id: str
    event_id: str
    kind: str
    status: str
    attempts: int
    last_status: int | None
    last_latency_ms: int | None
    last_error: str | None
    queued_at: str
    delivered_at: str | None

    @classmethod
    def of(cls, row: models.WebhookDelivery) -> DeliveryOut:
        return cls(row.change_id, row.event_id, row.kind, row.status, row.attempts, row.last_status,
                   row.last_latency_ms, _error_kind(row.last_error), row.queued_at.isoformat(),
                   row.delivered_at.isoformat() if row.delivered_at else None)


def _error_kind(error: str | None) -> str | None:
    """The kind of the last error without its detail ("target refused", "ConnectError", "HTTP 500"):
    the detail can name the address an internal host name resolved to, which is for administrators."""
    return error.split(":", 1)[0][:60] if error else None


def _integration(request: Request[Any, Any, Any]) -> Any:
    return request.state.integration  # set by the scope guard


async def _own(ctx: AppContext, request: Request[Any, Any, Any], subscription_id: int) -> models.WebhookSubscription:
    """The caller's subscription ``subscription_id``; another integration's is as missing (404)."""
    row = await webhooks.get(ctx.db, subscription_id)
    if row is None or row.integration != _integration(request).name:
        raise CommandError.keyed(404, "webhooks.err.missing")
    return row


class SubscriptionApi(Controller):
    """Webhook subscriptions of the integration whose key has ``subscribe``."""

    path = "/api/subscriptions"
    guards = [scope_guard("subscribe")]

    @get("/")
    async def list_own(self, ctx: AppContext, request: Request[Any, Any, Any]) -> list[SubscriptionOut]:
        """The caller's subscriptions, newest first."""
        name = _integration(request).name
        return [SubscriptionOut.of(r) for r in await webhooks.subscriptions(ctx.db) if r.integration == name]

    @post("/", status_code=HTTP_201_CREATED)
    async def subscribe(self, ctx: AppContext, request: Request[Any, Any, Any],
                        data: SubscriptionIn) -> NewSubscriptionOut:
        """Subscribe ``url`` to the changes ``kinds`` of every event (400 naming the refused field:
        an address the URL policy refuses, an unknown kind, no kind)."""
        integration = _integration(request)
        try:
            made = await webhooks.create(ctx.db, integration=integration.name, url=data.url, kinds=data.kinds,
                                         actor=integration.actor, server_secret=ctx.settings.secret(),
                                         allow_private=ctx.settings.webhook_allow_private_targets)
        except AdminError as exc:
            raise CommandError(400, f"{exc.field}: {translate('en', exc.key, **exc.values)}", exc.key,
                               **exc.values) from None
        await wake_subscription(ctx, made.subscription.id or 0)
        out = SubscriptionOut.of(made.subscription)
        return NewSubscriptionOut(**vars(out), secret=made.secret)

    @get("/{subscription_id:int}/deliveries")
    async def deliveries(self, ctx: AppContext, request: Request[Any, Any, Any], subscription_id: int,
                         status: str | None = None) -> list[DeliveryOut]:
        """The subscription's delivery log, newest first (at most 200; ``status``: pending, delivered
        or dead)."""
        await _own(ctx, request, subscription_id)
        shown = status if status in ("pending", "delivered", "dead") else None
        rows = await webhooks.deliveries(ctx.db, subscription_id, limit=LOG_LIMIT, status=shown)
        return [DeliveryOut.of(r) for r in rows]

    @delete("/{subscription_id:int}", status_code=200)
    async def unsubscribe(self, ctx: AppContext, request: Request[Any, Any, Any],
                          subscription_id: int) -> SubscriptionOut:
        """End the subscription: nothing more is queued or sent; its log stays."""
        await _own(ctx, request, subscription_id)
        row = await webhooks.deactivate(ctx.db, subscription_id, _integration(request).actor)
        await wake_subscription(ctx, subscription_id)  # its workflow sees it is inactive and ends
        return SubscriptionOut.of(row)
