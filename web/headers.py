"""The security headers of every answer and the Secure flag of cookies: the policy in one place.

:func:`security_headers` is a Litestar ``before_send`` hook. Litestar calls those for every ASGI
message the app sends, so pages, API answers, static files, photos, the OpenAPI schema and every
error (a 404 for an unknown path, a 405, a 500) are covered alike, whichever code produced them.

- ``Content-Security-Policy``: everything from this origin only, no inline script or style (there
  is none: the templates load ``/static/app.js`` and ``/static/style.css``, and carry no ``style=``,
  ``on*=`` or ``javascript:``), no plugins, no framing, forms post only here;
- ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``;
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``;
- ``Cache-Control: no-store`` on everything but ``/static/`` (pages hold personal data and CSRF
  tokens, API answers and photos too); static files may be cached, revalidated (``no-cache``) so a
  new release's script is picked up;
- every cookie the app sets (session, CSRF, language) is ``Secure`` in production mode or when the
  request came over HTTPS, so a TLS deployment never sends it in the clear.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import BeforeMessageSendHookHandler, Message, Scope

from web.client_address import forwarded_https
from wulian.settings import Settings

#: The Content-Security-Policy of every answer.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

#: Headers set on every answer, replacing any value a handler gave.
FIXED_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

#: Where cacheable files live; everything else is ``no-store``.
STATIC_PREFIX = "/static/"


def cookies_secure(settings: Settings, scope: Scope) -> bool:
    """Whether cookies must be ``Secure`` for this request: production mode, or HTTPS (directly, or as a
    trusted proxy says: uvicorn runs with ``--no-proxy-headers``, so the scheme is the socket's)."""
    return (settings.mode == "production" or scope.get("scheme") in ("https", "wss")
            or forwarded_https(scope, settings))


def _secured(cookie: bytes) -> bytes:
    """A ``Set-Cookie`` value with the ``Secure`` attribute (added once)."""
    attributes = [part.strip().lower() for part in cookie.split(b";")[1:]]
    return cookie if b"secure" in attributes else cookie + b"; Secure"


def security_headers(settings: Settings) -> BeforeMessageSendHookHandler:
    """The ``before_send`` hook that adds the headers above to every HTTP answer."""

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        for name, value in FIXED_HEADERS.items():
            headers[name] = value
        if scope.get("path", "").startswith(STATIC_PREFIX):
            if "cache-control" not in headers:
                headers["cache-control"] = "no-cache"
        else:
            headers["cache-control"] = "no-store"
        if cookies_secure(settings, scope):
            headers.headers[:] = [
                (name, _secured(value) if name.lower() == b"set-cookie" else value)
                for name, value in headers.headers
            ]

    return hook
