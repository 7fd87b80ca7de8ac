"""Administering the responsibility list: check an upload against the organisation, dry-run it over
recent events, store and activate it. Used by the CLI and the admin pages alike."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from rules.engine import RoutingEngine
from rules.responsibility_list import Problem, ResponsibilityList, check
from store import models, rule_lists
from store.db import Database
from store.org import OrgTree
from workflows.policy import department_of
from wulian.uploads import uploaded_text

#: At most this many bytes are accepted for an uploaded list file.
MAX_LIST_BYTES = 2_000_000


@dataclass
class CheckResult:
    """A checked upload: the list when valid, else every problem with its place."""

    content: str
    parsed: ResponsibilityList | None
    problems: list[Problem] = field(default_factory=list)


async def departments_of(db: Database) -> set[str]:
    """Department codes of the organisation (unit code ``D-XX`` → ``XX``)."""
    org = await OrgTree.load(db)
    return {department_of(code) or code for code, unit in org.units.items() if unit.kind == "department"}


async def check_content(db: Database, content: str | bytes) -> CheckResult:
    """Validate an uploaded list (JSON text) against the schema and the organisation's departments."""
    text, problems = uploaded_text(content, MAX_LIST_BYTES)
    if text is None:
        return CheckResult("", None, problems)
    content = text
    try:
        raw = json.loads(content)
    except json.JSONDecodeError as exc:
        return CheckResult(content, None, [Problem(f"line {exc.lineno}, column {exc.colno}", exc.msg, "not_json",
                                                   line=exc.lineno, column=exc.colno)])
    departments = await departments_of(db)
    parsed, problems = check(raw, departments or None)
    return CheckResult(content, parsed, problems)


@dataclass
class RouteChange:
    """An event that would route differently under a candidate list."""

    event_id: str
    category: str
    before: dict[str, Any]
    after: dict[str, Any]


async def dry_run(db: Database, candidate: ResponsibilityList, last: int = 200) -> tuple[int, list[RouteChange]]:
    """Re-decide the last ``last`` events with the candidate; returns (events checked, changes)."""
    async with db.session() as session:
        events = (
            await session.exec(select(models.Event).order_by(col(models.Event.created_at).desc()).limit(last))
        ).all()
    engine = RoutingEngine(candidate, city_centre=(await OrgTree.load(db)).city_centre())
    try:
        return _compare(engine, events)
    finally:
        engine.close()  # free the native ruleset now: dry runs are repeated while editing a list


def _compare(engine: RoutingEngine, events: Sequence[models.Event]) -> tuple[int, list[RouteChange]]:
    changes: list[RouteChange] = []
    checked = 0
    for event in events:
        decision = event.decision or {}
        facts = decision.get("facts")
        if not facts or decision.get("rule") == "manual-triage":
            continue
        checked += 1
        new = engine.decide(dict(facts))
        keys = ("placed", "tier", "unit", "department", "assignee")
        before = {k: decision.get(k) for k in keys}
        after = {k: new.get(k) for k in keys}
        if before != after:
            before["rule"], after["rule"] = decision.get("rule"), new.get("rule")
            changes.append(RouteChange(event.event_id, event.category, before, after))
    return checked, changes


async def activate(db: Database, result: CheckResult, actor: str, *, now: bool = True) -> models.RuleListVersion:
    """Store a valid list and (unless ``now`` is False) make it active for new events."""
    if result.parsed is None:
        raise ValueError("a list with problems is never activated")
    return await rule_lists.save_and_activate(
        db, result.parsed.version, result.content, len(result.parsed.categories), actor, activate=now
    )
