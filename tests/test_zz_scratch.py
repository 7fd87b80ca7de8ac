from __future__ import annotations

import pytest

import activities.reports as ar
from tests import test_reports as tr


@pytest.fixture(autouse=True)
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    async def compute(db, job):  # type: ignore[no-untyped-def]
        return {"units": [{"code": f"U{i}"} for i in range(60)], "indicators": []}, None
    monkeypatch.setattr(ar, "compute", compute)


test_schedule = tr.test_the_schedule_stores_a_snapshot_once_per_period


async def test_attr(dev_env, tmp_path):  # type: ignore[no-untyped-def]
    import uuid

    from tests.platform import running_platform
    from workflows.period_report import SCHEDULED_START
    from wulian.report_schedules import SCHEDULES, ensure_report_schedules, schedule_id
    client = dev_env.client
    prefix = f"t-{uuid.uuid4().hex[:6]}"
    async with running_platform(client, tmp_path) as p:
        await ensure_report_schedules(client, p.task_queue, prefix)
        h = client.get_schedule_handle(schedule_id(SCHEDULES[0], prefix))
        await h.trigger()
        [wid] = await tr._run_ids(client, schedule_id(SCHEDULES[0], prefix), 1)
        d = await client.get_workflow_handle(wid).describe()
        print("ATTR", d.typed_search_attributes.get(SCHEDULED_START), d.id)
        await client.get_workflow_handle(wid).result()
        async for e in client.get_workflow_handle(wid).fetch_history_events():
            if e.HasField("workflow_execution_started_event_attributes"):
                print("START", e.workflow_execution_started_event_attributes.search_attributes)
                break
