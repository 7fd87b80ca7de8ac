"""Message catalogues (zh-CN default, English) and the language of a request."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = {"zh-CN": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh-CN"
LANG_COOKIE = "lang"
_DIR = Path(__file__).parent / "i18n"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The messages of ``lang``: ``web/i18n/<lang>.json`` plus any ``web/i18n/<lang>.<part>.json``
    (one file per part of the UI, so parts can be edited independently). A key defined twice is
    an error, not a silent override."""
    messages: dict[str, str] = json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    for part in sorted(_DIR.glob(f"{lang}.*.json")):
        extra = json.loads(part.read_text(encoding="utf-8"))
        clash = set(extra) & set(messages)
        if clash:
            raise ValueError(f"{part.name} redefines {', '.join(sorted(clash))}")
        messages.update(extra)
    return messages


def language_of(cookies: Any) -> str:
    """The language chosen by the visitor, else the default (zh-CN)."""
    lang = cookies.get(LANG_COOKIE) if cookies is not None else None
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def translate(lang: str, key: str, **values: Any) -> str:
    """The message ``key`` in ``lang``, falling back to Chinese, then to the key itself."""
    text = catalogue(lang).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key
    return text.format(**values) if values else text
