"""Checks every request passes before a handler reads it, so that no input can end in a 500:

- **JSON bodies** (every route that takes JSON, through :class:`GuardedRequest`): nested at most
  :data:`MAX_JSON_DEPTH` arrays and objects deep (msgspec, Litestar's decoder, raises
  ``RecursionError`` at about a thousand levels — a 500 — and no body of this API needs more than
  three), and no NUL character in any string;
- **URL and forms**: no NUL character in the path, the query string or a form field (PostgreSQL
  cannot store or compare text holding NUL: the query would fail with a server error).

A refusal is a 400 whose reason names the problem, in JSON for the API and as the error page for
pages (``web/app.py`` maps it).
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from litestar import Request
from litestar.datastructures import FormMultiDict
from litestar.exceptions import ClientException

from web.errors import refusal

#: Deepest nesting of arrays and objects a JSON body may have.
MAX_JSON_DEPTH = 32

#: A JSON string (with its escapes), removed before the brackets are counted.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: Every byte but the four brackets (deleted by ``bytes.translate`` before counting).
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
#: +1 for an opening bracket, -1 for a closing one, by byte value.
_STEP = [1 if chr(b) in "[{" else -1 if chr(b) in "]}" else 0 for b in range(256)]
#: ``\u0000`` preceded by an even number of backslashes: an escaped NUL character inside a string.
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body`` (0 for a scalar), counted without decoding and
    without recursion: strings are removed, then the brackets counted (C loops only, so a large
    body costs milliseconds)."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def json_problem(body: bytes) -> str | None:
    """The message key of what makes a JSON body unacceptable before decoding, or None."""
    if json_depth(body) > MAX_JSON_DEPTH:
        return "guard.json_depth"
    if b"\x00" in body or _ESCAPED_NUL.search(body):
        return "guard.nul"
    return None


def _refuse(request: Request[Any, Any, Any], key: str) -> ClientException:
    """A 400 with the reason in English for the API, in the visitor's language for pages."""
    # Keyed: the error page translates it (web/errors.py); the detail is English.
    return refusal(ClientException, key, depth=MAX_JSON_DEPTH)


class GuardedRequest(Request[Any, Any, Any]):
    """The app's request class: JSON bodies and forms are checked before anything decodes them."""

    async def json(self) -> Any:
        """The decoded JSON body, after :func:`json_problem` found nothing wrong with it."""
        problem = json_problem(await self.body())
        if problem:
            raise _refuse(self, problem)
        return await super().json()

    async def body(self) -> bytes:
        """The raw body; a url-encoded form with an encoded NUL character is refused."""
        body = await super().body()
        if self.content_type[0] == "application/x-www-form-urlencoded" and (b"%00" in body or b"\x00" in body):
            raise _refuse(self, "guard.nul")
        return body

    async def form(self) -> FormMultiDict:
        """The parsed form (url-encoded or multipart); a text field holding NUL is refused (files may)."""
        form = await super().form()
        for key, value in form.multi_items():
            if "\x00" in key or (isinstance(value, str) and "\x00" in value):
                raise _refuse(self, "guard.nul")
        return form


async def refuse_nul_in_url(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: a NUL character in the path or the query string (``%00``) is refused."""
    query = request.scope.get("query_string", b"")
    if "\x00" in request.scope.get("path", "") or b"%00" in query or b"\x00" in query:
        raise _refuse(request, "guard.nul")
