"""Security headers on every kind of answer (web/headers.py), cookies' Secure flag, the /schema page,
and templates free of inline script and style (which the Content-Security-Policy would refuse)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from litestar import Litestar, get

from store.db import Database
from tests.platform import csrf
from web.app import create_app
from web.context import AppContext
from web.headers import CONTENT_SECURITY_POLICY
from wulian.settings import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"


def make_app(db: Database, tmp_path: Path, mode: str = "demo") -> Litestar:
    """The real app on a store with the demo organisation (no Temporal: nothing here needs it),
    with two routes that fail, for the 500 answers."""
    settings = Settings(mode=mode, data_dir=tmp_path, secret_key="header-test-secret-" + "x" * 32)
    app = create_app(settings, AppContext(settings=settings, db=db))

    @get("/test-failure", sync_to_thread=False, include_in_schema=False)
    def page_failure() -> str:
        raise RuntimeError("a bug in a page")

    @get("/api/test-failure", sync_to_thread=False, include_in_schema=False)
    def api_failure() -> str:
        raise RuntimeError("a bug in the API")

    app.register(page_failure)
    app.register(api_failure)
    return app


@pytest.fixture
async def http(org_db: Database, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(org_db, tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_security_headers(response: httpx.Response, *, cacheable: bool = False) -> None:
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    assert response.headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, where
    assert response.headers.get("x-frame-options") == "DENY", where
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "same-origin", where
    cache = response.headers.get("cache-control", "")
    if cacheable:
        assert "no-store" not in cache, where
    else:
        assert cache == "no-store", where


async def page_login(http: httpx.AsyncClient, username: str = "wg_hs01_g1") -> list[httpx.Response]:
    """Log in through the form: the form's answer and the login's. The CSRF cookie is passed by
    hand (the client does not send a Secure cookie back over plain HTTP; a browser behind TLS would)."""
    form = await http.get("/login")
    set_now = [c.split(";")[0] for c in form.headers.get_list("set-cookie") if c.startswith("csrftoken=")]
    token = set_now[0] if set_now else f"csrftoken={http.cookies['csrftoken']}"
    login = await http.post(
        "/login", data={"username": username, "password": "demo12345", "_csrf_token": csrf(form.text)},
        headers={"cookie": token},
    )
    assert login.status_code == 303, login.text
    return [form, login]


def test_the_policy_allows_this_origin_only_and_no_inline_script() -> None:
    directives = {d.split()[0]: d.split()[1:] for d in CONTENT_SECURITY_POLICY.split("; ")}
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"] and directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"] and directives["form-action"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert {s for sources in directives.values() for s in sources} <= {"'self'", "'none'"}


async def test_every_kind_of_answer_carries_the_security_headers(http: httpx.AsyncClient) -> None:
    # Pages: public, and behind the login; API answers: public and with a token.
    assert_security_headers(await http.get("/login"))
    assert_security_headers(await http.get("/report"))
    await page_login(http)
    inbox = await http.get("/inbox")
    assert inbox.status_code == 200, inbox.text
    assert_security_headers(inbox)
    assert_security_headers(await http.get("/api/categories"))
    token = (await http.post("/api/auth/login", json={"username": "wg_hs01_g1", "password": "demo12345"})).json()
    assert_security_headers(await http.get("/api/inbox", headers={"Authorization": f"Bearer {token['token']}"}))
    # Static files: the same headers, and cacheable.
    for path in ("/static/app.js", "/static/style.css"):
        response = await http.get(path)
        assert response.status_code == 200
        assert_security_headers(response, cacheable=True)
    # Errors: unknown pages and API paths, a wrong method, an API refusal, and a bug (500).
    for method, path, status in [
        ("GET", "/no-such-page", 404), ("GET", "/api/no-such-thing", 404), ("GET", "/schema/swagger", 404),
        ("DELETE", "/login", 405), ("GET", "/api/inbox", 401),
        ("GET", "/test-failure", 500), ("GET", "/api/test-failure", 500),
    ]:
        response = await http.request(method, path)
        assert response.status_code == status, (path, response.text)
        assert_security_headers(response)
        assert "Traceback" not in response.text and "a bug in" not in response.text
    page_500 = await http.get("/test-failure")
    assert "出错了" in page_500.text and "<script src=\"/static/app.js\"" in page_500.text
    assert (await http.get("/api/test-failure")).json()["status_code"] == 500


async def test_schema_page_and_documents(http: httpx.AsyncClient) -> None:
    """/schema lists the operations without any script from elsewhere; the documents still load."""
    page = await http.get("/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert_security_headers(page)
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/app.js" defer>']
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), "loads something from elsewhere"
    assert "<code>/api/events</code>" in page.text and 'href="/schema/openapi.json"' in page.text
    document = await http.get("/schema/openapi.json")
    assert document.status_code == 200
    assert_security_headers(document)
    paths = json.loads(document.text)["paths"]
    assert "/api/events" in paths
    as_yaml = await http.get("/schema/openapi.yaml")
    assert as_yaml.status_code == 200 and yaml.safe_load(as_yaml.text)["paths"].keys() == paths.keys()


@pytest.mark.parametrize(("mode", "scheme", "secure"), [
    ("demo", "http", False),
    ("demo", "https", True),
    ("production", "http", True),
    ("production", "https", True),
])
async def test_cookies_are_secure_in_production_and_over_https(
    org_db: Database, tmp_path: Path, mode: str, scheme: str, secure: bool,
) -> None:
    """Session, CSRF and language cookies: ``Secure`` unless plain HTTP in demo mode."""
    transport = httpx.ASGITransport(app=make_app(org_db, tmp_path, mode))
    async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://testserver") as http:
        answers = [*await page_login(http), await http.get("/lang/en")]
    cookies = [c for answer in answers for c in answer.headers.get_list("set-cookie")]
    assert {c.split("=", 1)[0] for c in cookies} == {"csrftoken", "wulian_session", "lang"}, cookies
    for cookie in cookies:
        flags = [f.strip().lower() for f in cookie.split(";")[1:]]
        assert ("secure" in flags) == secure, (mode, scheme, cookie)
        assert flags.count("secure") <= 1
    session = next(c for c in cookies if c.startswith("wulian_session="))
    assert "httponly" in session.lower() and "samesite=lax" in session.lower()


def test_templates_carry_no_inline_script_style_or_handlers() -> None:
    """The policy refuses them: a page with one would lose that script or style in the browser."""
    problems = []
    for template in sorted(TEMPLATES.glob("*.html")):
        text = template.read_text(encoding="utf-8")
        for pattern, what in [
            (r"<script(?![^>]*\bsrc=)[^>]*>", "inline <script>"),
            (r"<style\b", "<style> element"),
            (r"\sstyle\s*=", "style attribute"),
            (r"\son[a-z]+\s*=", "event handler attribute"),
            (r"javascript:", "javascript: URL"),
        ]:
            problems += [f"{template.name}: {what}: {m.group(0)}" for m in re.finditer(pattern, text, re.I)]
    assert not problems, problems


def test_https_behind_a_trusted_proxy_makes_cookies_secure() -> None:
    """uvicorn runs with --no-proxy-headers (so nobody forges their address): the scheme a proxy saw
    is taken from X-Forwarded-Proto only when the peer is a trusted proxy."""
    from web.headers import cookies_secure
    from wulian.settings import Settings

    behind = Settings(trusted_proxies="10.0.0.0/8", secret_key="x")
    alone = Settings(secret_key="x")
    https = [(b"x-forwarded-proto", b"https")]
    assert cookies_secure(behind, {"client": ("10.1.2.3", 5000), "scheme": "http", "headers": https})
    assert not cookies_secure(behind, {"client": ("203.0.113.9", 5000), "scheme": "http", "headers": https})
    assert not cookies_secure(alone, {"client": ("10.1.2.3", 5000), "scheme": "http", "headers": https})
    assert not cookies_secure(behind, {"client": ("10.1.2.3", 5000), "scheme": "http",
                                       "headers": [(b"x-forwarded-proto", b"http")]})
