"""What every server-rendered page needs: the logged-in user, form fields, safe redirects.

Forms post back to the pages (CSRF-protected, url-encoded or multipart) and answer with a 303 back,
carrying ``?msg=<i18n key>`` or ``?error=<reason>``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode, urlparse

from litestar.datastructures import FormMultiDict
from litestar.enums import RequestEncodingType
from litestar.params import Body

from web import commands

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
"""A url-encoded form as a plain dict."""


def safe_next(target: str | None, default: str = "/") -> str:
    """Only local redirects (no open redirect to another site)."""
    if not target:
        return default
    parsed = urlparse(target)
    # A backslash too: browsers read "/\\evil.example" as "//evil.example".
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target



def form_text(form: FormMultiDict, name: str, limit: int = 500) -> str:
    """A text field of a form (url-encoded or multipart), cut to ``limit`` characters."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def form_texts(form: FormMultiDict, name: str) -> list[str]:
    """All non-empty values of a repeated field (checkboxes, multiple select), in order, each once."""
    found: list[str] = []
    for value in form.getall(name, []):
        if isinstance(value, str) and value.strip() and value.strip() not in found:
            found.append(value.strip()[:220])
    return found


def form_hours(form: FormMultiDict) -> int | None:
    """The ``hours`` field as a whole number, None when empty (400 when it is not a number)."""
    raw = form_text(form, "hours", 10)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise commands.CommandError.keyed(400, "refusal.hours_not_number") from None


def with_query(target: str, **params: str) -> str:
    """``target`` with ``params`` added to its query string."""
    return f"{target}{'&' if '?' in target else '?'}{urlencode(params)}"

