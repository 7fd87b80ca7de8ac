"""Refusals in the visitor's language: HTTP exceptions that carry a catalogue key, and the texts of
error pages and page flashes.

An exception made by :func:`refusal` keeps the English text as its ``detail`` (what the JSON API
answers, with a ``code``) and its catalogue key, so that a page shows it translated. A refusal
without a key (Litestar's own 404/405, a message nobody has given a key yet) shows on a page as the
translated meaning of its status; its English detail only on English pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from litestar.exceptions import HTTPException
from pydantic import ValidationError

from web.i18n import catalogue, translate

E = TypeVar("E", bound=HTTPException)

#: The machine-readable code of each status (the JSON error body's ``code`` when no key says more).
STATUS_CODES = {400: "invalid", 401: "not_authenticated", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 409: "conflict", 413: "too_large", 429: "too_many_requests",
                500: "internal_error", 503: "unavailable"}


@dataclass(frozen=True)
class Msg:
    """A message used as a value of another (a field's label, a problem), translated with it."""

    key: str
    values: dict[str, Any] = field(default_factory=dict, hash=False)

    def text(self, lang: str) -> str:
        """The message in ``lang``."""
        return translate(lang, self.key, **_shown(lang, self.values))


@dataclass(frozen=True)
class Choices:
    """A list of choices by their catalogue keys, shown joined in the page's language."""

    keys: tuple[str, ...]

    def text(self, lang: str) -> str:
        """The choices' labels in ``lang``, joined."""
        return ("、" if lang == "zh-CN" else ", ").join(translate(lang, k) for k in self.keys)


def _shown(lang: str, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.text(lang) if isinstance(v, Msg | Choices) else v for k, v in values.items()}


def validation_refusal(cls: type[E], exc: ValidationError, labels: dict[str, str]) -> E:
    """A refusal of ``cls`` for the first problem pydantic found: the field by its label (``labels``:
    field name → catalogue key) and the problem by its type (``invalid.<type>``), in the page's
    language; in English ``field: message`` for the API."""
    err = exc.errors()[0]
    name = ".".join(str(p) for p in err["loc"])
    key = f"invalid.{err['type']}"
    params: dict[str, Any] = {k: str(v) for k, v in (err.get("ctx") or {}).items() if k != "error"}
    if err["type"] == "literal_error" and name in labels:
        # "'pair', 'address' or 'user'": each choice by its label (``<field label key>.<choice>``).
        choices = re.findall(r"'([^']*)'", params.get("expected", ""))
        if all(f"{labels[name]}.{c}" in catalogue("zh-CN") for c in choices):
            params = {"expected": Choices(tuple(f"{labels[name]}.{c}" for c in choices))}
    problem = Msg(key if key in catalogue("zh-CN") else "invalid.invalid", params)
    label = Msg(labels[name]) if name in labels else name
    refused = refusal(cls, "error.validation", field=label, problem=problem)
    refused.detail = f"{name}: {err['msg']}"
    return refused


def refusal(cls: type[E], key: str, *, headers: dict[str, str] | None = None, **values: Any) -> E:
    """An HTTP exception of ``cls`` whose detail is the English message ``key`` (filled with
    ``values``) and which carries the key for pages."""
    exc = cls(detail=translate("en", key, **_shown("en", values)), headers=headers)
    exc.i18n_key = key  # type: ignore[attr-defined]
    exc.i18n_values = values  # type: ignore[attr-defined]
    return exc


def key_of(exc: Exception) -> tuple[str | None, dict[str, Any]]:
    """The catalogue key and values an exception carries (a keyed refusal or CommandError), if any."""
    key = getattr(exc, "i18n_key", None) or getattr(exc, "key", None)
    values = getattr(exc, "i18n_values", None) or getattr(exc, "values", None) or {}
    if not isinstance(key, str) or key not in catalogue("zh-CN"):
        return None, {}
    return key, dict(values)


def error_code(status: int, key: str | None) -> str:
    """The ``code`` of a JSON error: the key without its first part (``error.event_scope`` →
    ``event_scope``), else the status's code."""
    if key:
        return key.split(".", 1)[1] if "." in key else key
    return STATUS_CODES.get(status, "error")


def status_text(lang: str, status: int) -> str:
    """What a status means, in ``lang`` (``error.status.404`` → 页面或记录不存在)."""
    key = f"error.status.{status}"
    return translate(lang, key if key in catalogue(lang) else "error.status.other")


def reason_text(lang: str, status: int, key: str | None, values: dict[str, Any], detail: str | None) -> str:
    """The reason a page shows: the keyed message in ``lang``; else the English detail on English
    pages and the status's meaning on Chinese ones (never English there)."""
    if key:
        try:
            return translate(lang, key, **_shown(lang, values))
        except (KeyError, IndexError):
            pass
    if lang == "en" and detail:
        return detail
    return status_text(lang, status)


def refusal_text(lang: str, exc: Exception, status: int) -> str:
    """The reason of a refused command or exception for a page flash, in ``lang``."""
    key, values = key_of(exc)
    text = getattr(exc, "text", None)
    if key and callable(text):  # a keyed CommandError: its parameters that are codes named too
        return str(text(lang))
    detail = getattr(exc, "reason", None) or getattr(exc, "detail", None) or str(exc)
    return reason_text(lang, status, key, values, str(detail) if detail else None)
