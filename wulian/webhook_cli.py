"""``wulian webhook create|list|deactivate``: the outbound webhooks' subscriptions from the command
line (the same checks and audit as the admin page, ``store/webhooks.py``)."""

from __future__ import annotations

import asyncio

import typer

from store import models, webhooks
from store.admin_common import AdminError
from store.db import Database
from wulian.settings import get_settings

webhook_app = typer.Typer(help="Outbound webhooks: integrations told of every change of the events.",
                          no_args_is_help=True)

#: The CLI's English texts of the refusals (the pages show the catalogue's).
_REFUSALS = {
    "webhooks.err.integration": "the integration's name must be 1-64 printable characters",
    "webhooks.err.kind": "unknown change kind",
    "webhooks.err.no_kinds": "choose at least one change kind",
    "webhooks.url.empty": "the URL is empty",
    "webhooks.url.too_long": "the URL is longer than 500 characters",
    "webhooks.url.syntax": "the URL is not well-formed",
    "webhooks.url.scheme": "only http and https URLs",
    "webhooks.url.credentials": "no user name or password in the URL",
    "webhooks.url.host": "the URL has no valid host",
    "webhooks.url.forbidden_address": "the address is link-local, multicast, reserved or otherwise never allowed",
    "webhooks.url.private_address": "a loopback or private address (allowed only with "
                                    "WULIAN_WEBHOOK_ALLOW_PRIVATE_TARGETS=true)",
}


async def _db() -> Database:
    db = Database(get_settings().db_url)
    await db.upgrade()
    return db


@webhook_app.command("create")
def create(
    integration: str = typer.Argument(..., help="the integration's name (e.g. hotline-12345)"),
    url: str = typer.Argument(..., help="where its changes are POSTed (http or https)"),
    kind: list[str] = typer.Option([], "--kind", help=f"a change kind wanted (repeat; default all): "
                                                        f"{', '.join(webhooks.CHANGE_KINDS)}"),
    actor: str = typer.Option("cli", help="who creates it (recorded in the audit)"),
) -> None:
    """Subscribe an integration; prints the signing secret ONCE (it is not stored)."""
    settings = get_settings()

    async def work() -> webhooks.NewSubscription:
        db = await _db()
        try:
            return await webhooks.create(db, integration=integration, url=url, kinds=kind or webhooks.DEFAULT_KINDS,
                                         actor=actor, server_secret=settings.secret(),
                                         allow_private=settings.webhook_allow_private_targets)
        finally:
            await db.dispose()

    try:
        made = asyncio.run(work())
    except AdminError as exc:
        detail = f" ({exc.values['kind']})" if "kind" in exc.values else ""
        typer.echo(f"refused: {_REFUSALS.get(exc.key, exc.key)}{detail}", err=True)
        raise typer.Exit(1) from exc
    sub = made.subscription
    typer.echo(f"webhook {sub.id}: {sub.integration} → {sub.url} ({', '.join(sub.kinds)})")
    typer.echo(f"signing secret (shown once, keep it): {made.secret}")


@webhook_app.command("list")
def list_() -> None:
    """The subscriptions with their deliveries by status."""

    async def work() -> tuple[list[models.WebhookSubscription], dict[int, dict[str, int]]]:
        db = await _db()
        try:
            return list(await webhooks.subscriptions(db)), await webhooks.counts(db)
        finally:
            await db.dispose()

    subs, counts = asyncio.run(work())
    if not subs:
        typer.echo("no webhook subscriptions")
    for sub in subs:
        n = counts.get(sub.id or 0, {})
        state = "active" if sub.active else "inactive"
        typer.echo(f"{sub.id}\t{sub.integration}\t{state}\t{sub.url}\t{','.join(sub.kinds)}\t"
                   f"delivered {n.get('delivered', 0)}, pending {n.get('pending', 0)}, dead {n.get('dead', 0)}")


@webhook_app.command("deactivate")
def deactivate(
    subscription: int = typer.Argument(..., help="the subscription's number (wulian webhook list)"),
    actor: str = typer.Option("cli", help="who deactivates it (recorded in the audit)"),
) -> None:
    """Stop a subscription: nothing more is queued or sent; its delivery log stays."""

    async def work() -> None:
        db = await _db()
        try:
            await webhooks.deactivate(db, subscription, actor)
        finally:
            await db.dispose()

    try:
        asyncio.run(work())
    except LookupError as exc:
        typer.echo(f"no webhook subscription {subscription}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"webhook {subscription} deactivated")
