"""Assessment schemes as data: validation with every problem at its place, storage and activation
(audited), and the CLI (``wulian schemes check|activate|versions``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from assessment.schemes import DEFAULT_SCHEME_PATH, check
from store import models
from store import schemes as scheme_store
from store.db import Database
from wulian.cli import app
from wulian.scheme_admin import check_content, store_checked


def default() -> dict[str, Any]:
    return json.loads(DEFAULT_SCHEME_PATH.read_text(encoding="utf-8"))


def broken() -> dict[str, Any]:
    """The default scheme with one mistake of each kind, each in another place."""
    raw = copy.deepcopy(default())
    raw["version"] = "broken.1"
    raw["composite"]["terms"][0]["weight"] = 25  # the weights sum to 95
    raw["composite"]["terms"][2]["invert"] = False  # 返工率 counted as if higher were better
    raw["composite"]["bands"][4]["min"] = 10  # no grade below 10
    duties = raw["grid"]["duties"]
    duties[3]["standard"] = "S99"  # D04: an unknown standard
    duties[6]["measure"]["indicator"] = "nope_rate"  # D07: an unknown indicator
    duties[19]["measure"].pop("target")  # D20: a count without a target
    duties[29]["code"] = "D01"  # a duplicate code
    raw["grid"]["standards"][9]["points"] = 10  # the standards sum to 105
    raw["grid"]["rules"][0]["cap"] = 10  # R01: a punishment with a positive cap
    raw["fortress"]["bands"][0]["grade"] = "6"  # stars are 1 to 5
    raw["pioneer"]["parts"][0]["source"] = "composite"  # not a part of the pioneer index
    raw["pioneer"]["parts"][1]["per_month"] = 3  # own: no credits part
    raw["pioneer"]["parts"][2]["credit"] = "karma"  # service: no such credit
    raw["fortress"]["parts"][3].pop("per_month")  # volunteering: how many hours a month score full?
    raw["cadres"]["department_weight"] = 40  # 70 + 40
    raw["cadres"]["excellent_share"] = 0  # shape: must be above 0
    return raw


def test_the_default_scheme_has_no_problem() -> None:
    scheme, problems = check(default())
    assert problems == [] and scheme is not None


def test_a_broken_scheme_lists_every_problem_with_its_place() -> None:
    scheme, problems = check(broken())
    assert scheme is None
    found = {(p.item, p.field, p.code) for p in problems}
    assert found >= {
        (None, "composite.terms", "weights_total"),
        (None, "composite.terms.2.invert", "direction_lower"),
        (None, "composite.bands.4.min", "bands_floor"),
        ("D04", "grid.duties.3.standard", "unknown_standard"),
        ("D07", "grid.duties.6.measure.indicator", "unknown_indicator"),
        ("D20", "grid.duties.19.measure.target", "target_needed"),
        ("D01", "grid.duties.29.code", "duplicate_code"),
        (None, "grid.standards", "points_total"),
        ("R01", "grid.rules.0.cap", "cap_sign"),
        (None, "fortress.bands.0.grade", "stars"),
        ("grid", "pioneer.parts.0.source", "source_not_here"),
        ("own", "pioneer.parts.1.credit", "not_for_credits"),
        ("service", "pioneer.parts.2.credit", "unknown_credit"),
        ("volunteering", "fortress.parts.3.per_month", "credits_need_target"),
        (None, "cadres.department_weight", "weights_total"),
        (None, "cadres.excellent_share", "greater_than"),
    }, "\n".join(str(p) for p in problems)
    # The English text names the place too (the CLI prints it).
    assert any(str(p).startswith("item D04, field grid.duties.3.standard:") for p in problems)
    # S04 still has its duties, so "standard has no duty" is not claimed for the wrong one.
    assert not any(p.code == "standard_empty" and p.params.get("standard") != "S02" for p in problems)


def test_problems_of_the_file_itself() -> None:
    assert [p.code for p in check_content(b"{not json").problems] == ["not_json"]
    assert check_content(b"{not json").problems[0].line == 1
    assert [p.code for p in check_content(b"\xff\xfe").problems] == ["not_utf8"]
    assert [p.code for p in check_content(b"x" * 1_000_001).problems] == ["too_large"]
    assert check_content(b"[]").problems[0].code == "model_type"


async def test_a_broken_scheme_activates_nothing(org_db: Database) -> None:
    first = await scheme_store.ensure_default(org_db)
    result = check_content(json.dumps(broken()).encode())
    assert result.parsed is None
    with pytest.raises(ValueError):
        await store_checked(org_db, result, "admin", now=True)
    assert [v.version for v in await scheme_store.list_versions(org_db)] == [first.version]
    assert (await scheme_store.active_version(org_db)).version == "2026.1"  # type: ignore[union-attr]


async def test_activation_is_stored_once_and_audited(org_db: Database) -> None:
    raw = default()
    raw["version"] = "2026.2"
    raw["grid"]["unmeasured"] = 0.8
    result = check_content(json.dumps(raw, ensure_ascii=False))
    row = await store_checked(org_db, result, "admin", now=False)  # uploaded, not active yet
    assert not row.active and (await scheme_store.active_version(org_db)).version == "2026.1"  # type: ignore[union-attr]
    row = await scheme_store.activate_stored(org_db, "2026.2", "admin")
    assert row.active and (await scheme_store.active_scheme(org_db)).grid.unmeasured == 0.8
    # The same version with other content is refused; a rollback is an activation of the old one.
    raw["grid"]["unmeasured"] = 0.5
    with pytest.raises(ValueError):
        await store_checked(org_db, check_content(json.dumps(raw)), "admin", now=True)
    await scheme_store.activate_stored(org_db, "2026.1", "admin")
    assert (await scheme_store.active_version(org_db)).version == "2026.1"  # type: ignore[union-attr]
    with pytest.raises(LookupError):
        await scheme_store.activate_stored(org_db, "NOPE", "admin")
    async with org_db.session() as session:
        audit = [(a.actor, a.action, a.target) for a in (await session.exec(
            select(models.AuditEntry).where(models.AuditEntry.action.startswith("scheme_"))  # type: ignore[attr-defined]
            .order_by(models.AuditEntry.id))).all()]
    assert audit == [("system", "scheme_upload", "2026.1"), ("system", "scheme_activate", "2026.1"),
                     ("admin", "scheme_upload", "2026.2"), ("admin", "scheme_activate", "2026.2"),
                     ("admin", "scheme_activate", "2026.1")]


def test_cli_check_prints_every_problem_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken()), encoding="utf-8")
    result = CliRunner().invoke(app, ["schemes", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: item D04, field grid.duties.3.standard: unknown standard 'S99'" in result.output
    assert "nothing activated" in result.output
    good = CliRunner().invoke(app, ["schemes", "check", str(DEFAULT_SCHEME_PATH)])
    assert good.exit_code == 0 and "30 duties, 10 standards, 6 rules: OK" in good.output


def test_cli_activate_and_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wulian.settings import get_settings

    monkeypatch.setenv("WULIAN_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("WULIAN_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(broken()), encoding="utf-8")
        refused = CliRunner().invoke(app, ["schemes", "activate", str(bad)])
        assert refused.exit_code == 1 and "unknown standard 'S99'" in refused.output
        raw = default()
        raw["version"] = "2026.3"
        good = tmp_path / "good.json"
        good.write_text(json.dumps(raw), encoding="utf-8")
        done = CliRunner().invoke(app, ["schemes", "activate", str(good), "--actor", "ops"])
        assert done.exit_code == 0, done.output
        assert "scheme version 2026.3 is now active" in done.output
        listed = CliRunner().invoke(app, ["schemes", "versions"])
        assert listed.exit_code == 0
        lines = listed.output.splitlines()
        assert lines[0].startswith("* 2026.3") and lines[1].startswith("  2026.1")
        assert "broken.1" not in listed.output
    finally:
        get_settings.cache_clear()


def test_one_definition_of_an_inspection_entry_and_a_rating() -> None:
    from datetime import date

    from assessment.entries import check_inspection, check_rating
    from assessment.schemes import load

    today = date(2026, 12, 2)
    draft, problems = check_inspection({"grid": "G1", "duty": "D03", "finding": " 日志不全 ", "score": "82.5"},
                                       load(), {"G1"}, today)
    assert problems == [] and draft is not None
    assert (draft.grid, draft.duty, draft.day, draft.finding, draft.score) == ("G1", "D03", today, "日志不全", 82.5)
    _, problems = check_inspection({"grid": "G9", "duty": "D07", "finding": "x" * 1001, "score": float("nan"),
                                    "day": "2025-11-01"}, load(), {"G1"}, today)
    assert [(p.field, p.code) for p in problems] == [("grid", "unknown_grid"), ("duty", "duty_automatic"),
                                                     ("day", "day_range"), ("finding", "too_long"),
                                                     ("score", "score_range")]
    _, problems = check_inspection({"grid": "G1", "duty": "D03", "finding": "a\x07b", "score": True}, load(),
                                   {"G1"}, today)
    assert [(p.field, p.code) for p in problems] == [("finding", "control_characters"), ("score", "required")]
    rating, problems = check_rating({"username": "c1", "side": "street", "score": "90"}, {"c1"}, ["street"], today)
    assert problems == [] and rating is not None and (rating.year, rating.score) == (2026, 90)
    _, problems = check_rating({"username": "c2", "side": "department", "score": "-1", "year": "2024"}, {"c1"},
                               ["street"], today)
    assert [(p.field, p.code) for p in problems] == [("username", "unknown_cadre"), ("side", "side"),
                                                     ("year", "year_range"), ("score", "score_range")]


async def test_period_scores_reads_its_inputs_from_the_store(any_db: Database) -> None:
    """What the scores take from the store besides the indicators (SQLite, and PostgreSQL when
    configured): a person's own handling tasks, the grid's own patrol reports, the inspection
    entries of the period, the year's cadre ratings."""
    from datetime import UTC, date, datetime

    from assessment.schemes import load
    from assessment.scores import period_scores
    from store.org import OrgTree
    from store.seed import load_organisation

    await load_organisation(any_db)
    day = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # 10:00 in the city
    late = datetime(2026, 11, 12, 2, 0, tzinfo=UTC)
    async with any_db.session() as session:
        for i, source in enumerate(("grid_patrol", "grid_patrol", "portal", "grid_patrol")):
            session.add(models.Event(event_id=f"E{i}", receipt_code=f"R{i:09d}", source=source, category="SR-01",
                                     description="x", grid="HS01-G1", community="HS01", street="HS",
                                     state="voided" if i == 3 else "dispatched", stage="dispatch",
                                     created_at=day, updated_at=day))
        await session.flush()
        tasks = [("T1", "done", day, day), ("T2", "done", late, day), ("T3", "claimed", None, day),
                 ("T4", "cancelled", None, day)]
        for task_id, status, completed, due in tasks:
            session.add(models.Task(task_id=task_id, event_id="E0", kind="handle", unit="HS01-G1", status=status,
                                    claimed_by="wg_hs01_g1", completed_at=completed, due_at=due, created_at=day))
        session.add(models.Task(task_id="T5", event_id="E1", kind="verify", unit="HS01-G1", status="done",
                                claimed_by="wg_hs01_g1", completed_at=day, created_at=day))  # no handling task
        for score in (80.0, 50.0):
            session.add(models.InspectionEntry(grid="HS01-G1", duty="D03", day=date(2026, 11, 9), finding="x",
                                               score=score, scheme_version="2026.1", inspector="zx_hs",
                                               inspector_unit="CC-HS", created_at=day))
        session.add(models.InspectionEntry(grid="HS01-G1", duty="D04", day=date(2026, 10, 31), finding="x",
                                           score=0.0, scheme_version="2026.1", inspector="zx_hs",
                                           inspector_unit="CC-HS", created_at=day))  # before the period
        # What the processes credited: a proxy service's point in November (and one in October, and a
        # volunteer activity's hours, which the pioneer index's part does not count).
        for task_id, credit, amount, when in (("P1.T4", "pioneer_points", 1.0, day),
                                              ("P0.T4", "pioneer_points", 1.0, datetime(2026, 10, 30, tzinfo=UTC)),
                                              ("V1.T2", "volunteer_hours", 3.0, day)):
            session.add(models.ProcessCredit(task_id=task_id, subject="wg_hs01_g1", credit=credit,
                                             instance_id=task_id.split(".")[0], kind="proxy_service", amount=amount,
                                             community="HS01", street="HS", credited_at=when))
        await session.commit()
    await scheme_store.rate_cadre(any_db, username="pz_zf_hs", year=2026, side="street", unit="HS", score=90,
                                  comment="", actor="zx_hs")
    org = await OrgTree.load(any_db)
    sheet = await period_scores(any_db, org, load(), date(2026, 11, 1), date(2026, 11, 30), annual=True,
                                now=datetime(2026, 12, 1, tzinfo=UTC))
    g1 = sheet.row("grids", "HS01-G1")
    assert g1 is not None
    parts = {p.code: p for p in g1.parts}
    assert parts["D01"].value == 2  # two patrol reports (the portal's and the voided one do not count)
    assert parts["D03"].value == 65 and parts["D03"].points == 0.65  # the mean of 80 and 50
    assert parts["D04"].note == "unmeasured"  # October's entry is not November's
    assert parts["R05"].points == -3  # one inspection below 60
    # wg_hs01_g1's own record: three handling tasks (the cancelled one and the verification aside),
    # two done, one of them on time: 60 × 1/3 + 40 × 2/3 = 46.67; the pioneer index takes it at 40%.
    p1 = sheet.row("party_members", "wg_hs01_g1")
    assert p1 is not None and g1.score is not None
    own = next(p for p in p1.parts if p.code == "own")
    assert own.value == pytest.approx(60 / 3 + 40 * 2 / 3)
    # November's one pioneer point of the 2 a month that score full: 50 at 20%.
    assert next(p for p in p1.parts if p.code == "service").value == 1.0
    assert p1.score == pytest.approx(round(0.5 * g1.score + 0.3 * (60 / 3 + 40 * 2 / 3) + 0.2 * 50, 2), abs=0.006)
    # HS01's three volunteer hours of the 20 a month: 15 × 10% in its fortress index.
    hs01 = sheet.row("communities", "HS01")
    assert hs01 is not None and next(p for p in hs01.parts if p.code == "volunteering").points == pytest.approx(1.5)
    cadre = next(r for r in sheet.tables["cadres"] if r.subject == "pz_zf_hs")
    assert cadre.score is None and cadre.flags == ["department_rating_missing", "incomplete"]
    assert next(p for p in cadre.parts if p.code == "street").value == 90  # the rating alone (no own task)
