"""The typed client of the Temporal contract (wulian/client.py), and the README's example of it run
as written against a test platform."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.platform import Platform, running_platform
from web.commands import event_id_for
from workflows.types import EventReport, Location, Reporter
from wulian.client import EventNotFound, InvalidReport, WulianClient

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
async def plat(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    async with running_platform(dev_env.client, tmp_path_factory.mktemp("client")) as p:
        yield p


def report(**overrides: object) -> EventReport:
    values: dict[str, object] = {"category": "SR-01", "description": "小区门口垃圾堆积", "source": "hotline",
                                 "location": Location(grid="HS01-G1"), "reporter": Reporter(phone="13800000000")}
    values.update(overrides)
    return EventReport(**values)  # type: ignore[arg-type]


async def exists(plat: Platform, event_id: str) -> bool:
    try:
        await plat.client.get_workflow_handle(event_id).describe()
    except RPCError:
        return False
    return True


async def test_same_external_id_is_the_same_event(plat: Platform) -> None:
    client = WulianClient(plat.client, task_queue=plat.task_queue)
    first = await client.start_report(report(), external_id="T-0001")
    second = await client.start_report(report(description="再次来电"), external_id="T-0001")
    assert (first.duplicate, second.duplicate) == (False, True)
    assert first.event_id == second.event_id == event_id_for(report(external_id="T-0001"))  # the API's id
    snapshot = await client.wait_dispatched(first.event_id, timeout=30)
    assert snapshot.state == "dispatched" and snapshot.decision is not None
    assert snapshot.report.description == "小区门口垃圾堆积"  # the second start changed nothing
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{10}", snapshot.receipt_code)  # drawn by the workflow
    assert (await client.snapshot(first.event_id)).version >= snapshot.version
    other = await client.start_report(report(source="camera"), external_id="T-0001")
    assert other.event_id != first.event_id and not other.duplicate  # another source, another event


async def test_invalid_report_is_refused_before_anything_starts(plat: Platform) -> None:
    client = WulianClient(plat.client, task_queue=plat.task_queue)
    bad = report(description="  ", severity=9, reporter=Reporter(phone="12345"), location=Location(lat=1.0))
    with pytest.raises(InvalidReport) as refused:
        await client.start_report(bad, external_id="T-bad")
    fields = {p.field for p in refused.value.problems}
    assert fields == {"description", "severity", "reporter.phone", "location"}
    for name in fields:
        assert name in str(refused.value)  # every problem in the message
    assert not await exists(plat, event_id_for(report(external_id="T-bad")))
    with pytest.raises(InvalidReport, match="external_id"):
        await client.start_report(report(external_id="A-1"), external_id="B-2")
    assert bad.description == "  "  # the caller's report is not changed by the check
    # A camera's alarms join its open event (the platform's store decides): the API's, not the client's.
    alarm = report(source="camera", external_id="CAM-0042:alarm-1")
    with pytest.raises(InvalidReport, match="camera_id"):
        await client.start_report(alarm)
    assert not await exists(plat, event_id_for(alarm))


async def test_unknown_event(plat: Platform) -> None:
    client = WulianClient(plat.client, task_queue=plat.task_queue)
    with pytest.raises(EventNotFound):
        await client.snapshot("EV-XNOSUCHEVENT")
    with pytest.raises(EventNotFound):
        await client.wait_dispatched("EV-XNOSUCHEVENT", timeout=5)


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- readme-example: typed-client -->\n```python\n(.*?)```", text, re.S)
    assert found, "the README's typed-client example is missing"
    return found.group(1)


async def test_the_readme_example_runs(plat: Platform, dev_env: WorkflowEnvironment) -> None:
    env = {**os.environ, "WULIAN_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "WULIAN_TEMPORAL_TASK_QUEUE": plat.task_queue}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", readme_example(), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    started, refused = out.decode().strip().splitlines()
    event_id, receipt, state, unit = started.split()
    assert event_id == event_id_for(EventReport(source="hotline", external_id="2026-000125"))
    assert state == "dispatched" and unit and len(receipt) == 10
    assert refused.startswith("invalid report: description:") and "severity" in refused
