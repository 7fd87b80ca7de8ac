"""Process definitions as data (issue 14, item 1): the shipped four and a fifth from a file validate and
compile with ``transitions``; a broken definition is refused with every problem and its place."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from transitions import MachineError
from typer.testing import CliRunner

from processes.definition import InvalidDefinition, catalogue, check, load, machine, shipped, triggers_at
from tests.process_scenarios import shipped_definition
from wulian.cli import app

FIFTH = Path(__file__).parent / "data" / "elderly_visit.json"


def _places(raw: Any) -> set[tuple[str | None, str]]:
    definition, problems = check(raw)
    assert definition is None
    return {(p.field, p.code) for p in problems}


def test_the_four_shipped_definitions_validate_and_move_only_as_they_say() -> None:
    kinds = [d.kind for d in shipped()]
    assert kinds == ["deliberation", "micro_wish", "proxy_service", "volunteer_activity"]
    wish = next(d for d in shipped() if d.kind == "micro_wish")
    model, _ = machine(wish)
    assert model.state == "posted" and triggers_at(wish, "posted") == ["publish", "reject"]
    model.trigger("publish")
    model.trigger("adopt")
    with pytest.raises(MachineError):  # a wish is fulfilled before it is verified, never the other way
        model.trigger("verified")
    model.trigger("fulfilled")
    model.trigger("verified")
    assert model.state == "done" and model.state in wish.final_states()


def test_the_proxy_catalogue_has_the_seeds_items_with_materials_office_and_time_limit() -> None:
    items = catalogue("proxy_items")
    assert len(items) >= 30 and len({i["code"] for i in items}) == len(items)
    names = {i["name_zh"] for i in items}
    assert {"社保参保证明", "居住证办理", "老年优待证", "残疾人证办理", "医保报销", "不动产登记资料查询"} <= names
    assert all(i["materials"] and i["office"] and 0 < i["days"] <= 60 for i in items)


def test_a_fifth_definition_from_a_file_needs_no_code_of_its_own() -> None:
    visit = load(FIFTH)
    model, _ = machine(visit)
    model.trigger("needs_help")
    model.trigger("helped")
    assert model.state == "done"
    result = CliRunner().invoke(app, ["process", "check", str(FIFTH)])
    assert result.exit_code == 0 and "elderly_visit version 1, 3 states, 2 tasks, 3 moves: OK" in result.output


def test_an_unreachable_state_a_task_without_taker_and_an_unknown_state_are_each_refused_at_their_place() -> None:
    raw = json.loads(FIFTH.read_text(encoding="utf-8"))
    raw["states"].append({"name": "archived", "label_zh": "已归档", "final": True})  # nothing leads there
    del raw["states"][1]["task"]["taker"]  # the follow-up: nobody would take it
    raw["transitions"][2]["dest"] = "finished"  # no such state
    assert _places(raw) == {
        ("states.3", "unreachable_state"),
        ("states.1.task.taker", "task_without_taker"),
        ("transitions.2.dest", "unknown_state"),
        # follow_up now leads nowhere: the move out of it names an unknown state
        ("states.1", "dead_end"),
    }
    result_file = FIFTH.parent / "broken.json"
    try:
        result_file.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
        result = CliRunner().invoke(app, ["process", "check", str(result_file)])
    finally:
        result_file.unlink()
    assert result.exit_code == 1
    assert "field states.1.task.taker: task 'help' has no taker" in result.output
    assert "field transitions.2.dest: unknown state 'finished'" in result.output


@pytest.mark.parametrize(("change", "expected"), [
    # an outcome its state cannot move by
    (lambda r: r["states"][0]["task"]["outcomes"].append("skip"), ("states.0.task.outcomes.2", "outcome_without_move")),
    # a credit counted from a field the form does not have
    (lambda r: r["states"][0]["task"]["credits"].append({"kind": "volunteer_hours", "field": "hours"}),
     ("states.0.task.credits.1.field", "credit_field_unknown")),
    # a task claimed by many with no capacity in the start form
    (lambda r: r["states"][0]["task"].update(claim="many"), ("states.0.task.capacity_field", "capacity_field_unknown")),
    # the adopter of a task that does not exist
    (lambda r: r["states"][1]["task"].update(taker={"place": "taker_of", "task": "adopt"}),
     ("states.1.task.taker.task", "taker_of_unknown_task")),
    # a role nobody has
    (lambda r: r["states"][0]["task"]["taker"].update(roles=["mayor"]),
     ("states.0.task.taker.roles.0", "unknown_role")),
    # a final state with a way out
    (lambda r: r["transitions"].append({"trigger": "reopen", "source": "done", "dest": "scheduled"}),
     ("states.2.final", "final_with_moves")),
    # the same state twice
    (lambda r: r["states"].insert(2, copy.deepcopy(r["states"][1])), ("states.2.name", "duplicate_state")),
    # a field that is not part of the schema (a typo is not silently ignored)
    (lambda r: r["states"][0]["task"].update(deadlin={"hours": 4}), ("states.0.task.deadlin", "extra_forbidden")),
])
def test_each_broken_rule_is_named_with_its_place(change: Any, expected: tuple[str, str]) -> None:
    raw = json.loads(FIFTH.read_text(encoding="utf-8"))
    change(raw)
    assert expected in _places(raw)


def test_a_shipped_definitions_cross_checks_hold_for_its_own_effects() -> None:
    raw = shipped_definition("deliberation")
    raw["states"][1]["task"]["event"]["when"] = "decision"  # a text field cannot say yes or no
    assert ("states.1.task.event.when", "event_field_unknown") in _places(raw)
    raw = shipped_definition("proxy_service")
    raw["input"][0]["catalogue"] = "pets"
    assert ("input.0.catalogue", "unknown_catalogue") in _places(raw)


def test_a_file_that_is_not_json_is_refused_with_its_line() -> None:
    bad = FIFTH.parent / "not_json.json"
    try:
        bad.write_text('{"kind": "x",\n  "version": }', encoding="utf-8")
        with pytest.raises(InvalidDefinition) as caught:
            load(bad)
    finally:
        bad.unlink()
    assert caught.value.problems[0].line == 2 and caught.value.problems[0].code == "not_json"
