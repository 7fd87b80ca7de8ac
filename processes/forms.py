"""What a valid form is, for a process's start form and its tasks' forms: the one check every entrance
asks (the API, the pages, the workflow's update validators), as :mod:`workflows.inputs` is for reports.

The problems are :class:`workflows.inputs.Problem` with the same codes (``input.<code>`` in the
catalogues), so a refused form reads the same as a refused report. Pure: it runs inside the workflow
sandbox.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from processes.definition import FormField
from workflows.inputs import MAX_COMMENT, Problem, phone_problem, text_problem

#: A photo as the photo store names it (``store.photos``): no path tricks, no URL.
PHOTO_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,80}(\.[a-z]{3,4})?$")


def _number(spec: FormField, value: object) -> Problem | None:
    whole = spec.type == "integer"
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        return Problem(spec.name, "type", "a whole number" if whole else "a number")
    low = spec.min if spec.min is not None else float("-inf")
    high = spec.max if spec.max is not None else float("inf")
    if not low <= value <= high:
        return Problem(spec.name, "range", f"{_bound(spec.min)} and {_bound(spec.max)}")
    return None


def _bound(value: float | None) -> str:
    if value is None:
        return "…"
    return str(int(value)) if float(value).is_integer() else str(value)


def _moment(spec: FormField, value: object) -> Problem | None:
    if not isinstance(value, str) or len(value) > 40:
        return Problem(spec.name, "type", "a date" if spec.type == "date" else "a date and time")
    try:
        if spec.type == "date":
            date.fromisoformat(value)
        elif datetime.fromisoformat(value).tzinfo is None:  # a moment without its zone is ambiguous
            return Problem(spec.name, "type", "a date and time with its zone")
    except ValueError:
        return Problem(spec.name, "type", "a date" if spec.type == "date" else "a date and time")
    return None


def field_problem(spec: FormField, value: object, offered: Sequence[str] = ()) -> Problem | None:
    """The problem of one present value of ``spec``, if any. ``offered``: the values a ``choice`` or
    ``checklist`` offers when they come from elsewhere (a catalogue, the materials of its item)."""
    if spec.type == "text":
        limit = int(spec.max) if spec.max is not None else MAX_COMMENT
        return text_problem(spec.name, value, max_len=limit, required=spec.required)
    if spec.type in ("integer", "number"):
        return _number(spec, value)
    if spec.type == "boolean":
        return None if isinstance(value, bool) else Problem(spec.name, "type", "yes or no")
    if spec.type in ("date", "datetime"):
        return _moment(spec, value)
    if spec.type == "phone":
        return phone_problem(spec.name, value)
    if spec.type == "photo":
        ok = isinstance(value, str) and PHOTO_PATTERN.match(value)
        return None if ok else Problem(spec.name, "type", "a photo")
    choices = list(offered or spec.choices)
    if spec.type == "choice":
        return None if isinstance(value, str) and value in choices else Problem(spec.name, "choice", ", ".join(choices))
    # checklist: the items ticked, each one offered, none twice; a required checklist is ticked through
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(set(value)) != len(value):
        return Problem(spec.name, "type", "a list of items")
    if any(v not in choices for v in value):
        return Problem(spec.name, "choice", ", ".join(choices))
    missing = [c for c in choices if c not in value]
    if spec.required and missing:
        return Problem(spec.name, "incomplete", ", ".join(missing))
    return None


def form_problems(form: Sequence[FormField], values: Mapping[str, Any],
                  offered: Mapping[str, Sequence[str]] | None = None) -> list[Problem]:
    """Every problem of ``values`` against ``form`` (empty: valid): unknown fields, missing required
    ones, and each present value's own problem. ``offered``: per field, the values it offers when they
    are not in the definition (:func:`offered_values`)."""
    specs = {f.name: f for f in form}
    problems = [Problem(str(name)[:40], "unknown") for name in values if name not in specs]
    for spec in form:
        value = values.get(spec.name)
        if value is None or value == "" and spec.type != "text":
            if spec.required:
                problems.append(Problem(spec.name, "required"))
            continue
        found = field_problem(spec, value, (offered or {}).get(spec.name, ()))
        if found is not None:
            problems.append(found)
    return problems


def offered_values(form: Sequence[FormField], inputs: Sequence[FormField], start: Mapping[str, Any],
                   catalogues: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, list[str]]:
    """What each catalogue field and materials checklist of ``form`` offers: a catalogue's item codes, or
    the materials of the item chosen in the start field (of ``inputs``, with values ``start``) it names.
    ``catalogues``: the items by catalogue name (``processes.definition.catalogue``)."""
    by_name = {f.name: f for f in inputs}
    offered: dict[str, list[str]] = {}
    for spec in form:
        if spec.catalogue is not None:
            offered[spec.name] = [str(item["code"]) for item in catalogues.get(spec.catalogue, ())]
        elif spec.materials_of is not None:
            source = by_name.get(spec.materials_of)
            items = catalogues.get(source.catalogue or "", ()) if source is not None else ()
            chosen = next((item for item in items if item.get("code") == start.get(spec.materials_of)), None)
            offered[spec.name] = [str(m) for m in chosen["materials"]] if chosen else []
    return offered
