"""The ``wulian`` command line: run the platform, check a responsibility list, load demo data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from rules.responsibility_list import InvalidList, load
from wulian.webhook_cli import webhook_app

app = typer.Typer(help="Wulian (五联) command line.", no_args_is_help=True)
rules_app = typer.Typer(help="The responsibility list (权责清单).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
db_app = typer.Typer(help="The store's schema (migrations in store/migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
store_app = typer.Typer(help="The store's contents, a projection of the event workflows.", no_args_is_help=True)
app.add_typer(store_app, name="store")
assessment_app = typer.Typer(help="The assessment's facts and rollups (督查考核).", no_args_is_help=True)
app.add_typer(assessment_app, name="assessment")
demo_app = typer.Typer(help="Demo data (demo mode only).", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
schemes_app = typer.Typer(help="Assessment schemes (考核方案): scores from indicators.", no_args_is_help=True)
app.add_typer(schemes_app, name="schemes")
reports_app = typer.Typer(help="The monthly and annual reports (考核报告).", no_args_is_help=True)
app.add_typer(reports_app, name="reports")
app.add_typer(webhook_app, name="webhook")
import_app = typer.Typer(help="Importing reports from other systems (12345 hotline).", no_args_is_help=True)
app.add_typer(import_app, name="import")
apikey_app = typer.Typer(help="Integrations' API keys (JSON API and Open311).", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
temporal_app = typer.Typer(help="The Temporal namespace the platform runs on.", no_args_is_help=True)
app.add_typer(temporal_app, name="temporal")
process_app = typer.Typer(help="Process definitions beyond problem events (代办, 微心愿, 志愿活动, 居民说事).",
                          no_args_is_help=True)
app.add_typer(process_app, name="process")


@temporal_app.command("setup")
def temporal_setup() -> None:
    """Register the search attributes and create the report schedules on the configured Temporal
    (a cluster: what ``make run`` does for its dev server). Safe to repeat."""
    from wulian import temporal_connect
    from wulian.report_schedules import ensure_report_schedules
    from wulian.settings import get_settings
    from wulian.temporal_setup import ensure_search_attributes

    async def go() -> list[str]:
        settings = get_settings()
        client = await temporal_connect.connect(settings)
        await ensure_search_attributes(client, settings.temporal_namespace)
        return await ensure_report_schedules(client, settings.temporal_task_queue)

    created = asyncio.run(go())
    typer.echo(f"search attributes registered; report schedules created: {len(created)}")


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
        _print_problems(file, exc.problems)
        raise typer.Exit(1) from exc
    tiers: dict[str, int] = {}
    for cat in lst.categories:
        tiers[cat.tier] = tiers.get(cat.tier, 0) + 1
    typer.echo(f"{file}: version {lst.version}, {len(lst.categories)} categories, tiers {json.dumps(tiers)}: OK")


@process_app.command("check")
def process_check(file: Path) -> None:
    """Validate a process definition file; print every problem with its place; exit 1 if there is any."""
    from processes.definition import InvalidDefinition
    from processes.definition import load as load_definition

    try:
        definition = load_definition(file)
    except InvalidDefinition as exc:
        _print_problems(file, exc.problems, tail="")
        raise typer.Exit(1) from exc
    tasks = sum(1 for s in definition.states if s.task is not None)
    typer.echo(f"{file}: {definition.kind} version {definition.version}, {len(definition.states)} states, "
               f"{tasks} tasks, {len(definition.transitions)} moves: OK")


@process_app.command("activate")
def process_activate(
    file: Path, actor: str = typer.Option("cli", help="who activates it (recorded in the audit)"),
) -> None:
    """Check a definition file, dry-run it, show what changed against its kind's active version,
    store it and make it the active one (audited); nothing is stored when it has a problem."""
    from store import process_versions
    from wulian.process_admin import check_content, diff_lines, dry_run, store_checked

    try:
        content = file.read_bytes()
    except OSError as exc:
        typer.echo(f"{file}: cannot read: {exc}", err=True)
        raise typer.Exit(1) from exc
    result = check_content(content)
    if result.parsed is None:
        _print_problems(file, result.problems)
        raise typer.Exit(1)
    definition = result.parsed
    run = dry_run(definition)
    for step in run.steps:
        typer.echo(f"dry run: {step.state} · {step.title} · {step.taker} → {step.outcome}")
    if run.final is None:
        typer.echo(f"{file}: the dry run did not reach a final state: {run.stopped}; nothing activated", err=True)
        raise typer.Exit(1)

    async def _activate() -> int:
        db = _store()
        await db.upgrade()
        try:
            await process_versions.ensure_shipped(db)
            active = await process_versions.PROCESSES.active(db, definition.kind)
            if active is not None:
                for line in diff_lines(process_versions.parsed(active), definition):
                    typer.echo(f"{active.version} → {definition.version}: {line}")
            row = await store_checked(db, result, actor, now=True)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            return 1
        finally:
            await db.dispose()
        typer.echo(f"{row.kind} version {row.version} is now active for new instances")
        return 0

    code = asyncio.run(_activate())
    if code:
        raise typer.Exit(code)


@process_app.command("versions")
def process_versions_list() -> None:
    """List the stored process definitions by kind; each kind's active version is marked with *."""
    from store import process_versions

    async def _versions() -> None:
        db = _store()
        await db.upgrade()
        try:
            await process_versions.ensure_shipped(db)
            for row in sorted(await process_versions.list_versions(db), key=lambda r: (r.kind, r.uploaded_at)):
                mark = "*" if row.active else " "
                typer.echo(f"{mark} {row.kind} {row.version}  {row.title}  by {row.uploaded_by}  {row.uploaded_at}")
        finally:
            await db.dispose()

    asyncio.run(_versions())


@process_app.command("diff")
def process_diff(kind: str, old: str, new: str) -> None:
    """The changes between two stored versions of a process kind."""
    from store import process_versions
    from wulian.process_admin import diff_lines

    async def _diff() -> int:
        db = _store()
        await db.upgrade()
        try:
            await process_versions.ensure_shipped(db)
            rows = [await process_versions.get_version(db, kind, v) for v in (old, new)]
        finally:
            await db.dispose()
        if rows[0] is None or rows[1] is None:
            typer.echo("unknown version; see 'wulian process versions'", err=True)
            return 1
        lines = diff_lines(process_versions.parsed(rows[0]), process_versions.parsed(rows[1]))
        for line in lines or ["(no changes)"]:
            typer.echo(line)
        return 0

    code = asyncio.run(_diff())
    if code:
        raise typer.Exit(code)


def _store():  # type: ignore[no-untyped-def]
    from store.db import Database
    from wulian.settings import get_settings

    return Database(get_settings().db_url)


@rules_app.command("activate")
def rules_activate(
    file: Path,
    actor: str = typer.Option("cli", help="who activates it (recorded in the audit)"),
    last: int = typer.Option(200, help="dry-run over this many recent events first"),
) -> None:
    """Check a list file against the organisation, show what would route differently, activate it."""
    from wulian.rule_admin import activate, check_content, dry_run
    from wulian.rule_registry import ensure_active

    try:
        content = file.read_bytes()
    except OSError as exc:
        typer.echo(f"{file}: cannot read: {exc}", err=True)
        raise typer.Exit(1) from exc

    async def _activate() -> int:
        db = _store()
        await db.upgrade()
        await ensure_active(db)  # the shipped list is version one of the history
        try:
            result = await check_content(db, content)
            if result.parsed is None:
                _print_problems(file, result.problems)
                return 1
            checked, changes = await dry_run(db, result.parsed, last)
            typer.echo(f"dry run over {checked} recent event(s): {len(changes)} would route differently")
            for change in changes[:20]:
                typer.echo(f"  {change.event_id} {change.category}: {change.before} → {change.after}")
            try:
                row = await activate(db, result, actor)
            except ValueError as exc:
                typer.echo(str(exc), err=True)
                return 1
            typer.echo(f"version {row.version} ({row.categories} categories) is now active for new events")
            return 0
        finally:
            await db.dispose()

    code = asyncio.run(_activate())
    if code:
        raise typer.Exit(code)


@rules_app.command("versions")
def rules_versions() -> None:
    """List the stored versions; the active one is marked with *."""
    from store import rule_lists

    async def _versions() -> None:
        db = _store()
        await db.upgrade()
        for row in await rule_lists.list_versions(db):
            mark = "*" if row.active else " "
            typer.echo(f"{mark} {row.version}  {row.categories} categories  by {row.uploaded_by}  {row.uploaded_at}")
        await db.dispose()

    asyncio.run(_versions())


@rules_app.command("diff")
def rules_diff(old: str, new: str) -> None:
    """The changes between two stored versions."""
    from rules.diff import diff_lists
    from store import rule_lists
    from wulian.rule_registry import parse_list

    async def _diff() -> int:
        db = _store()
        await db.upgrade()
        rows = [await rule_lists.get_version(db, v) for v in (old, new)]
        await db.dispose()
        if rows[0] is None or rows[1] is None:
            typer.echo("unknown version; see 'wulian rules versions'", err=True)
            return 1
        for line in diff_lists(parse_list(rows[0].content), parse_list(rows[1].content)).lines():
            typer.echo(line)
        return 0

    code = asyncio.run(_diff())
    if code:
        raise typer.Exit(code)


def _print_problems(file: Path, problems: Sequence[Any], tail: str = "; nothing activated") -> None:
    """Every problem of ``file`` with its place on stderr, then their count (and ``tail``)."""
    for problem in problems:
        typer.echo(f"{file}: {problem}", err=True)
    typer.echo(f"{len(problems)} problem(s){tail}", err=True)


@schemes_app.command("check")
def schemes_check(file: Path) -> None:
    """Validate a scheme file; print every problem with its place; exit 1 if there is any."""
    from assessment.schemes import InvalidScheme
    from assessment.schemes import load as load_scheme

    try:
        scheme = load_scheme(file)
    except InvalidScheme as exc:
        _print_problems(file, exc.problems)
        raise typer.Exit(1) from exc
    grid = scheme.grid
    typer.echo(f"{file}: version {scheme.version}, {len(scheme.composite.terms)} composite terms, "
               f"{len(grid.duties)} duties, {len(grid.standards)} standards, {len(grid.rules)} rules: OK")


@schemes_app.command("activate")
def schemes_activate(
    file: Path, actor: str = typer.Option("cli", help="who activates it (recorded in the audit)"),
) -> None:
    """Check a scheme file, store it and make it the active one (audited); nothing is stored when it
    has a problem."""
    from wulian.scheme_admin import check_content, store_checked

    try:
        content = file.read_bytes()
    except OSError as exc:
        typer.echo(f"{file}: cannot read: {exc}", err=True)
        raise typer.Exit(1) from exc
    result = check_content(content)
    if result.parsed is None:
        _print_problems(file, result.problems)
        raise typer.Exit(1)

    async def _activate() -> int:
        db = _store()
        await db.upgrade()
        try:
            row = await store_checked(db, result, actor, now=True)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            return 1
        finally:
            await db.dispose()
        typer.echo(f"scheme version {row.version} is now active")
        return 0

    code = asyncio.run(_activate())
    if code:
        raise typer.Exit(code)


@schemes_app.command("versions")
def schemes_versions() -> None:
    """List the stored scheme versions; the active one is marked with *."""
    from store import schemes as scheme_store

    async def _versions() -> None:
        db = _store()
        await db.upgrade()
        try:
            await scheme_store.ensure_default(db)
            for row in await scheme_store.list_versions(db):
                mark = "*" if row.active else " "
                typer.echo(f"{mark} {row.version}  {row.title}  by {row.uploaded_by}  {row.uploaded_at}")
        finally:
            await db.dispose()

    asyncio.run(_versions())


def _shown_store() -> str:
    """The configured store's URL without its password."""
    from sqlalchemy.engine import make_url

    from wulian.settings import get_settings

    return "store: " + make_url(get_settings().db_url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Option("head", help="the revision to reach")) -> None:
    """Migrate the configured store (WULIAN_DATABASE_URL) to the newest revision; print before and after."""
    from store.schema import SchemaChange

    async def _upgrade() -> SchemaChange:
        db = _store()
        try:
            return await db.upgrade(revision)
        finally:
            await db.dispose()

    typer.echo(_shown_store())
    typer.echo(asyncio.run(_upgrade()).describe())


@db_app.command("current")
def db_current() -> None:
    """Print the revision of the configured store and the newest revision of this checkout."""
    from store.schema import current_revision, head_revision

    async def _current() -> str | None:
        db = _store()
        try:
            return await current_revision(db)
        finally:
            await db.dispose()

    typer.echo(_shown_store())
    typer.echo(f"revision: {asyncio.run(_current()) or 'none'}; newest: {head_revision()}")


@db_app.command("revision")
def db_revision(message: str = typer.Option(..., "-m", "--message", help="what the revision changes")) -> None:
    """Write the next revision for model changes (autogenerated against a scratch store; review it)."""
    import tempfile

    from store.schema import new_revision

    with tempfile.TemporaryDirectory() as scratch:
        path = asyncio.run(new_revision(message, Path(scratch)))
    typer.echo(f"wrote {path}; review it (renames, data backfills) before committing")


@store_app.command("repair")
def store_repair(
    since: str = typer.Option("", help="only workflows started since: 2026-12-01, an ISO date and time, or 24h, 7d"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what is behind, change nothing"),
    concurrency: int = typer.Option(8, min=1, max=64, help="workflow snapshots read at once"),
) -> None:
    """Catch the store up from the workflows: re-project every event whose snapshot is missing from
    the store or newer than it (running workflows: their live snapshot; completed ones: their result),
    and settle notice rows left pending that the workflow has delivered.

    Idempotent, and safe while workers run. Exit status 1 when something stays behind or unreadable.
    """
    from wulian import temporal_connect
    from wulian.settings import get_settings
    from wulian.store_repair import RepairReport, parse_since, repair

    settings = get_settings()
    try:
        moment = parse_since(since) if since else None
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc

    def progress(report: RepairReport) -> None:
        verb = "would re-project" if dry_run else "re-projected"
        typer.echo(f"  {report.checked}/{report.listed} checked: {len(report.behind)} behind, "
                   f"{report.repaired if not dry_run else len(report.behind)} {verb}, "
                   f"{len(report.unreadable)} unreadable")

    async def _repair() -> RepairReport:
        client = await temporal_connect.connect(settings)
        db = _store()
        try:
            return await repair(client, db, since=moment, dry_run=dry_run, concurrency=concurrency, progress=progress)
        finally:
            await db.dispose()

    typer.echo(_shown_store())
    typer.echo(f"temporal: {settings.temporal_address} (namespace {settings.temporal_namespace})"
               + (f"; workflows started since {moment.isoformat()}" if moment else ""))
    report = asyncio.run(_repair())
    for lag in report.behind[:20]:
        typer.echo(f"  {lag.event_id}: workflow at version {lag.version}, store {lag.why}")
    if len(report.behind) > 20:
        typer.echo(f"  ... and {len(report.behind) - 20} more")
    for event_id, reason in list(report.unreadable.items())[:20]:
        typer.echo(f"  {event_id}: unreadable: {reason}", err=True)
    typer.echo(report.describe())
    left = len(report.behind) if dry_run else len(report.behind) - report.repaired - report.overtaken
    if left or report.unreadable:
        raise typer.Exit(1)


@app.command("check")
def check(
    receipts: Path | None = typer.Option(None, help="JSON lines of accepted reports "
                                         "({event_id, receipt_code, status, key}) written by a load generator"),
    exclusive: bool = typer.Option(False, "--exclusive", help="the platform served only those reports: an event "
                                   "no receipt names counts as a duplicate"),
    concurrency: int = typer.Option(8, min=1, max=64, help="workflow snapshots read at once"),
    settle_rounds: int = typer.Option(5, min=0, help="times an event that differs is read again"),
) -> None:
    """Prove the platform's invariants on the running platform (Temporal and the store of the
    settings): every accepted report exists once in Temporal and in the store, no receipt code is
    duplicated, each workflow's snapshot equals the store's event, tasks and timeline, every notice is
    delivered or visibly failing, no task is held by two people (wulian/invariants.py).

    Exit status 1 when any invariant fails.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from wulian import temporal_connect
    from wulian.invariants import CheckReport, Receipt, read_receipts
    from wulian.invariants import check as run_check
    from wulian.settings import get_settings

    settings = get_settings()
    accepted: list[Receipt] | None = read_receipts(receipts) if receipts is not None else None
    console = Console(stderr=True)

    async def _check() -> CheckReport:
        client = await temporal_connect.connect(settings)
        db = _store()
        try:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          console=console, transient=True) as bar:
                job = bar.add_task("workflows checked", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(job, completed=done, total=total)

                return await run_check(client, db, accepted, exclusive=exclusive, concurrency=concurrency,
                                       settle_rounds=settle_rounds, progress=progress)
        finally:
            await db.dispose()

    typer.echo(_shown_store())
    typer.echo(f"temporal: {settings.temporal_address} (namespace {settings.temporal_namespace})")
    report = asyncio.run(_check())
    for line in report.problems():
        typer.echo(f"  {line}", err=True)
    counts = report.counts()
    typer.echo(f"checked {counts['checked']} of {counts['listed']} event workflows; accepted {counts['accepted']}, "
               f"lost {counts['lost']}, duplicated {counts['duplicated']}, inconsistent {counts['inconsistent']}, "
               f"undelivered notices {counts['undelivered']} ({counts['failing_notices']} visibly failing), "
               f"double claims {counts['double_claims']}, unreadable {counts['unreadable']}")
    typer.echo("OK: every invariant holds" if report.ok else "FAILED: an invariant does not hold")
    if not report.ok:
        raise typer.Exit(1)


@assessment_app.command("rebuild")
def assessment_rebuild() -> None:
    """Recount the assessment from the events in the store: every fact and rollup is computed again
    (after an upgrade, or to check the rollups). Stop the workers first: a projection running
    meanwhile could be counted twice."""
    from store.assessment import RebuildReport, rebuild

    def progress(report: RebuildReport) -> None:
        typer.echo(f"  {report.events} events, {report.facts} facts")

    async def _rebuild() -> RebuildReport:
        db = _store()
        try:
            await db.upgrade()
            return await rebuild(db, progress=progress)
        finally:
            await db.dispose()

    typer.echo(_shown_store())
    report = asyncio.run(_rebuild())
    typer.echo(f"rebuilt: {report.events} events, {report.facts} facts, {report.rollup_rows} rollup rows")


@reports_app.command("recompute")
def reports_recompute(
    period: str = typer.Argument(..., help="a month (2026-11) or a year (2026) that has ended"),
    reason: str = typer.Option(..., help="why (kept with the new revision and in the audit)"),
    actor: str = typer.Option("cli", help="who asks (recorded in the audit)"),
    wait: float = typer.Option(600, help="seconds to wait for the run"),
) -> None:
    """Compute a period's report again: a PeriodReport run (a worker must be running) stores the next
    revision, audited; the earlier revisions are kept. A period without a report gets revision 1."""
    import uuid
    from datetime import UTC, datetime

    from workflows.period_report import BadPeriod, PeriodReport, ReportRequest, has_ended, parse_period
    from wulian import temporal_connect
    from wulian.settings import get_settings

    try:
        wanted = parse_period(period)
    except BadPeriod as exc:
        typer.echo(f"{period}: not a month (YYYY-MM) or a year (YYYY)", err=True)
        raise typer.Exit(2) from exc
    if not has_ended(wanted, datetime.now(UTC)):
        typer.echo(f"{wanted.code} has not ended yet: no report can be made", err=True)
        raise typer.Exit(2)
    if not reason.strip() or len(reason) > 500:
        typer.echo("give a reason of 1 to 500 characters", err=True)
        raise typer.Exit(2)
    settings = get_settings()

    async def _recompute() -> None:
        client = await temporal_connect.connect(settings)
        handle = await client.start_workflow(
            PeriodReport.run,
            ReportRequest(period=wanted.code, recompute=True, actor=actor[:64], reason=reason.strip()),
            id=f"report-{wanted.code}-recompute-{uuid.uuid4().hex[:12]}", task_queue=settings.temporal_task_queue,
        )
        typer.echo(f"started {handle.id}")
        result = await asyncio.wait_for(handle.result(), wait)
        verb = "stored" if result.created else "found"
        typer.echo(f"{result.period}: revision {result.revision} {verb} ({result.units} units, "
                   f"scheme {result.scheme_version or 'none'})")

    try:
        asyncio.run(_recompute())
    except TimeoutError as exc:
        typer.echo(f"the run did not finish within {wait:.0f} s (is a worker running?); it goes on", err=True)
        raise typer.Exit(1) from exc


@reports_app.command("list")
def reports_list() -> None:
    """The periods with a report, newest first, with their newest revision."""
    from store import reports

    async def _list() -> None:
        db = _store()
        await db.upgrade()
        for row in await reports.periods(db):
            typer.echo(f"{row.period:8} revision {row.revision} of {row.revisions}  {row.computed_at}  "
                       f"by {row.computed_by} ({row.trigger})  scheme {row.scheme_version or '-'}")
        await db.dispose()

    asyncio.run(_list())


@import_app.command("hotline")
def import_hotline(
    file: Path = typer.Argument(..., help="a 12345 export: CSV with a header row, or JSON lines (.jsonl)"),
    rejected: Path | None = typer.Option(None, help="the CSV of rejected rows (default: FILE.rejected.csv)"),
    concurrency: int = typer.Option(16, min=1, max=128, help="workflow starts at once"),
    min_score: float = typer.Option(4.5, help="the suggestion score a category needs when the row gives no code"),
    encoding: str = typer.Option("utf-8-sig", help="the file's encoding (gb18030 for some older exports)"),
    lang: str = typer.Option("zh-CN", help="the language of this command's messages (zh-CN or en)"),
    address: str = typer.Option("", help="Temporal's address (default: WULIAN_TEMPORAL_ADDRESS)"),
    task_queue: str = typer.Option("", help="the workers' task queue (default: WULIAN_TEMPORAL_TASK_QUEUE)"),
) -> None:
    """Import hotline tickets as reports (source hotline, external id the ticket number): idempotent per
    ticket, rejected rows with reasons in a CSV, safe to stop with Ctrl-C and run again (see
    docs/hotline_import.md). Exit status 1 when rows were rejected or failed, 130 when interrupted."""
    from wulian.hotline_import import run_cli

    code = run_cli(file, rejected=rejected, concurrency=concurrency, min_score=min_score, encoding=encoding,
                   lang=lang if lang in ("zh-CN", "en") else "zh-CN", address=address, task_queue=task_queue)
    if code:
        raise typer.Exit(code)


@apikey_app.command("create")
def apikey_create(
    name: str,
    scope: list[str] = typer.Option(None, "--scope",
                                    help="report, read or subscribe (repeatable); default report and read"),
    actor: str = typer.Option("cli", help="who issues it (recorded in the audit)"),
) -> None:
    """Issue a key for the integration NAME and print it once (only its hash is stored)."""
    from store import api_keys

    async def _create() -> tuple[str, str]:
        db = _store()
        await db.upgrade()
        try:
            row, key = await api_keys.create_key(db, name, tuple(scope or ()), actor)
            return row.scopes, key
        finally:
            await db.dispose()

    try:
        scopes, key = asyncio.run(_create())
    except api_keys.ApiKeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"integration {name}, scopes {scopes}; the key (shown only now):", err=True)
    typer.echo(key)


@apikey_app.command("list")
def apikey_list() -> None:
    """Every integration's key: name, scopes, issued, last used, revoked (never the key)."""
    from store import api_keys

    async def _list() -> None:
        db = _store()
        await db.upgrade()
        for row in await api_keys.list_keys(db):
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M} by {row.revoked_by}" if row.revoked_at else "active"
            used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
            typer.echo(f"{row.name}  {row.scopes}  issued {row.created_at:%Y-%m-%d %H:%M} by {row.created_by}  "
                       f"last used {used}  {state}")
        await db.dispose()

    asyncio.run(_list())


@apikey_app.command("revoke")
def apikey_revoke(name: str, actor: str = typer.Option("cli", help="who revokes it (recorded in the audit)")) -> None:
    """Revoke the key of NAME: every use is refused from now on."""
    from store import api_keys

    async def _revoke() -> None:
        db = _store()
        await db.upgrade()
        try:
            await api_keys.revoke_key(db, name, actor)
        finally:
            await db.dispose()

    try:
        asyncio.run(_revoke())
    except api_keys.ApiKeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{name}: revoked")


@app.command()
def seed() -> None:
    """Load the demo organisation and users into the store if it is empty (demo mode only)."""
    from store.db import Database
    from store.seed import is_empty, load_organisation
    from wulian.rule_registry import ensure_active
    from wulian.settings import get_settings

    settings = get_settings()
    if settings.mode != "demo":
        typer.echo("demo data is only loaded in demo mode (WULIAN_MODE=demo)", err=True)
        raise typer.Exit(2)

    async def _seed() -> None:
        db = Database(settings.db_url)
        await db.upgrade()
        await ensure_active(db)
        if await is_empty(db):
            counts = await load_organisation(db)
            typer.echo(f"loaded {counts['units']} units and {counts['users']} users")
        else:
            typer.echo("the store already has an organisation; nothing loaded")
        await db.dispose()

    asyncio.run(_seed())


@demo_app.command("history")
def demo_history(
    events: int = typer.Option(3000, "--events", min=1, max=5_000_000, help="how many past events"),
    months: int = typer.Option(12, "--months", min=1, max=36, help="over how many months up to today"),
    seed: int = typer.Option(1, "--seed", help="the random seed (the same seed, the same history)"),
) -> None:
    """Write a realistic past into the store: events of the months before with their tasks, warnings,
    timeline, ratings, and the assessment's facts and rollups (demo mode only; the organisation is
    loaded first if the store has none)."""
    import time

    from store.db import Database
    from store.demo_history import seed_history
    from store.org import OrgTree
    from store.seed import is_empty, load_organisation
    from wulian.rule_registry import ensure_active
    from wulian.settings import get_settings

    settings = get_settings()
    if settings.mode != "demo":
        typer.echo("demo history is only written in demo mode (WULIAN_MODE=demo)", err=True)
        raise typer.Exit(2)

    def progress(done: int, total: int) -> None:
        if done == total or done % 50_000 < 2_000:
            typer.echo(f"  {done:,}/{total:,} events")

    async def _history() -> int:
        db = Database(settings.db_url)
        try:
            await db.upgrade()
            await ensure_active(db)
            if await is_empty(db):
                await load_organisation(db)
            return await seed_history(db, await OrgTree.load(db), events=events, months=months, seed=seed,
                                      progress=progress)
        finally:
            await db.dispose()

    typer.echo(_shown_store())
    started = time.monotonic()
    written = asyncio.run(_history())
    typer.echo(f"wrote {written:,} past events over {months} months in {time.monotonic() - started:.0f} s")


def main() -> None:
    """The ``wulian`` command: log lines as every process writes them (``wulian/logs.py``), then the
    command asked for."""
    from wulian.logs import configure_logging
    from wulian.settings import get_settings

    configure_logging(get_settings(), "cli")
    app()


@app.command()
def simulate(
    events: int = typer.Option(48_000, help="reports over the period (48,000: Jiangshan's 2018)"),
    days: int = typer.Option(365, help="the simulated period in days"),
    seed: int = typer.Option(2018, help="the same seed gives the same reports and the same actors' decisions"),
    concurrency: int = typer.Option(32, help="commands in flight at once"),
    tick: int = typer.Option(30, help="simulated minutes that share one advance of the clock"),
    workers: int = typer.Option(0, min=0, max=16, help="worker processes beside the simulation (0: in its own)"),
    database_url: str = typer.Option("", help="an empty store for the run, e.g. PostgreSQL (default: SQLite)"),
    candidate: Path | None = typer.Option(None, "--list", help="compare this candidate list with the active one"),
    all_units: bool = typer.Option(False, "--all-units", help="with --list: every unit, not only those that change"),
    data_dir: Path | None = typer.Option(None, help="where the simulation's store goes (default: a temporary one)"),
) -> None:
    """A simulated city-year through the real workflow on Temporal's time-skipping test server, with a
    summary and the assessment's indicators; with ``--list``, the same year under a candidate list beside
    the active one (per unit: workload, grassroots share, on-time rate, escalations)."""
    import logging
    import tempfile

    # Thousands of simulated events would bury the progress bar under their info lines; warnings show.
    logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table
    from temporalio.service import RPCError

    from store.db import Database
    from wulian.simulation.compare import HEADERS, differences
    from wulian.simulation.summary import indicator_lines
    from wulian.simulation.year import Options, prepare_store
    from wulian.simulation.year import compare as compare_lists
    from wulian.simulation.year import simulate as run_simulation

    console = Console()
    options = Options(events=events, days=days, seed=seed, concurrency=concurrency, tick_minutes=tick,
                      workers=workers)
    folder = data_dir or Path(tempfile.mkdtemp(prefix="wulian-sim-"))

    if candidate is not None:
        try:
            lst = load(candidate)
        except InvalidList as exc:
            for problem in exc.problems:
                typer.echo(f"{candidate}: {problem}", err=True)
            raise typer.Exit(1) from exc

        async def _compare() -> None:
            db = Database(f"sqlite+aiosqlite:///{folder / 'compare.db'}")
            try:
                await prepare_store(db)
                before, after, n = await compare_lists(options, lst, db)
            finally:
                await db.dispose()
            rows, total = differences(before, after, all_units=all_units)
            table = Table(title=f"{n} simulated reports (seed {seed}, {days} days): active → {lst.version}")
            for header in HEADERS:
                table.add_column(header)
            for row in [*rows, total]:
                table.add_row(*row.cells())
            console.print(table)

        asyncio.run(_compare())
        return

    async def _run() -> None:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            job = bar.add_task("events", total=events)

            def progress(started: int, finished: int, moment: Any) -> None:
                bar.update(job, completed=finished, description=f"{moment:%Y-%m-%d %H:%M} started {started}")

            db = Database(database_url) if database_url else None
            try:
                result = await run_simulation(options, folder, db=db, progress=progress)
            except RPCError as exc:  # the time-skipping server stopped answering: say so, not a traceback
                console.print(f"[red]the simulation stopped: Temporal's test server answered "
                              f"\"{escape(str(exc))}\"; what was simulated until then is in the store[/red]")
                raise typer.Exit(1) from exc
            finally:
                if db is not None:
                    await db.dispose()
        s, o = result.summary, result.outcome
        console.print(f"wall time {result.wall_seconds:.1f} s, {result.events_per_second:.2f} events/s "
                      f"({result.advances} clock advances: {result.advancing_seconds:.0f} s moving the clock, "
                      f"{result.acting_seconds:.0f} s acting); "
                      f"simulated {result.first:%Y-%m-%d} → {result.end:%Y-%m-%d}")
        console.print(f"events {s.events}, closed {s.closed}, states {s.by_state}, overdue tasks {s.tasks_overdue}, "
                      f"warnings {s.warnings}")
        console.print(f"actions {dict(o.actions)}; refused {dict(o.refusals)}; gave up on {o.abandoned}")
        table = Table(title="indicators (the city, the simulated period)")
        for header in ("code", "indicator", "value"):
            table.add_column(header)
        for row in indicator_lines(s.indicators):
            table.add_row(*row)
        console.print(table)
        from sqlalchemy.engine import make_url

        shown = make_url(database_url).render_as_string(hide_password=True) if database_url else None
        console.print(f"store: {shown or folder / 'simulation.db'}")

    asyncio.run(_run())


if __name__ == "__main__":
    main()
