"""Codes shown as words in the visitor's language: category names, sources, rules, routing reasons,
deadlines, timeline actors and the notes the workflow writes, the list check's problems and the
values of a list diff. Pages call these (templates through the callables registered in web/app.py);
the API keeps the codes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rules import reasons
from rules.responsibility_list import STAGES, Problem
from web.i18n import catalogue, translate


def has_key(key: str | None) -> bool:
    """Whether ``key`` is a message of the catalogue (so that it may be shown translated)."""
    return bool(key) and key in catalogue("zh-CN")


def label(lang: str, prefix: str, code: str | None) -> str:
    """The message ``<prefix>.<code>`` in ``lang``; the code itself when the catalogue has none (a
    code an integration made up, e.g. a new source) and ``—`` when there is no code."""
    if not code:
        return "—"
    key = f"{prefix}.{code}"
    return translate(lang, key) if has_key(key) else code


def category_name(lang: str, code: str | None, name_zh: str | None = "", name_en: str | None = "") -> str:
    """A category's name in ``lang``: in English the catalogue's ``category.<code>`` (else the list's
    English name); in Chinese the list's (or the event's stored) Chinese name; else the catalogue's,
    else the other language's name, else the code."""
    key = f"category.{code}"
    known = catalogue(lang).get(key, "") if code else ""
    if lang == "zh-CN":
        return name_zh or known or name_en or code or "—"
    return known or name_en or name_zh or code or "—"


def rule_label(lang: str, rule: str | None) -> str:
    """A routing rule's name: ``category:SR-01`` → 按清单类别 SR-01, ``repeat`` → 重复上报."""
    if not rule:
        return "—"
    kind, _, code = rule.partition(":")
    key = f"rule.{kind}"
    if not has_key(key):
        return rule
    name = translate(lang, key)
    return f"{name} {code}" if code else name


def _params(lang: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Reason parameters for display: tiers translated, the category's name in ``lang``."""
    shown = dict(params)
    for name in reasons.TIER_PARAMS:
        if shown.get(name):
            shown[name] = translate(lang, f"tier.{shown[name]}")
    if "category" in shown and "name" in shown:
        shown["name"] = category_name(lang, str(shown["category"]), str(shown["name"]))
    return shown


def reason_text(lang: str, decision: Mapping[str, Any] | None) -> str:
    """Why the event went where it went, in ``lang``: from the decision's reason code, else from its
    English text when :func:`rules.reasons.parse` knows it, else that text as it is (a supervisor's
    triage note)."""
    if not decision:
        return "—"
    code, params = decision.get("reason_code") or "", decision.get("reason_params") or {}
    if decision.get("rule") == "manual-triage":
        # A triage keeps the earlier decision's fields (dataclasses.replace in the workflow): its reason
        # code is the rule that could not place the event, not this placement's; the note is the reason.
        code, params = "", {}
    if not code:
        parsed = reasons.parse(decision.get("reason"))
        if parsed is None:
            return str(decision.get("reason") or "—")
        code, params = parsed
    key = f"reason.{code}"
    if not has_key(key):
        return str(decision.get("reason") or code)
    try:
        return translate(lang, key, **_params(lang, params))
    except (KeyError, IndexError):  # parameters that do not fit the message: the stored text
        return str(decision.get("reason") or code)


def deadlines_text(lang: str, hours: Mapping[str, Any] | None) -> list[str]:
    """The deadline of each stage, in working hours: ["分流交办 1 工作小时", ...], in stage order."""
    if not hours:
        return []
    order = [s for s in STAGES if s in hours] + [s for s in hours if s not in STAGES]
    return [translate(lang, "deadline.stage", stage=label(lang, "deadline", s), hours=hours[s]) for s in order]


def actor_text(lang: str, entry: Mapping[str, Any]) -> str:
    """Who did a timeline step: a person's name, or the rule, timer, system, reporter in ``lang``."""
    kind = entry.get("actor_kind") or "user"
    actor = str(entry.get("actor") or "")
    if kind == "rule":
        return translate(lang, "actor.rule", rule=rule_label(lang, actor.removeprefix("rule:")))
    if kind in ("system", "timer"):
        return translate(lang, f"actor.{kind}")
    if kind == "reporter":
        return str(entry.get("actor_name") or "") or translate(lang, "actor.reporter")
    return str(entry.get("actor_name") or actor)


#: The notes the workflow writes for machine-made steps (workflows/event_lifecycle.py), read back
#: into a message and its values. Notes people write are shown as they are.
_NOTES: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "urge": [(re.compile(r"^(?P<task>\S+) overdue \(yellow\)$"), "note.urge")],
    "escalate_overdue": [(re.compile(r"^overdue: (?P<old>\S+) → (?P<new>\S+)$"), "note.moved")],
    "cohandle": [(re.compile(r"^(?P<task>\S+) claimed$"), "note.cohandle.claimed"),
                 (re.compile(r"^(?P<task>\S+) done: (?P<result>.*)$", re.DOTALL), "note.cohandle.done")],
}
_WARNING_NOTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?P<pct>\d+)% of the time used$"), "warning.note.reminder"),
    (re.compile(r"^deadline passed: urging notice \(督办\)$"), "warning.note.yellow"),
    (re.compile(r"^escalated to (?P<unit>\S+) \(red\)$"), "warning.note.red"),
    (re.compile(r"^escalated to (?P<unit>\S+) by (?P<user>\S+)$"), "warning.note.red_by"),
]
_RATED = re.compile(r"^(?P<rating>satisfied|basically_satisfied|dissatisfied)(?: (?P<comment>.*))?$", re.DOTALL)


def note_text(lang: str, action: str | None, note: str | None) -> str:
    """A timeline note in ``lang``: a routing reason, a rating, or a machine-made note translated;
    anything else (what people wrote) as it is."""
    if not note:
        return ""
    if action in ("route", "route_to_triage", "triage"):
        parsed = reasons.parse(note)
        return reason_text(lang, {"reason": note, "reason_code": parsed[0], "reason_params": parsed[1]}) \
            if parsed else note
    if action in ("rate", "rework", "to_review"):
        match = _RATED.match(note)
        if match:
            rating = translate(lang, f"rating.{match.group('rating')}")
            return f"{rating} {match.group('comment') or ''}".strip()
    for pattern, key in _NOTES.get(action or "", []):
        match = pattern.match(note)
        if match:
            return translate(lang, key, **match.groupdict())
    return note


def warning_note(lang: str, note: str | None) -> str:
    """A supervision warning's note in ``lang`` (the workflow writes them in English)."""
    for pattern, key in _WARNING_NOTES:
        match = pattern.match(note or "")
        if match:
            return translate(lang, key, **match.groupdict())
    return note or ""


# ------------------------------------------------------------------ the responsibility list


def list_field(lang: str, field: str | None) -> str:
    """A field of the list file by its label (``deadlines.handling`` → 时限 › 执行处置)."""
    if not field:
        return ""
    parts = [p for p in field.split(".") if p]
    shown = []
    for i, part in enumerate(parts):
        if part.isdigit():
            shown.append(translate(lang, "listcheck.item", n=int(part) + 1))
        elif i and parts[i - 1] == "deadlines":
            shown.append(label(lang, "deadline", part))
        elif i and parts[i - 1] == "priorities":
            shown.append(rule_label(lang, part))
        else:
            shown.append(label(lang, "listfield", part))
    return " › ".join(shown)


def list_problem(lang: str, problem: Problem) -> dict[str, str]:
    """One problem of a list check for the page: where (category, field) and what, in ``lang``; the
    field's name in the file too, since the administrator edits the file."""
    if problem.line is not None:
        where = translate(lang, "listcheck.where.line", line=problem.line, column=problem.column or 0)
    elif problem.category:
        where = translate(lang, "listcheck.where.category", code=problem.category)
    elif problem.field:
        where = translate(lang, "listcheck.where.list")
    else:
        where = translate(lang, "listcheck.where.file")
    key = f"listcheck.{problem.code}" if problem.code else ""
    if key and not has_key(key):
        key = f"invalid.{problem.code}"  # pydantic's own error types, shared with the forms
    params = dict(problem.params)
    if problem.code == "literal_error" and (problem.field or "").split(".")[-1] == "tier":
        # pydantic lists the allowed values as "'grid', 'community' or 'city'": the tiers by name.
        tiers = re.findall(r"'([^']*)'", params.get("expected", ""))
        params["expected"] = ("、" if lang == "zh-CN" else ", ").join(label(lang, "tier", t) for t in tiers)
    if key and has_key(key):
        try:
            what = translate(lang, key, **params)
        except (KeyError, IndexError):
            what = translate(lang, "invalid.invalid")
    elif lang == "en":
        what = problem.message
    else:
        what = translate(lang, "invalid.invalid")
    return {"where": where, "field": problem.field or "", "label": list_field(lang, problem.field), "what": what}


def diff_value(lang: str, field: str, value: Any) -> str:
    """A value of a list diff in ``lang``: tiers and stages translated, yes/no, lists joined."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return translate(lang, "common.yes" if value else "common.no")
    if field == "tier":
        return label(lang, "tier", str(value))
    if field == "deadlines" and isinstance(value, Mapping):
        return "；".join(deadlines_text(lang, value)) if lang == "zh-CN" else "; ".join(deadlines_text(lang, value))
    if field == "priorities" and isinstance(value, Mapping):
        return ", ".join(f"{rule_label(lang, k)} {v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ("、" if lang == "zh-CN" else ", ").join(str(v) for v in value)
    return str(value)


#: Fields whose values are the list's own texts (names, keywords): shown as they are, not translated.
FREE_TEXT_FIELDS = ("name_zh", "name_en", "keywords", "severity_scale", "title_zh", "title_en")
