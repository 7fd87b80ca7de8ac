"""Administering process definitions (issue 14, item 1): check an upload, dry-run it, store it,
activate it (audited), and say what changed between two versions. Used by the CLI (``wulian
process``) and the admin pages (``/admin/processes``) alike, as :mod:`wulian.scheme_admin` is for
schemes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from processes.definition import CATALOGUES, FormField, ProcessDefinition, Taker, catalogue, check
from processes.forms import offered_values
from processes.instance import Person, Refused, Requester, begin, check_in, claim, complete, resolve_taker
from rules.responsibility_list import Problem
from store import models, process_versions
from store.db import Database
from wulian.uploads import uploaded_text

#: At most this many bytes are accepted for an uploaded definition file.
MAX_DEFINITION_BYTES = 500_000


@dataclass
class CheckResult:
    """A checked upload: the definition when valid, else every problem with its place."""

    content: str
    parsed: ProcessDefinition | None
    problems: list[Problem] = field(default_factory=list)


def check_content(content: str | bytes) -> CheckResult:
    """Validate an uploaded definition (JSON text): size, encoding, JSON, then
    :func:`processes.definition.check`."""
    text, problems = uploaded_text(content, MAX_DEFINITION_BYTES)
    if text is None:
        return CheckResult("", None, problems)
    content = text
    try:
        raw = json.loads(content)
    except json.JSONDecodeError as exc:
        return CheckResult(content, None, [Problem(f"file:{exc.lineno}:{exc.colno}", exc.msg, "not_json",
                                                   line=exc.lineno, column=exc.colno)])
    parsed, problems = check(raw)
    return CheckResult(content, parsed, problems)


async def store_checked(db: Database, result: CheckResult, actor: str, *, now: bool) -> models.ProcessVersion:
    """Store a valid definition and (when ``now``) activate it; one with problems is never stored
    (ValueError), nor other content under a stored kind and version (ValueError)."""
    if result.parsed is None:
        raise ValueError("a definition with problems is never stored")
    await process_versions.ensure_shipped(db)  # the shipped definitions are the first versions of their kinds
    return await process_versions.save(db, result.parsed, actor, activate=now)


def catalogues_of(d: ProcessDefinition) -> dict[str, list[dict[str, Any]]]:
    """The catalogues ``d``'s forms offer, by name (what an instance carries in its start input)."""
    names = {f.catalogue for f in d.input if f.catalogue}
    for state in d.states:
        if state.task is not None:
            names.update(f.catalogue for f in state.task.form if f.catalogue)
    return {name: catalogue(name) for name in sorted(n for n in names if n in CATALOGUES)}


# ------------------------------------------------------------------ diff


def diff_lines(old: ProcessDefinition, new: ProcessDefinition) -> list[str]:
    """What changed from ``old`` to ``new``, one line per change: states, tasks (taker, deadline,
    outcomes, form fields, credits), moves, and the start form's fields."""
    lines: list[str] = []
    old_states = {s.name: s for s in old.states}
    new_states = {s.name: s for s in new.states}
    lines += [f"+ state {n} ({new_states[n].label_zh})" for n in new_states if n not in old_states]
    lines += [f"- state {n} ({old_states[n].label_zh})" for n in old_states if n not in new_states]
    for name in (n for n in new_states if n in old_states):
        before, after = old_states[name].task, new_states[name].task
        if before == after:
            continue
        if before is None or after is None:
            lines.append(f"~ state {name}: task {'added' if before is None else 'removed'}")
            continue
        for attr in ("kind", "title_zh", "taker", "claim", "capacity_field", "closed_by", "deadline", "outcomes",
                     "on_deadline", "credits", "event"):
            a, b = getattr(before, attr), getattr(after, attr)
            if a != b:
                lines.append(f"~ state {name}: task {attr}: {_shown(a)} → {_shown(b)}")
        lines += _field_lines(f"state {name}: form", before.form, after.form)
    moves = lambda d: {(m.trigger, tuple(m.sources), m.dest) for m in d.transitions}  # noqa: E731
    lines += [f"+ move {t}: {', '.join(s)} → {d}" for t, s, d in sorted(moves(new) - moves(old))]
    lines += [f"- move {t}: {', '.join(s)} → {d}" for t, s, d in sorted(moves(old) - moves(new))]
    lines += _field_lines("start form", old.input, new.input)
    if old.start != new.start:
        lines.append(f"~ start: {old.start} → {new.start}")
    return lines


def _field_lines(where: str, before: list[FormField], after: list[FormField]) -> list[str]:
    a, b = {f.name: f for f in before}, {f.name: f for f in after}
    lines = [f"+ {where} field {n} ({b[n].label_zh})" for n in b if n not in a]
    lines += [f"- {where} field {n} ({a[n].label_zh})" for n in a if n not in b]
    lines += [f"~ {where} field {n}" for n in b if n in a and a[n] != b[n]]
    return lines


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if hasattr(value, "model_dump"):
        return json.dumps(value.model_dump(exclude_defaults=True), ensure_ascii=False)
    if isinstance(value, list):
        return json.dumps([v.model_dump(exclude_defaults=True) if hasattr(v, "model_dump") else v for v in value],
                          ensure_ascii=False)
    return str(value)


# ------------------------------------------------------------------ dry run


@dataclass
class DryStep:
    """One task the dry run met: its state, title, who takes it, the outcome it chose."""

    state: str
    title: str
    taker: str
    outcome: str


@dataclass
class DryRun:
    """An instance run in memory along the first outcome of every task, with sample values: the tasks
    it met, the final state it reached (or the refusal that stopped it)."""

    steps: list[DryStep] = field(default_factory=list)
    final: str | None = None
    stopped: str | None = None


def taker_text(taker: Taker | None) -> str:
    """Who a taker names, in a line (for the dry run and the pages)."""
    if taker is None:
        return "—"
    text = taker.unit if taker.place == "unit" and taker.unit else taker.place
    if taker.place == "taker_of":
        text = f"taker_of {taker.task}"
    if taker.below:
        text += " (and below)"
    if taker.roles:
        text += " · " + "/".join(taker.roles)
    if taker.party_members:
        text += " · party members"
    return text


def _sample(spec: FormField, offered: list[str]) -> Any:
    if spec.type == "text":
        return "示例"[: int(spec.max)] if spec.max is not None else "示例"
    if spec.type in ("integer", "number"):
        low = spec.min if spec.min is not None else 1
        value = max(low, min(1, spec.max if spec.max is not None else 1))
        return int(value) if spec.type == "integer" else float(value)
    return {"boolean": False, "date": "2026-12-01", "datetime": "2026-12-01T09:00:00+08:00",
            "photo": "sample.jpg", "phone": "13800000000",
            "choice": (offered or spec.choices or [""])[0],
            "checklist": list(offered or spec.choices)}.get(spec.type)


def _values(form: list[FormField], d: ProcessDefinition, start: dict[str, Any],
            catalogues: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in form:  # in order: a materials checklist follows the item chosen before it
        offered = offered_values([spec], d.input, {**start, **values}, catalogues).get(spec.name, [])
        values[spec.name] = _sample(spec, offered)
    return values


def _everyone(unit: str) -> Person:
    """A person every taker of the dry run accepts: of the task's unit, every role, a party member."""
    return Person("dry_run", unit=unit, role="", party_member=True, units_above=(unit,))


def dry_run(d: ProcessDefinition, max_steps: int = 100) -> DryRun:
    """Run ``d`` in memory (no store, no workflow) from its start with sample values, each task taken
    by a person it accepts and completed with its first outcome, until a final state."""
    catalogues = catalogues_of(d)
    result = DryRun()
    now = datetime(2026, 12, 1, 9, tzinfo=UTC).isoformat()
    requester = Requester("示例居民", "13800000000", grid="G", community="C", street="S")
    start = _values(d.input, d, {}, catalogues)
    try:
        inst = begin(d, "dry-run", requester, start, now, "dry_run", catalogues=catalogues)
        while inst.ended_at is None and len(result.steps) < max_steps:
            task = inst.open_task()
            if task is None:
                result.stopped = f"state {inst.state} opens no task"
                break
            spec = d.state(task.state).task
            assert spec is not None and spec.taker is not None
            person = _everyone(task.unit)
            if spec.taker.place == "requester":
                person = Person("dry_run", role="requester")
            else:
                person.role = spec.taker.roles[0] if spec.taker.roles else "grid_worker"
                claim(d, inst, task.task_id, person, now)
            if spec.claim == "many" and spec.closed_by is not None:  # the organiser closes the sign-up
                person = _everyone(resolve_taker(spec.closed_by, inst)[0])
                person.role = spec.closed_by.roles[0] if spec.closed_by.roles else "community_staff"
            else:  # the people signed up before are checked in and out by this task's taker
                for earlier in inst.tasks:
                    for entry in earlier.sign_ups:
                        if not entry.waiting and not entry.checked_out and spec.taker.place != "requester":
                            check_in(d, inst, earlier.task_id, person, entry.username, False, now)
                            check_in(d, inst, earlier.task_id, person, entry.username, True, now)
            outcome = spec.outcomes[0]
            result.steps.append(DryStep(task.state, spec.title_zh, taker_text(spec.taker), outcome))
            complete(d, inst, task.task_id, person, outcome, _values(spec.form, d, inst.values, catalogues), now,
                     catalogues=catalogues)
        if inst.ended_at is not None:
            result.final = inst.state
        elif result.stopped is None:
            result.stopped = f"no final state within {max_steps} tasks"
    except Refused as exc:
        result.stopped = str(exc)
    return result
