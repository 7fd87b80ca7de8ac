"""The administrator's pages for the responsibility list: versions, upload with check and dry run,
activation, diff; and nobody else may use them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from rules.responsibility_list import DEFAULT_LIST_PATH
from tests.platform import Platform, csrf, running_platform


@pytest.fixture
async def platform(dev_env: WorkflowEnvironment, tmp_path: Path):  # type: ignore[no-untyped-def]
    async with running_platform(dev_env.client, tmp_path, with_worker=False) as p:
        yield p


async def login(http: httpx.AsyncClient, username: str, password: str) -> None:
    html = (await http.get("/login")).text
    r = await http.post("/login", data={"username": username, "password": password, "_csrf_token": csrf(html)})
    assert r.status_code == 303


def list_file(version: str, *, break_it: bool = False) -> bytes:
    data = json.loads(DEFAULT_LIST_PATH.read_text(encoding="utf-8"))
    data["version"] = version
    next(c for c in data["categories"] if c["code"] == "SR-01")["tier"] = "community"
    if break_it:
        data["categories"][5]["deadlines"]["handling"] = -1
    return json.dumps(data, ensure_ascii=False).encode()


async def test_admin_uploads_checks_activates_and_diffs(platform: Platform) -> None:
    http = platform.http
    await login(http, "admin", "admin12345")
    page = (await http.get("/admin/rules")).text
    assert "权责清单管理" in page and "2026.1" in page and "165" in page

    r = await http.post("/admin/rules/upload", data={"_csrf_token": csrf(page)},
                        files={"file": ("broken.json", list_file("2026.5", break_it=True), "application/json")})
    # Each problem with its place, in the page's language (the field's name in the file too).
    broken = json.loads(DEFAULT_LIST_PATH.read_text(encoding="utf-8"))["categories"][5]["code"]
    assert r.status_code == 400 and "未启用" in r.text and f"类别 {broken}" in r.text
    assert re.search(r"时限 › 执行处置 <code translate=\"no\">deadlines.handling</code></td><td>应大于 0</td>", r.text)

    r = await http.post("/admin/rules/upload", data={"_csrf_token": csrf(page)},
                        files={"file": ("v2.json", list_file("2026.2"), "application/json")})
    assert r.status_code == 200, r.text
    assert "2026.2" in r.text
    assert re.search(r"层级 <code translate=\"no\">tier</code></td><td>网格</td><td>社区</td>", r.text)
    # The dry run points to the comparison over a simulated year (wulian simulate --list).
    assert "同一模拟年" in r.text and "wulian simulate --list 2026.2.json" in r.text
    page = (await http.get("/admin/rules")).text
    assert re.search(r"<code>2026.1</code> ✓", page)  # stored, but not active until confirmed

    r = await http.post("/admin/rules/2026.2/activate", data={"_csrf_token": csrf(page)})
    assert r.status_code == 303
    page = (await http.get(r.headers["location"])).text
    assert re.search(r"<code>2026.2</code> ✓", page) and "已启用新版本" in page
    categories = (await http.get("/api/categories")).json()
    assert categories["version"] == "2026.2"

    diff = (await http.get("/admin/rules/diff?old=2026.1&new=2026.2")).text
    assert "SR-01" in diff and "社区" in diff


async def test_only_admins_see_the_rules_pages(platform: Platform) -> None:
    http = platform.http
    r = await http.get("/admin/rules")
    assert r.status_code in (302, 303) and r.headers["location"] == "/login"
    await login(http, "zx_city", "demo12345")
    assert (await http.get("/admin/rules")).status_code == 403
    page = (await http.get("/inbox")).text
    r = await http.post("/admin/rules/2026.1/activate", data={"_csrf_token": csrf(page)})
    assert r.status_code == 403
