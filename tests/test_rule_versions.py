"""Versions of the responsibility list: checking uploads, activation for new events only, dry runs,
diffs, and the `wulian rules` command line."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from rules.diff import diff_lists
from rules.responsibility_list import DEFAULT_LIST_PATH
from store import rule_lists
from store.db import Database
from worker import build_worker
from workflows.event_lifecycle import EventLifecycle
from workflows.types import EventReport, EventSnapshot, Location
from wulian import rule_registry
from wulian.rule_admin import activate, check_content, dry_run
from wulian.rule_registry import ensure_active, parse_list

ROOT = Path(__file__).resolve().parent.parent


def shipped() -> dict[str, Any]:
    return json.loads(DEFAULT_LIST_PATH.read_text(encoding="utf-8"))


def garbage_to_community(version: str = "2026.2") -> str:
    data = shipped()
    data["version"] = version
    next(c for c in data["categories"] if c["code"] == "SR-01")["tier"] = "community"
    return json.dumps(data, ensure_ascii=False)


async def report(env: WorkflowEnvironment, tq: str) -> EventSnapshot:
    handle = await env.client.start_workflow(
        EventLifecycle.run,
        EventReport(category="SR-01", description="垃圾", location=Location(grid="HS01-G1"), source="portal"),
        id=f"EV-V-{uuid.uuid4().hex[:8]}", task_queue=tq,
    )
    return await handle.execute_update(EventLifecycle.wait_dispatched)


async def test_activation_changes_routing_for_new_events_only(
    time_env: WorkflowEnvironment, org_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rule_registry, "ACTIVE_CHECK_SECONDS", 0.0)
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, org_db, tq):
        before = await report(time_env, tq)
        assert before.decision is not None
        assert (before.decision.list_version, before.decision.unit) == ("2026.1", "HS01-G1")

        result = await check_content(org_db, garbage_to_community())
        assert result.parsed is not None and not result.problems
        await activate(org_db, result, "admin")

        after = await report(time_env, tq)
        assert after.decision is not None
        decision = after.decision
        assert (decision.list_version, decision.tier, decision.unit) == ("2026.2", "community", "HS01")
        # the event in flight keeps the version and the unit it started with
        handle = time_env.client.get_workflow_handle(before.event_id)
        still = await handle.query(EventLifecycle.snapshot)
        assert still.decision is not None and still.decision.list_version == "2026.1"
        assert still.tasks[0].unit == "HS01-G1" and still.state == "dispatched"
        for event_id in (before.event_id, after.event_id):
            await time_env.client.get_workflow_handle(event_id).terminate("test over")


async def test_a_broken_upload_activates_nothing(org_db: Database) -> None:
    await ensure_active(org_db)
    data = shipped()
    data["version"] = "2026.9"
    data["categories"][0]["tier"] = "province"
    data["categories"][1]["department"] = "NOPE"
    data["categories"][2]["group"] = "QQ"
    data["categories"][3]["code"] = data["categories"][4]["code"]
    result = await check_content(org_db, json.dumps(data, ensure_ascii=False).encode())
    places = {p.place for p in result.problems}
    first, second, third = (data["categories"][i]["code"] for i in range(3))
    assert f"category {first}, field tier" in places
    assert f"category {second}, field department" in places
    assert f"category {third}, field group" in places
    assert f"category {data['categories'][4]['code']}, field code" in places
    assert result.parsed is None
    with pytest.raises(ValueError):
        await activate(org_db, result, "admin")
    active = await rule_lists.active_version(org_db)
    assert active is not None and active.version == "2026.1"
    bad_json = await check_content(org_db, b'{"version": ')
    assert bad_json.problems and bad_json.problems[0].place.startswith("line 1")


async def test_a_version_number_cannot_be_reused_for_other_content(org_db: Database) -> None:
    await ensure_active(org_db)
    data = shipped()
    data["categories"][0]["name_en"] = "changed but same version"
    result = await check_content(org_db, json.dumps(data, ensure_ascii=False))
    assert result.parsed is not None
    with pytest.raises(ValueError, match="already exists"):
        await activate(org_db, result, "admin")


async def test_dry_run_lists_events_that_would_route_differently(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, org_db, tq):
        snap = await report(time_env, tq)
        candidate = parse_list(garbage_to_community())
        checked, changes = await dry_run(org_db, candidate, last=50)
        assert checked == 1 and len(changes) == 1
        change = changes[0]
        assert change.event_id == snap.event_id
        assert (change.before["unit"], change.after["unit"]) == ("HS01-G1", "HS01")
        same, none = await dry_run(org_db, parse_list(DEFAULT_LIST_PATH.read_text(encoding="utf-8")), last=50)
        assert same == 1 and none == []
        await time_env.client.get_workflow_handle(snap.event_id).terminate("test over")


def test_diff_between_versions() -> None:
    old = parse_list(DEFAULT_LIST_PATH.read_text(encoding="utf-8"))
    data = json.loads(garbage_to_community())
    data["categories"] = [c for c in data["categories"] if c["code"] != "SR-03"]
    data["categories"].append({**data["categories"][0], "code": "SR-99", "name_zh": "新类别"})
    data["policies"] = {**data.get("policies", {}), "repeat_threshold": 3}  # the shipped policies, one changed
    new = parse_list(json.dumps(data, ensure_ascii=False))
    diff = diff_lists(old, new)
    assert diff.added == ["SR-99"] and diff.removed == ["SR-03"]
    assert diff.changed["SR-01"] == {"tier": ("grid", "community")}
    assert diff.policies == {"repeat_threshold": (2, 3)}
    assert "~ SR-01.tier: 'grid' → 'community'" in diff.lines()
    assert diff_lists(old, old).empty


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"WULIAN_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "wulian.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


def test_cli_check_activate_versions_and_diff(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    data = shipped()
    data["categories"][0]["deadlines"]["handling"] = 0
    broken.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = run_cli("rules", "check", str(broken), data_dir=tmp_path)
    assert result.returncode == 1
    assert f"category {data['categories'][0]['code']}, field deadlines.handling" in result.stderr

    good = tmp_path / "good.json"
    good.write_text(garbage_to_community(), encoding="utf-8")
    assert run_cli("rules", "check", str(good), data_dir=tmp_path).returncode == 0
    assert run_cli("seed", data_dir=tmp_path).returncode == 0
    result = run_cli("rules", "activate", str(broken), data_dir=tmp_path)
    assert result.returncode == 1 and "nothing activated" in result.stderr
    result = run_cli("rules", "activate", str(good), data_dir=tmp_path)
    assert result.returncode == 0 and "2026.2" in result.stdout, result.stderr
    versions = run_cli("rules", "versions", data_dir=tmp_path).stdout.splitlines()
    assert versions[0].startswith("* 2026.2") and versions[1].startswith("  2026.1")
    diff = run_cli("rules", "diff", "2026.1", "2026.2", data_dir=tmp_path).stdout
    assert "SR-01.tier: 'grid' → 'community'" in diff
