"""A process form as the pages take it: the posted strings turned into the values the definition's
form expects (the check itself is :mod:`processes.forms`, the same at every entrance), and its
problems said in the visitor's language with the field's own label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from processes.definition import FormField, ProcessDefinition
from web.i18n import catalogue, translate
from web.labels import has_key
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
        limit = problem.limit
        if problem.code in ("choice", "incomplete") and limit:  # the values offered, by their names
            sep = "、" if lang == "zh-CN" else ", "
            limit = sep.join(_choice_name(lang, v) for v in limit.split(", "))
        texts.append(translate(lang, f"input.{problem.code}", field=label, limit=limit))
    return texts


def as_code(value: str) -> Markup:
    """A code from a definition file that nothing names, shown as code (``translate="no"``: the
    administrator's own word, not a missing translation)."""
    return Markup('<code translate="no">{}</code>').format(value)


def with_codes(lang: str, key: str, **codes: Any) -> Markup:
    """The message ``key`` in ``lang`` (escaped) with ``codes`` filled in as code (:func:`as_code`)."""
    template = catalogue(lang).get(key) or catalogue("zh-CN").get(key) or key
    return escape(template).format(**{k: as_code(str(v)) for k, v in codes.items()})


def _choice_name(lang: str, value: str) -> str:
    key = f"process.choice.{value}"
    return translate(lang, key) if has_key(key) else value


class ProcessText:
    """A definition's words in the visitor's language, for the templates: its name, its states' labels,
    its tasks' titles, its fields' labels, and the codes it offers (outcomes, choices, catalogue items)
    by their names. The definition's own Chinese is the fallback; a code nothing names (an outcome an
    administrator's definition made up) is shown as written."""

    def __init__(self, lang: str, d: ProcessDefinition, catalogues: Mapping[str, Sequence[Mapping[str, Any]]]):
        self.lang, self.d, self.catalogues = lang, d, catalogues

    def _pick(self, zh: str, en: str) -> str:
        return en if self.lang == "en" and en else zh

    def name(self) -> str:
        """The definition's name."""
        return self._pick(self.d.name_zh, self.d.name_en)

    def state(self, name: str) -> str:
        """A state's label (its name when the definition has no such state)."""
        try:
            spec = self.d.state(name)
        except KeyError:
            return name
        return self._pick(spec.label_zh, spec.label_en)

    def task(self, state: str) -> str:
        """The title of the task ``state`` opens."""
        try:
            spec = self.d.state(state).task
        except KeyError:
            return state
        return self._pick(spec.title_zh, spec.title_en) if spec is not None else self.state(state)

    def field(self, spec: FormField) -> str:
        """A field's label."""
        return field_label(self.lang, spec)

    def outcome(self, trigger: str) -> str:
        """An outcome (a move's trigger) by its name in the catalogue (``process.outcome.<trigger>``)."""
        key = f"process.outcome.{trigger}"
        return translate(self.lang, key) if has_key(key) else as_code(trigger)

    def step(self, action: str) -> str:
        """A timeline step: a move of the definition (its outcome) or an action on a task."""
        key = f"process.step.{action}"
        return translate(self.lang, key) if has_key(key) else self.outcome(action)

    def actor(self, actor: str) -> str:
        """Who took a step: a user's name, or the requester, a deadline's timer, the system."""
        key = {"requester": "process.actor.requester", "timer": "actor.timer", "system": "actor.system"}.get(actor)
        return translate(self.lang, key) if key else actor

    def items(self, spec: FormField) -> list[tuple[str, str]]:
        """(value, words) of what a choice offers: a catalogue's items by name, or its own choices."""
        if spec.catalogue:
            return [(str(item["code"]), self._pick(str(item.get("name_zh", "")), str(item.get("name_en", "")))
                     or str(item["code"])) for item in self.catalogues.get(spec.catalogue, ())]
        return [(c, _choice_name(self.lang, c)) for c in spec.choices]

    def choice(self, value: str) -> str:
        """A choice by its name in the catalogue (``process.choice.<value>``), else as code."""
        key = f"process.choice.{value}"
        return translate(self.lang, key) if has_key(key) else as_code(value)

    def value(self, spec: FormField, value: Any) -> str:
        """A stored value of ``spec`` as words (a catalogue item's name, yes or no, a list joined)."""
        if value is None or value == "":
            return "—"
        if spec.type == "boolean":
            return translate(self.lang, "process.yes" if value else "process.no")
        if spec.type == "checklist" and isinstance(value, list):
            return "、".join(str(v) for v in value) if self.lang == "zh-CN" else ", ".join(str(v) for v in value)
        if spec.type == "choice":
            return dict(self.items(spec)).get(str(value), str(value))
        if spec.type == "datetime" and isinstance(value, str) and len(value) >= 16 and value[10] == "T":
            return value[:16].replace("T", " ")  # kept in the city's own offset: its wall clock as given
        return str(value)

    def title(self, values: Mapping[str, Any], stored: str = "") -> str:
        """A line naming an instance: its start form's ``title`` field, else its first short text or
        choice (not the ``team``, a unit's code), a choice by its name (the store's ``title`` keeps the
        raw value, a code for a choice); else ``stored``."""
        named = [f for f in self.d.input if f.name == "title"]  # a field called title names it best
        for spec in named + [f for f in self.d.input if f.name not in ("title", "team")]:
            value = values.get(spec.name)
            if value in (None, "") or spec.type not in ("text", "choice"):
                continue
            shown = self.value(spec, value)
            if spec.type == "choice" or len(shown) <= 80:
                return shown
        return stored

    def materials(self, item_code: str) -> list[str]:
        """The materials the catalogue item ``item_code`` needs (for the checklist)."""
        for items in self.catalogues.values():
            for item in items:
                if item.get("code") == item_code:
                    return [str(m) for m in item.get("materials", [])]
        return []
