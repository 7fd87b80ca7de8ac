"""The closed loop end to end through the JSON API, against a real Temporal dev server."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.conftest import binary
from tests.platform import Platform, running_platform

SIX_STAGES = ["intake", "dispatch", "handling", "verification", "feedback", "close"]


async def _task_of(p: Platform, headers: dict[str, str], event_id: str, kind: str) -> dict:
    for _ in range(50):
        inbox = (await p.http.get("/api/inbox", headers=headers)).json()
        for task in inbox["tasks"]:
            if task["event_id"] == event_id and task["kind"] == kind:
                return task
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {kind} task of {event_id} in the inbox: {inbox}")


async def test_closed_loop_through_the_api(platform: Platform) -> None:
    created = await platform.report()
    assert created["state"] == "dispatched"
    assert created["unit"] == "HS01-G1" and created["tier"] == "grid"
    assert created["decision"]["rule"] == "category:SR-01"
    event_id, receipt = created["event_id"], created["receipt_code"]

    gw = await platform.login("wg_hs01_g1")
    task = await _task_of(platform, gw, event_id, "handle")
    assert task["status"] == "open" and task["due_at"]
    r = await platform.http.post(f"/api/tasks/{task['task_id']}/claim", headers=gw)
    assert r.status_code == 200, r.text
    r = await platform.http.post(f"/api/tasks/{task['task_id']}/complete", headers=gw, json={"result": "已清理"})
    assert r.status_code == 200 and r.json()["event_state"] == "verification"

    sq = await platform.login("sq_hs01")  # the grid did the work: its community verifies
    verify = await _task_of(platform, sq, event_id, "verify")
    assert (await platform.http.post(f"/api/tasks/{verify['task_id']}/claim", headers=sq)).status_code == 200
    r = await platform.http.post(
        f"/api/tasks/{verify['task_id']}/complete", headers=sq, json={"result": "现场已核实", "passed": True}
    )
    assert r.status_code == 200 and r.json()["event_state"] == "feedback"

    track = (await platform.http.get(f"/api/track/{receipt}")).json()
    assert track["can_rate"] is True and "actor" not in track["timeline"][0]
    r = await platform.http.post(f"/api/track/{receipt}/rating", json={"rating": "satisfied", "comment": "很快"})
    assert r.status_code == 403 and "tracking key" in r.json()["detail"]  # the receipt code alone rates nothing
    key = created["tracking_key"]
    r = await platform.http.post(f"/api/track/{receipt}/rating",
                                 json={"rating": "satisfied", "comment": "很快", "tracking_key": key})
    assert r.status_code == 200 and r.json()["state"] == "closed"

    detail = (await platform.http.get(f"/api/events/{event_id}", headers=gw)).json()
    assert detail["state"] == "closed" and detail["rating"] == "satisfied"
    stages = [e["stage"] for e in detail["timeline"]]
    assert [s for i, s in enumerate(stages) if s not in stages[:i]] == SIX_STAGES
    assert detail["decision"]["list_version"] and detail["decision"]["rule"] == "category:SR-01"
    actors = {e["action"]: e["actor"] for e in detail["timeline"]}
    assert actors["route"] == "rule:category:SR-01"
    assert [e["actor"] for e in detail["timeline"] if e["action"] == "claim"] == ["wg_hs01_g1", "sq_hs01"]
    # A second rating is a conflict, not a silent overwrite.
    again = await platform.http.post(f"/api/track/{receipt}/rating",
                                     json={"rating": "dissatisfied", "tracking_key": created["tracking_key"]})
    assert again.status_code == 409


async def test_two_concurrent_claims_one_wins(platform: Platform) -> None:
    created = await platform.report()
    gw = await platform.login("wg_hs01_g1")
    task = await _task_of(platform, gw, created["event_id"], "handle")
    url = f"/api/tasks/{task['task_id']}/claim"
    first, second = await asyncio.gather(platform.http.post(url, headers=gw), platform.http.post(url, headers=gw))
    codes = sorted([first.status_code, second.status_code])
    assert codes == [200, 409], (first.text, second.text)
    loser = first if first.status_code == 409 else second
    assert "already claimed" in loser.json()["detail"]


async def test_another_grid_cannot_claim_or_read(platform: Platform) -> None:
    created = await platform.report()
    gw = await platform.login("wg_hs01_g1")
    task = await _task_of(platform, gw, created["event_id"], "handle")
    other = await platform.login("wg_st01_g1")
    r = await platform.http.post(f"/api/tasks/{task['task_id']}/claim", headers=other)
    assert r.status_code == 403
    assert (await platform.http.get(f"/api/events/{created['event_id']}", headers=other)).status_code == 403
    assert (await platform.http.get(f"/api/events/{created['event_id']}")).status_code == 401
    # the street supervisor of the event's street sees it
    zx = await platform.login("zx_hs")
    assert (await platform.http.get(f"/api/events/{created['event_id']}", headers=zx)).status_code == 200


async def test_same_external_id_gives_one_event(platform: Platform) -> None:
    a = await platform.report(external_id="12345-2026-0001", source="hotline")
    body = {"category": "SR-01", "description": "小区门口垃圾堆积", "location": {"grid": "HS01-G1"},
            "source": "hotline", "external_id": "12345-2026-0001"}
    r = await platform.http.post("/api/events", json=body)
    # The same event, and nothing of it: anyone can guess a ticket number, only the first answer
    # (to the integration that reported it) carries the receipt code and the tracking key.
    assert r.status_code == 200 and r.json() == {"event_id": a["event_id"], "duplicate": True}
    assert a["receipt_code"] and a["tracking_key"]


async def test_bad_input_is_a_clear_4xx(platform: Platform) -> None:
    r = await platform.http.post("/api/events", json={"category": "NOPE-1", "description": "x"})
    assert r.status_code == 400 and "unknown category" in r.json()["detail"]
    r = await platform.http.post("/api/events", json={"description": "x", "location": {"lat": 28.7}})
    assert r.status_code == 400
    r = await platform.http.post("/api/events", json={"description": "x", "source": "fax"})
    assert r.status_code == 400
    r = await platform.http.post("/api/auth/login", json={"username": "wg_hs01_g1", "password": "wrong"})
    assert r.status_code == 401
    gw = await platform.login("wg_hs01_g1")
    r = await platform.http.post("/api/tasks/EV-none.T1/claim", headers=gw)
    assert r.status_code == 404


async def test_unplaced_event_goes_to_triage_and_a_supervisor_places_it(platform: Platform) -> None:
    created = await platform.report(category="", location={"address": "鹿溪花园东门"})
    assert created["state"] == "triage"
    zx = await platform.login("zx_hs") if created["unit"] == "CC-HS" else None
    assert zx is not None, created
    task = await _task_of(platform, zx, created["event_id"], "triage")
    r = await platform.http.post(
        f"/api/tasks/{task['task_id']}/triage", headers=zx, json={"category": "SR-01", "unit": "HS02-G1"}
    )
    assert r.status_code == 200 and r.json()["event_state"] == "dispatched"
    detail = (await platform.http.get(f"/api/events/{created['event_id']}", headers=zx)).json()
    assert detail["decision"]["rule"] == "manual-triage" and detail["decision"]["actor"] == "zx_hs"


async def test_admin_lists_users_of_a_unit(platform: Platform) -> None:
    admin = await platform.login("admin", "admin12345")
    r = await platform.http.get("/api/users?unit=HS01-G1", headers=admin)
    assert r.status_code == 200 and [u["username"] for u in r.json()["users"]] == ["wg_hs01_g1"]
    gw = await platform.login("wg_hs01_g1")
    assert (await platform.http.get("/api/users", headers=gw)).status_code == 403
    units = (await platform.http.get("/api/units")).json()["units"]
    assert units[0]["code"] == "JS" and len(units[0]["children"]) >= 3


async def test_event_started_with_the_temporal_cli_reaches_the_inbox(
    platform: Platform, dev_env: WorkflowEnvironment
) -> None:
    report = {
        "category": "JM-02",
        "description": "流动摊贩占道 (12345 热线)",
        "location": {"grid": "ST01-G1"},
        "reporter": {"name": "李四", "phone": "13900000000"},
        "source": "hotline",
        "external_id": "cli-0001",
    }
    address = dev_env.client.service_client.config.target_host
    proc = await asyncio.to_thread(
        subprocess.run,
        [binary("temporal"), "workflow", "start", "--address", address, "--type", "EventLifecycle",
         "--task-queue", platform.task_queue, "--workflow-id", "hotline-cli-0001",
         "--input", json.dumps(report, ensure_ascii=False)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    gw = await platform.login("wg_st01_g1")
    task = await _task_of(platform, gw, "hotline-cli-0001", "handle")
    assert task["description"].startswith("流动摊贩") and task["status"] == "open"


async def test_killed_worker_loses_nothing(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_platform(dev_env.client, tmp_path, with_worker=False) as p:
        async with p.start_worker():
            created = await p.report()
            gw = await p.login("wg_hs01_g1")
            task = await _task_of(p, gw, created["event_id"], "handle")
            assert (await p.http.post(f"/api/tasks/{task['task_id']}/claim", headers=gw)).status_code == 200
        # the worker is gone: a command now cannot be processed, but nothing is lost
        async with p.start_worker():
            r = await p.http.post(f"/api/tasks/{task['task_id']}/complete", headers=gw, json={"result": "done"})
            assert r.status_code == 200 and r.json()["event_state"] == "verification"
            detail = (await p.http.get(f"/api/events/{created['event_id']}", headers=gw)).json()
            assert [e["action"] for e in detail["timeline"]] == ["report", "route", "claim", "complete"]
