"""The ``wulian`` command line: run the platform, check a responsibility list, load demo data."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from rules.responsibility_list import InvalidList, load

app = typer.Typer(help="Wulian (五联) command line.", no_args_is_help=True)
rules_app = typer.Typer(help="The responsibility list (权责清单).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@app.command()
def run() -> None:
    """Run the whole platform (Temporal dev server, worker, web) like ``make run``."""
    from wulian.launcher import run as launch

    launch()


@rules_app.command("check")
def rules_check(file: Path) -> None:
    """Validate a list file; print every problem with its place; exit 1 if there is any."""
    try:
        lst = load(file)
    except InvalidList as exc:
        for problem in exc.problems:
            typer.echo(f"{file}: {problem}", err=True)
        typer.echo(f"{len(exc.problems)} problem(s); nothing activated", err=True)
        raise typer.Exit(1) from exc
    tiers: dict[str, int] = {}
    for cat in lst.categories:
        tiers[cat.tier] = tiers.get(cat.tier, 0) + 1
    typer.echo(f"{file}: version {lst.version}, {len(lst.categories)} categories, tiers {json.dumps(tiers)}: OK")


@app.command()
def seed() -> None:
    """Load the demo organisation and users into the store if it is empty (demo mode only)."""
    from store.db import Database
    from store.seed import is_empty, load_organisation
    from wulian.settings import get_settings

    settings = get_settings()
    if settings.mode != "demo":
        typer.echo("demo data is only loaded in demo mode (WULIAN_MODE=demo)", err=True)
        raise typer.Exit(2)

    async def _seed() -> None:
        db = Database(settings.db_url)
        await db.create_all()
        if await is_empty(db):
            counts = await load_organisation(db)
            typer.echo(f"loaded {counts['units']} units and {counts['users']} users")
        else:
            typer.echo("the store already has an organisation; nothing loaded")
        await db.dispose()

    asyncio.run(_seed())


if __name__ == "__main__":
    app()
