"""A process form as the pages take it: the posted strings turned into the values the definition's
form expects (the check itself is :mod:`processes.forms`, the same at every entrance), and its
problems said in the visitor's language with the field's own label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from processes.definition import FormField
from web.i18n import translate
from workflows.inputs import Problem

#: Form fields are posted as ``f_<name>`` (so no field can pose as the page's own ``action`` or ``csrf``).
PREFIX = "f_"
LOCAL = ZoneInfo("Asia/Shanghai")


def posted_values(form: Sequence[FormField], posted: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The values of ``form`` in ``posted`` (a page's form: each field's posted strings), typed as
    the definition wants them. A value that is not what its type wants is passed on as it came, so
    the check refuses it with its reason rather than this function guessing."""
    values: dict[str, Any] = {}
    for spec in form:
        raw = [str(v) for v in posted.get(PREFIX + spec.name, ()) if isinstance(v, str)]
        if spec.type == "boolean":
            values[spec.name] = any(v in ("on", "true", "1") for v in raw)
        elif spec.type == "checklist":
            values[spec.name] = list(dict.fromkeys(v for v in raw if v))
        elif raw and raw[-1].strip():
            values[spec.name] = _typed(spec, raw[-1].strip())
    return values


def _typed(spec: FormField, text: str) -> Any:
    try:
        if spec.type == "integer":
            return int(text)
        if spec.type == "number":
            return float(text)
    except ValueError:
        return text
    if spec.type == "datetime":  # <input type="datetime-local"> has no zone: the city's own
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
        return (moment if moment.tzinfo else moment.replace(tzinfo=LOCAL)).isoformat()
    return text


def field_label(lang: str, spec: FormField) -> str:
    """A field's label in ``lang`` (the definition's Chinese one when it has no English)."""
    return spec.label_en if lang == "en" and spec.label_en else spec.label_zh


def problem_texts(lang: str, form: Sequence[FormField], problems: Sequence[Problem]) -> list[str]:
    """Each problem as "<label>：<what>", with the definition's label of its field."""
    specs = {f.name: f for f in form}
    texts = []
    for problem in problems:
        spec = specs.get(problem.field)
        label = field_label(lang, spec) if spec is not None else problem.field
        texts.append(translate(lang, f"input.{problem.code}", field=label, limit=problem.limit))
    return texts
