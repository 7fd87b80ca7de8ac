"""``/admin/webhooks``: the outbound webhooks' subscriptions, administrators only.

- ``GET /admin/webhooks``: the subscriptions (integration, URL, kinds, active, deliveries by status)
  and the form to create one; ``POST /admin/webhooks`` creates it and shows its signing secret this
  once (the answer is a page, never a redirect, so the secret is in no URL or history);
- ``GET /admin/webhooks/<id>``: the delivery log (newest first; ``?status=dead`` for the dead
  letters): change, attempts, the receiver's last status, latency, last error, and a replay button;
- ``POST /admin/webhooks/<id>/deactivate`` and ``POST /admin/webhooks/<id>/deliveries/<n>/replay``.

Checks and audit live in ``store/webhooks.py`` (the CLI uses the same); a replay wakes the
subscription's delivery workflow when Temporal answers (else the workflow finds it when it next looks).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from store import webhooks
from store.admin_common import AdminError
from web.access import admins
from web.auth import CurrentUser
from web.context import AppContext
from web.errors import refusal
from web.i18n import language_of, translate
from workflows.webhook_delivery import wake

log = logging.getLogger("wulian.web.webhooks")

#: The statuses the log can be filtered by.
STATUSES = ("pending", "delivered", "dead")
#: The labels naming a form field in a refusal.
_FIELD_LABELS = {"integration": "webhooks.integration", "url": "webhooks.url", "kinds": "webhooks.kinds"}


def _flash(msg: str | None) -> str | None:
    return msg if msg and msg.startswith("webhooks.msg.") else None


def _labels(request: Request) -> dict[str, Any]:
    """The kinds' and statuses' names in the page's language (whole catalogue keys, looked up here)."""
    lang = language_of(request.cookies)
    return {"kind_label": {k: translate(lang, f"webhooks.kind.{k}") for k in webhooks.CHANGE_KINDS},
            "status_label": {s: translate(lang, f"webhooks.status.{s}") for s in STATUSES}}


async def _wake(ctx: AppContext, subscription_id: int) -> None:
    """Wake the subscription's delivery workflow (best effort: it also looks by itself)."""
    try:
        client = await asyncio.wait_for(ctx.temporal(), timeout=3)
        await asyncio.wait_for(wake(client, ctx.settings.temporal_task_queue, subscription_id), timeout=5)
    except Exception as exc:  # noqa: BLE001 - logged; the workflow polls
        log.warning("could not wake webhook delivery %s: %s", subscription_id, exc)


class AdminWebhookPages(Controller):
    """Outbound webhooks, for administrators."""

    path = "/admin/webhooks"
    guards = [admins]  # every route: administrators only (web/access.py)

    async def _list_context(self, ctx: AppContext, user: CurrentUser, request: Request) -> dict[str, Any]:
        return {**_labels(request), "user": user, "subs": await webhooks.subscriptions(ctx.db),
                "counts": await webhooks.counts(ctx.db),
                "kinds": webhooks.CHANGE_KINDS, "form": {}, "chosen": list(webhooks.DEFAULT_KINDS),
                "errors": [], "bad": "", "created": None, "secret": None,
                "allow_private": ctx.settings.webhook_allow_private_targets}

    @get("/")
    async def overview(self, ctx: AppContext, user: CurrentUser, request: Request,
                       msg: str | None = None) -> Response[Any]:
        """The subscriptions and the form to create one."""
        context = await self._list_context(ctx, user, request)
        context["msg"] = _flash(msg)
        return Template("admin_webhooks.html", context=context)

    @post("/", status_code=200)
    async def create(self, ctx: AppContext, user: CurrentUser, request: Request) -> Response[Any]:
        """Create a subscription; its secret is shown on the answer, once. Refused: the form back (400)."""
        form = await request.form()
        integration = str(form.get("integration") or "")
        url = str(form.get("url") or "")
        chosen = [str(k) for k in form.getall("kinds")] if "kinds" in form else []
        try:
            made = await webhooks.create(ctx.db, integration=integration, url=url, kinds=chosen, actor=user.username,
                                         server_secret=ctx.settings.secret(),
                                         allow_private=ctx.settings.webhook_allow_private_targets)
        except AdminError as exc:
            lang = language_of(request.cookies)
            context = await self._list_context(ctx, user, request)
            values = dict(exc.values)
            values.setdefault("field", translate(lang, _FIELD_LABELS.get(exc.field, exc.field)))
            context.update(errors=[translate(lang, exc.key, **values)], bad=exc.field,
                           form={"integration": integration, "url": url}, chosen=chosen)
            return Template("admin_webhooks.html", context=context, status_code=400)
        context = await self._list_context(ctx, user, request)
        context.update(created=made.subscription, secret=made.secret, msg="webhooks.msg.created")
        return Template("admin_webhooks.html", context=context)

    @get("/{subscription_id:int}")
    async def detail(self, ctx: AppContext, user: CurrentUser, request: Request, subscription_id: int,
                     status: str | None = None, msg: str | None = None) -> Response[Any]:
        """A subscription's delivery log."""
        sub = await webhooks.get(ctx.db, subscription_id)
        if sub is None:
            raise refusal(NotFoundException, "webhooks.err.missing")
        shown = status if status in STATUSES else None
        rows = await webhooks.deliveries(ctx.db, subscription_id, status=shown)
        return Template("admin_webhook.html", context={
            **_labels(request), "user": user, "sub": sub, "rows": rows, "status": shown, "statuses": STATUSES,
            "counts": (await webhooks.counts(ctx.db)).get(subscription_id, {}), "msg": _flash(msg)})

    @post("/{subscription_id:int}/deactivate", status_code=303)
    async def deactivate(self, ctx: AppContext, user: CurrentUser, subscription_id: int) -> Redirect:
        """Stop the subscription (audited)."""
        try:
            await webhooks.deactivate(ctx.db, subscription_id, user.username)
        except LookupError:
            raise refusal(NotFoundException, "webhooks.err.missing") from None
        await _wake(ctx, subscription_id)  # its workflow sees it is inactive and ends
        return Redirect(f"/admin/webhooks/{subscription_id}?msg=webhooks.msg.deactivated", status_code=303)

    @post("/{subscription_id:int}/deliveries/{delivery_id:int}/replay", status_code=303)
    async def replay(self, ctx: AppContext, user: CurrentUser, request: Request, subscription_id: int,
                     delivery_id: int) -> Response[Any]:
        """Queue a delivered or dead-lettered change again (audited)."""
        try:
            await webhooks.replay(ctx.db, subscription_id, delivery_id, user.username)
        except LookupError:
            raise refusal(NotFoundException, "webhooks.err.missing") from None
        except AdminError:
            return Redirect(f"/admin/webhooks/{subscription_id}?msg=webhooks.msg.inactive", status_code=303)
        await _wake(ctx, subscription_id)
        return Redirect(f"/admin/webhooks/{subscription_id}?msg=webhooks.msg.replayed", status_code=303)


ADMIN_WEBHOOK_CONTROLLERS = [AdminWebhookPages]
