"""A process's forms are checked by one definition (``processes.forms``) at every entrance: each type,
bound, required field, catalogue choice and materials checklist, with the report's problem codes."""

from __future__ import annotations

from typing import Any

import pytest

from processes.definition import FormField, catalogue, shipped
from processes.forms import form_problems, offered_values
from workflows.inputs import Problem


def _field(**kw: Any) -> FormField:
    return FormField.model_validate({"name": "f", "label_zh": "项", **kw})


@pytest.mark.parametrize(("spec", "value", "problem"), [
    ({"type": "text", "max": 5}, "六个字太长了", Problem("f", "too_long", "5")),
    ({"type": "text", "required": True}, "\u200b ", Problem("f", "blank")),
    ({"type": "text"}, "a\x00b", Problem("f", "forbidden_char")),
    ({"type": "integer", "min": 1, "max": 500}, 0, Problem("f", "range", "1 and 500")),
    ({"type": "integer"}, 2.5, Problem("f", "type", "a whole number")),
    ({"type": "integer"}, True, Problem("f", "type", "a whole number")),  # a yes is not a one
    ({"type": "number", "max": 500}, 500.01, Problem("f", "range", "… and 500")),
    ({"type": "boolean"}, "yes", Problem("f", "type", "yes or no")),
    ({"type": "date"}, "2026-02-30", Problem("f", "type", "a date")),
    ({"type": "datetime"}, "2026-12-05T09:00:00", Problem("f", "type", "a date and time with its zone")),
    ({"type": "phone"}, "15400000000", Problem("f", "phone")),  # an unassigned range
    ({"type": "photo"}, "../../etc/passwd", Problem("f", "type", "a photo")),
    ({"type": "choice", "choices": ["good", "needs_help"]}, "fine", Problem("f", "choice", "good, needs_help")),
    ({"type": "checklist", "choices": ["a", "b"]}, ["a", "a"], Problem("f", "type", "a list of items")),
    ({"type": "checklist", "choices": ["a", "b"], "required": True}, ["a"], Problem("f", "incomplete", "b")),
])
def test_each_bad_value_is_named_with_its_code(spec: dict[str, Any], value: Any, problem: Problem) -> None:
    assert form_problems([_field(**spec)], {"f": value}) == [problem]


@pytest.mark.parametrize(("spec", "value"), [
    ({"type": "text", "max": 5}, "五个字正"),
    ({"type": "integer", "min": 1}, 3),
    ({"type": "number"}, 2.5),
    ({"type": "datetime"}, "2026-12-05T09:00:00+08:00"),
    ({"type": "phone"}, "0570-4021234"),
    ({"type": "photo"}, "3f2a9c_1.jpg"),
    ({"type": "checklist", "choices": ["a", "b"], "required": True}, ["b", "a"]),
])
def test_good_values_pass(spec: dict[str, Any], value: Any) -> None:
    assert form_problems([_field(**spec)], {"f": value}) == []


def test_missing_required_fields_and_unknown_fields_are_refused() -> None:
    form = [_field(type="text", required=True), FormField(name="n", label_zh="数", type="integer")]
    assert form_problems(form, {"extra": 1}) == [Problem("extra", "unknown"), Problem("f", "required")]
    assert form_problems(form, {"f": "有"}) == []  # an optional field may be left out


def test_a_proxy_service_offers_the_catalogue_and_collects_the_chosen_items_materials() -> None:
    proxy = next(d for d in shipped() if d.kind == "proxy_service")
    items = {"proxy_items": catalogue("proxy_items")}
    start = {"item": "PS-04", "phone": "13800000000"}
    assert form_problems(proxy.input, start, offered_values(proxy.input, proxy.input, start, items)) == []
    wrong = {"item": "PS-99", "phone": "13800000000"}
    [problem] = form_problems(proxy.input, wrong, offered_values(proxy.input, proxy.input, wrong, items))
    assert problem.field == "item" and problem.code == "choice"
    collect = proxy.state("collecting").task
    assert collect is not None
    offered = offered_values(collect.form, proxy.input, start, items)
    assert offered == {"materials": ["身份证", "户口簿", "二寸照片", "医院诊断证明"]}  # 残疾人证办理
    partial = {"materials": ["身份证", "户口簿"]}
    missing = Problem("materials", "incomplete", "二寸照片, 医院诊断证明")
    assert form_problems(collect.form, partial, offered) == [missing]
    assert form_problems(collect.form, {"materials": offered["materials"]}, offered) == []
