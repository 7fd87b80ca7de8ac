"""A description over 2000 characters is refused with the limit, never cut (issue 10, item 10): by the
one definition of a report (workflows/inputs.py, which the workflow applies first), the API and the
report page, which also gives the whole text back to be shortened."""

from __future__ import annotations

import asyncio
import html as html_lib
import re
import uuid
from pathlib import Path

import pytest

from store import queries
from tests.platform import Platform
from tests.test_security import client, csrf
from workflows.inputs import MAX_DESCRIPTION, InvalidInput, checked_report
from workflows.types import EventReport

TEMPLATE = Path(__file__).parents[1] / "web" / "templates" / "report.html"


def _long(n: int) -> str:
    tag = uuid.uuid4().hex[:8]
    return tag + "长" * (n - len(tag))


def test_the_workflows_input_check_refuses_one_character_over_and_keeps_the_limit_whole() -> None:
    assert MAX_DESCRIPTION == 2000
    text = _long(2000)
    assert checked_report(EventReport(description=text)).description == text
    with pytest.raises(InvalidInput) as info:
        checked_report({"description": _long(2001)})
    assert [(p.field, p.code, p.limit) for p in info.value.problems] == [("description", "too_long", "2000")]
    assert "description: is longer than 2000 characters" in str(info.value)


async def test_the_api_refuses_one_character_over_with_the_limit(platform: Platform) -> None:
    r = await platform.http.post("/api/events", json={"category": "SR-01", "description": _long(2001),
                                                      "location": {"grid": "HS01-G1"}})
    assert r.status_code == 400 and "2000" in r.text, r.text
    text = _long(2000)
    created = await platform.report(description=text)
    event = await queries.get_event(platform.db, created["event_id"])
    assert event is not None and event.description == text  # not one character lost


async def test_the_report_page_refuses_a_long_text_and_gives_it_back_whole(platform: Platform) -> None:
    text = _long(2500)
    async with client(platform) as resident:
        page = (await resident.get("/report")).text
        r = await resident.post("/report", data={"category": "SR-01", "description": text, "grid": "HS01-G1",
                                                  "_csrf_token": csrf(page)})
        assert r.status_code == 400 and "问题描述：不能超过 2000 个字符" in r.text
        shown = re.search(r'<textarea id="description"[^>]*>(.*?)</textarea>', r.text, re.S)
        assert shown and html_lib.unescape(shown.group(1)) == text  # for the resident to shorten, not cut
        exact = _long(2000)
        r = await resident.post("/report", data={"category": "SR-01", "description": exact, "grid": "HS01-G1",
                                                  "_csrf_token": csrf(page)})
        assert r.status_code == 200, r.text[-800:]
        receipt = re.search(r'id="receipt">([0-9A-Z]{10})<', r.text).group(1)  # type: ignore[union-attr]
    for _ in range(50):
        event = await queries.event_by_receipt(platform.db, receipt)
        if event is not None:
            break
        await asyncio.sleep(0.1)
    assert event is not None and event.description == exact


def test_the_form_lets_the_browser_cut_nothing_and_states_the_limit() -> None:
    # A textarea's maxlength makes the browser drop what is pasted beyond it, silently.
    textarea = re.search(r'<textarea id="description"[^>]*>', TEMPLATE.read_text(encoding="utf-8"))
    assert textarea and "maxlength" not in textarea.group(0)
    assert "report.description.limit" in TEMPLATE.read_text(encoding="utf-8")
