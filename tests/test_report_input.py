"""One definition of a valid report, applied at every entrance: the JSON API, the report page and the
workflow itself when an integration starts it with the Temporal client (issue 9, finding 11)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from store import queries
from tests.conftest import binary
from tests.platform import Platform
from tests.test_security import client, csrf
from workflows.event_lifecycle import EventLifecycle
from workflows.inputs import checked_report, report_problems
from workflows.types import EventReport, Location, Reporter

#: What a direct Temporal-client start stored before the workflow checked its input.
HOSTILE = {
    "category": "SR-01", "description": "x" * 200_000, "location": {"grid": "<script>", "lat": 999, "lon": 1},
    "reporter": {"name": "", "phone": ""}, "source": "evil",
}
#: Descriptions that hold nothing a worker could read, or bytes no store can keep.
EMPTY_OR_BROKEN = ["   ", "\u200b\u200b", " \u200d\ufeff\u2060 ", "\u3000\u3000", "路灯\x00坏了", "\ud800坏了"]


def _problem_fields(report: EventReport) -> set[str]:
    return {p.field for p in report_problems(report)}


def test_the_hostile_report_of_the_review_has_a_problem_per_field() -> None:
    report = EventReport(category="SR-01", description="x" * 200_000,
                         location=Location(grid="<script>", lat=999, lon=1), source="evil")
    assert _problem_fields(report) == {"description", "location.grid", "location.lat", "source"}


@pytest.mark.parametrize("description", EMPTY_OR_BROKEN)
def test_blank_zero_width_and_nul_descriptions_are_refused(description: str) -> None:
    assert "description" in _problem_fields(EventReport(description=description))


def test_nul_and_non_finite_numbers_are_refused_in_every_field() -> None:
    report = EventReport(description="路灯坏了", location=Location(address="城北路\x00", lat=float("nan"), lon=1.0),
                         reporter=Reporter(name="王\x00五"), external_id="a\x00")
    assert _problem_fields(report) >= {"location.address", "location.lat", "reporter.name", "external_id"}
    assert report_problems(EventReport(description=" 路灯 坏了\n第二行 ")) == []


def test_an_input_whose_types_do_not_fit_is_refused_readably() -> None:
    with pytest.raises(ValueError) as info:
        checked_report({"description": "ok", "location": {"lat": "north", "lon": 1}, "colour": "red"})
    assert "colour" in str(info.value)
    with pytest.raises(ValueError) as info:
        checked_report({"description": 5, "location": "somewhere"})
    assert "location" in str(info.value)


@pytest.mark.parametrize("body", [
    HOSTILE,
    {"description": "路灯\x00坏了"},
    {"description": "\u200b\u200b"},
    {"description": "ok", "reporter": {"name": "王\x00五"}},
    {"description": "ok", "location": {"address": "\ud800"}},
])
async def test_the_api_refuses_what_the_workflow_refuses(platform: Platform, body: dict) -> None:
    # As a client sends it: JSON escapes (\u0000, a lone \ud800) in ASCII.
    r = await platform.http.post("/api/events", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text


async def test_the_report_page_refuses_in_the_visitors_language(platform: Platform) -> None:
    async with client(platform) as resident:
        html = (await resident.get("/report")).text
        for description, shown in (("\u200b \u200b", "问题描述：不能只有空格或不可见字符"),
                                   ("灯\x00坏了", "输入中含有空字符（NUL）"),  # refused before any page (web/guards.py)
                                   ("灯\x07坏了", "问题描述：含有不允许的控制字符"),
                                   ("长" * 2001, "问题描述：不能超过 2000 个字符")):
            r = await resident.post("/report", data={"description": description, "category": "SR-01",
                                                     "grid": "HS01-G1", "_csrf_token": csrf(html)})
            assert r.status_code == 400 and shown in r.text, r.text[-2000:]
            assert "String should" not in r.text and "Value error" not in r.text  # no pydantic English
        r = await resident.post("/report", data={"description": "灯坏了", "category": "NOPE-9",
                                                 "grid": "HS01-G1", "_csrf_token": csrf(html)})
        assert r.status_code == 400 and "没有编码为“NOPE-9”的类别" in r.text


async def test_a_bad_report_started_with_the_temporal_client_fails_fast_and_stores_nothing(
    platform: Platform,
) -> None:
    for raw in (HOSTILE, {"description": "ok", "location": {"lat": "north", "lon": 1}}):
        event_id = f"EV-BAD-{uuid.uuid4().hex[:8]}"
        handle = await platform.client.start_workflow("EventLifecycle", raw, id=event_id,
                                                      task_queue=platform.task_queue)
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(handle.result(), timeout=20)
        cause = info.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "Invalid" and cause.non_retryable
        assert "invalid report" in cause.message and "location.lat" in cause.message
        assert await queries.get_event(platform.db, event_id) is None
        history = await handle.fetch_history()
        assert not [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    assert "description: is longer than 2000" in (await _failure(platform, HOSTILE))
    assert "source: must be one of" in (await _failure(platform, HOSTILE))


async def _failure(platform: Platform, raw: dict) -> str:
    handle = await platform.client.start_workflow(EventLifecycle.run, raw, id=f"EV-BAD-{uuid.uuid4().hex[:8]}",
                                                  task_queue=platform.task_queue)
    with pytest.raises(WorkflowFailureError) as info:
        await asyncio.wait_for(handle.result(), timeout=20)
    assert isinstance(info.value.cause, ApplicationError)
    return info.value.cause.message


async def test_the_temporal_cli_shows_why_a_report_was_refused(
    platform: Platform, dev_env: WorkflowEnvironment
) -> None:
    address = dev_env.client.service_client.config.target_host
    bad = {"description": "\u200b", "location": {"grid": "<script>"}, "source": "evil"}
    proc = await asyncio.to_thread(
        subprocess.run,
        [binary("temporal"), "workflow", "execute", "--address", address, "--type", "EventLifecycle",
         "--task-queue", platform.task_queue, "--workflow-id", f"cli-bad-{uuid.uuid4().hex[:6]}",
         "--input", json.dumps(bad)],
        capture_output=True, text=True, timeout=60,
    )
    shown = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "invalid report" in shown and "description: must not be blank" in shown and "source" in shown, shown


async def test_control_characters_are_refused_in_action_texts_too(platform: Platform) -> None:
    created = await platform.report()
    gw = await platform.login("wg_hs01_g1")

    async def task_id() -> str | None:
        tasks = await queries.event_tasks(platform.db, created["event_id"])
        return tasks[0].task_id if tasks else None
    for _ in range(50):
        found = await task_id()
        if found:
            break
        await asyncio.sleep(0.1)
    assert found
    assert (await platform.http.post(f"/api/tasks/{found}/claim", headers=gw)).status_code == 200
    r = await platform.http.post(f"/api/tasks/{found}/complete", headers=gw, json={"result": "已\x00处理"})
    assert r.status_code == 400 and "NUL character" in r.json()["detail"]  # the web's guard
    r = await platform.http.post(f"/api/tasks/{found}/complete", headers=gw, json={"result": "已\x1b处理"})
    assert r.status_code == 400 and "control character" in r.json()["detail"]  # the workflow's validator
    r = await platform.http.post(f"/api/tasks/{found}/complete", headers=gw, json={"result": "已处理"})
    assert r.status_code == 200


@pytest.mark.parametrize(("phone", "valid"), [
    ("13800000000", True), ("+86 138 0000 0000", True), ("0570-1234567", True), ("(0570)1234567", True),
    ("010-12345678", True), ("", True),
    ("123", False), ("1380000000012345", False), ("12345", False), ("+1 202 555 0100", False),
    ("0570-12", False),
])
def test_phone_numbers_are_mainland_mobiles_or_landlines(phone: str, valid: bool) -> None:
    problems = report_problems(EventReport(description="路灯坏了", reporter=Reporter(phone=phone)))
    assert (problems == []) == valid, problems


async def test_a_made_up_phone_number_is_refused_at_every_entrance(platform: Platform) -> None:
    r = await platform.http.post("/api/events", json={"description": "路灯坏了", "reporter": {"phone": "123"}})
    assert r.status_code == 400 and "mainland China" in r.text
    async with client(platform) as resident:
        html = (await resident.get("/report")).text
        r = await resident.post("/report", data={"description": "路灯坏了", "phone": "1380000000012345",
                                                 "_csrf_token": csrf(html)})
        assert r.status_code == 400 and "不是有效的手机号或固定电话" in r.text
    created = await platform.report()
    r = await platform.http.post(f"/api/events/{created['event_id']}/follow", json={"phone": "123"})
    assert r.status_code == 400
    with pytest.raises(ValueError, match="reporter.phone"):
        checked_report({"description": "路灯坏了", "reporter": {"phone": "555"}})
