"""Process definitions kept as versioned data (issue 14, item 1): one active version per kind, uploads
and activations audited, a definition checked and dry-run before it is stored, the changes between
versions, the CLI that does it all, the typed client's ``start_process`` pinned to the active version,
and the projection that keeps an older write from overwriting a newer one."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from processes.definition import parse, shipped
from processes.instance import Requester
from processes.messages import ProcessProjection
from store import models, process_versions
from store.db import Database
from store.process_projection import apply_process
from tests.process_scenarios import GRID_WORKER
from worker import build_worker
from workflows.process_instance import ProcessAction, ProcessInstanceWorkflow, ProcessSnapshot
from wulian.client import InvalidProcessStart, WulianClient
from wulian.process_admin import check_content, diff_lines, dry_run, store_checked

FIFTH = Path(__file__).parent / "data" / "elderly_visit.json"


def fifth(version: str, **task: Any) -> dict[str, Any]:
    """The fifth definition (a visiting round) at ``version``, its task's fields replaced by ``task``."""
    raw: dict[str, Any] = json.loads(FIFTH.read_text(encoding="utf-8"))
    raw["version"] = version
    raw["states"][0]["task"].update(task)
    return raw


async def audit(db: Database, prefix: str) -> list[tuple[str, str, str]]:
    async with db.session() as session:
        rows = (await session.exec(select(models.AuditEntry).where(models.AuditEntry.action.startswith(prefix))  # type: ignore[attr-defined]
                                   .order_by(models.AuditEntry.id))).all()  # type: ignore[arg-type]
    return [(r.actor, r.action, r.target) for r in rows]


async def test_each_kind_keeps_its_own_active_version_and_every_change_is_audited(org_db: Database) -> None:
    defs = await process_versions.active_definitions(org_db)  # the shipped ones become the first versions
    assert sorted(defs) == ["deliberation", "micro_wish", "proxy_service", "volunteer_activity"]
    v1 = check_content(json.dumps(fifth("1")))
    await store_checked(org_db, v1, "admin", now=True)
    v2 = check_content(json.dumps(fifth("2", deadline={"hours": 8})))
    await store_checked(org_db, v2, "admin", now=False)
    assert (await process_versions.active_definition(org_db, "elderly_visit")).version == "1"  # type: ignore[union-attr]
    await process_versions.activate_stored(org_db, "elderly_visit", "2", "admin")
    defs = await process_versions.active_definitions(org_db)
    assert defs["elderly_visit"].version == "2" and len(defs) == 5  # the other kinds stay active
    versions = await process_versions.list_versions(org_db, "elderly_visit")
    assert {(v.version, v.active) for v in versions} == {("1", False), ("2", True)}
    assert [a for a in await audit(org_db, "process_") if a[2].startswith("elderly_visit")] == [
        ("admin", "process_upload", "elderly_visit/1"), ("admin", "process_activate", "elderly_visit/1"),
        ("admin", "process_upload", "elderly_visit/2"), ("admin", "process_activate", "elderly_visit/2")]
    # Another definition under a stored version is refused; the same one laid out differently is the same.
    with pytest.raises(ValueError, match="already exists"):
        await store_checked(org_db, check_content(json.dumps(fifth("2", deadline={"hours": 9}))), "admin", now=True)
    again = await store_checked(org_db, check_content(json.dumps(fifth("2", deadline={"hours": 8}), indent=4)),
                                "admin", now=True)
    assert again.version == "2" and len(await process_versions.list_versions(org_db, "elderly_visit")) == 2
    with pytest.raises(LookupError):
        await process_versions.activate_stored(org_db, "elderly_visit", "9", "admin")


def test_an_upload_is_refused_with_its_problems_and_places_before_anything_is_stored() -> None:
    assert check_content(b"\xff\xfe").problems[0].code == "not_utf8"
    assert check_content(b"{\n  \"kind\": ").problems[0].code == "not_json"
    raw = fifth("3")
    raw["transitions"][0]["dest"] = "nowhere"
    result = check_content(json.dumps(raw))
    assert result.parsed is None
    assert ("transitions.0.dest", "unknown_state") in {(p.field, p.code) for p in result.problems}


def test_the_dry_run_walks_every_shipped_definition_to_its_end_and_stops_at_a_form_nobody_can_fill() -> None:
    for d in shipped():
        run = dry_run(d)
        assert run.final in d.final_states() and run.stopped is None, (d.kind, run)
        assert len(run.steps) >= 2
    volunteer = dry_run(next(d for d in shipped() if d.kind == "volunteer_activity"))
    assert [s.outcome for s in volunteer.steps] == ["close_sign_up", "confirm_hours"]
    impossible = parse(fifth("4", form=[{"name": "hours", "label_zh": "时长", "type": "integer", "required": True,
                                          "min": 5, "max": 3}]))
    run = dry_run(impossible)
    assert run.final is None and run.stopped is not None and run.stopped.startswith("invalid_form")


def test_the_diff_names_each_change_of_a_task_a_move_and_a_field() -> None:
    old = parse(fifth("1"))
    raw = fifth("2", deadline={"hours": 8})
    raw["input"].append({"name": "note", "label_zh": "备注", "type": "text"})
    lines = diff_lines(old, parse(raw))
    assert '~ state scheduled: task deadline: {"hours": 40} → {"hours": 8}' in lines
    assert "+ start form field note (备注)" in lines
    assert diff_lines(old, old) == []


def test_the_cli_activates_a_definition_after_its_check_and_dry_run_and_shows_the_diff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from wulian.cli import app
    from wulian.settings import get_settings

    monkeypatch.setenv("WULIAN_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(app, ["process", "activate", str(FIFTH)])
        assert first.exit_code == 0, first.output
        assert "dry run: scheduled" in first.output and "elderly_visit version 1 is now active" in first.output
        v2 = tmp_path / "v2.json"
        v2.write_text(json.dumps(fifth("2", deadline={"hours": 8}), ensure_ascii=False), encoding="utf-8")
        second = CliRunner().invoke(app, ["process", "activate", str(v2)])
        assert second.exit_code == 0 and "1 → 2: ~ state scheduled: task deadline" in second.output
        bad = tmp_path / "bad.json"
        raw = fifth("3")
        raw["states"][0]["task"].pop("taker")
        bad.write_text(json.dumps(raw), encoding="utf-8")
        refused = CliRunner().invoke(app, ["process", "activate", str(bad)])
        assert refused.exit_code == 1 and "states.0.task.taker" in refused.output
        listed = CliRunner().invoke(app, ["process", "versions"])
        assert "* elderly_visit 2" in listed.output and "  elderly_visit 1" in listed.output
        assert "* proxy_service 1" in listed.output
        diff = CliRunner().invoke(app, ["process", "diff", "elderly_visit", "1", "2"])
        assert diff.exit_code == 0 and "task deadline" in diff.output
    finally:
        get_settings.cache_clear()


async def test_the_client_starts_on_the_active_version_and_the_instance_keeps_it(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    queue = f"pr-{uuid.uuid4().hex[:8]}"
    await store_checked(org_db, check_content(json.dumps(fifth("1"))), "admin", now=True)
    client = WulianClient(time_env.client, task_queue=queue)
    home = Requester("独居老人李大爷", "13800000000", grid="HS01-G1", community="HS01", street="HS")
    with pytest.raises(InvalidProcessStart) as refused:
        await client.start_process("elderly_visit", {}, requester=home, db=org_db)
    assert {p.field for p in refused.value.problems} >= {"person", "address"}
    with pytest.raises(InvalidProcessStart):
        await client.start_process("no_such_kind", {}, requester=home, db=org_db)
    values = {"person": "李大爷", "address": "城北路12号"}
    async with build_worker(time_env.client, org_db, queue):
        started = await client.start_process("elderly_visit", values, requester=home, external_id="round-7",
                                             db=org_db)
        assert started.access_key and not started.duplicate
        again = await client.start_process("elderly_visit", values, requester=home, external_id="round-7", db=org_db)
        assert again.instance_id == started.instance_id and again.duplicate and again.access_key is None
        await store_checked(org_db, check_content(json.dumps(fifth("2", deadline={"hours": 8}))), "admin", now=True)
        handle = time_env.client.get_workflow_handle_for(ProcessInstanceWorkflow.run, started.instance_id)
        snap: ProcessSnapshot = await handle.query(ProcessInstanceWorkflow.snapshot)
        task = snap.instance.tasks[0].task_id
        await handle.execute_update(ProcessInstanceWorkflow.act, ProcessAction("claim", GRID_WORKER, task))
        await handle.execute_update(ProcessInstanceWorkflow.act, ProcessAction(
            "complete", GRID_WORKER, task, "visited", {"condition": "good"}))
        final: ProcessSnapshot = await handle.result()
        assert final.instance.version == "1" and final.instance.state == "done"
        for _ in range(100):  # the projection follows the workflow
            async with org_db.session() as session:
                row = await session.get(models.ProcessInstanceRow, started.instance_id)
            if row is not None and row.ended_at is not None:
                break
            await asyncio.sleep(0.05)
        assert row is not None and row.version == "1" and row.external_id == "round-7" and row.access_hash
        assert started.access_key not in json.dumps(row.data)  # only the key's hash is kept


async def test_an_older_projection_never_overwrites_a_newer_one(org_db: Database) -> None:
    from processes.instance import Instance

    inst = Instance("PI-T1", "micro_wish", "1", "posted", Requester("王阿姨", grid="HS01-G1"), {"wish": "轮椅"},
                    "2026-12-01T01:00:00+00:00")
    assert await apply_process(org_db, ProcessProjection(inst, version=2))
    older = Instance("PI-T1", "micro_wish", "1", "cancelled", inst.requester, inst.values, inst.created_at)
    assert not await apply_process(org_db, ProcessProjection(older, version=1))
    assert not await apply_process(org_db, ProcessProjection(inst, version=2))  # a retry changes nothing
    async with org_db.session() as session:
        row = await session.get(models.ProcessInstanceRow, "PI-T1")
    assert row is not None and row.state == "posted" and row.seq == 2
