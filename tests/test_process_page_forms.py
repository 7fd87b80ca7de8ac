"""A process form as a page posts it (``web/process_forms.py``): strings typed as the definition wants,
what cannot be typed passed on for the one check to refuse with its reason, and that reason said with
the field's own label in the visitor's language."""

from __future__ import annotations

from processes.definition import shipped
from processes.forms import form_problems
from web.process_forms import posted_values, problem_texts


def _volunteer_input():  # type: ignore[no-untyped-def]
    return next(d for d in shipped() if d.kind == "volunteer_activity").input


def test_posted_strings_become_the_values_the_definition_wants() -> None:
    form = _volunteer_input()
    values = posted_values(form, {"f_team": ["HS01"], "f_title": [" 敬老院义诊 "], "f_capacity": ["3"],
                                  "f_starts_at": ["2026-12-09T09:00"], "f_place": ["城北社区"], "f_skills": [""],
                                  "action": ["claim"]})
    # A local moment gets the city's zone; empty fields are absent; the page's own fields are not the form's.
    assert values == {"team": "HS01", "title": "敬老院义诊", "capacity": 3, "starts_at": "2026-12-09T09:00:00+08:00",
                      "place": "城北社区"}
    assert form_problems(form, values) == []


def test_what_cannot_be_typed_is_refused_by_the_check_with_the_fields_label() -> None:
    form = _volunteer_input()
    values = posted_values(form, {"f_team": ["HS01"], "f_title": ["义诊"], "f_capacity": ["三"],
                                  "f_starts_at": ["next week"], "f_place": ["社区"]})
    assert values["capacity"] == "三" and values["starts_at"] == "next week"
    problems = form_problems(form, values)
    assert {(p.field, p.code) for p in problems} == {("capacity", "type"), ("starts_at", "type")}
    zh = problem_texts("zh-CN", form, problems)
    assert zh == ["活动时间：格式不正确", "招募人数：格式不正确"]  # in the form's order
    assert problem_texts("en", form, problems)[1].startswith("Places")


def test_a_checklist_keeps_each_ticked_item_once_and_a_boolean_is_ticked_or_not() -> None:
    proxy = next(d for d in shipped() if d.kind == "proxy_service")
    collect = next(s.task for s in proxy.states if s.task is not None and any(f.type == "checklist"
                                                                                 for f in s.task.form))
    assert collect is not None
    values = posted_values(collect.form, {"f_materials": ["身份证", "身份证", "户口簿"]})
    assert values["materials"] == ["身份证", "户口簿"]
    deliberation = next(d for d in shipped() if d.kind == "deliberation")
    decide = next(s.task for s in deliberation.states if s.task is not None and s.task.event is not None)
    assert decide is not None
    assert posted_values(decide.form, {"f_create_event": ["on"]})["create_event"] is True
    assert posted_values(decide.form, {})["create_event"] is False


def test_an_instance_is_named_by_its_title_or_its_chosen_items_name_and_times_read_as_the_wall_clock() -> None:
    from processes.definition import catalogue
    from web.process_forms import ProcessText

    by_kind = {d.kind: d for d in shipped()}
    activity = ProcessText("zh-CN", by_kind["volunteer_activity"], {})
    values = {"team": "HS01", "title": "敬老院义诊", "starts_at": "2026-12-09T09:00:00+08:00"}
    assert activity.title(values, "HS01") == "敬老院义诊"  # not the team's code, though it comes first
    starts = next(f for f in by_kind["volunteer_activity"].input if f.name == "starts_at")
    assert activity.value(starts, values["starts_at"]) == "2026-12-09 09:00"
    proxy = by_kind["proxy_service"]
    for lang, name in (("zh-CN", "老年优待证"), ("en", "Senior citizen card")):
        text = ProcessText(lang, proxy, {"proxy_items": catalogue("proxy_items")})
        assert text.title({"item": "PS-03", "phone": "13800138000"}, "PS-03") == name
    assert ProcessText("zh-CN", proxy, {}).title({}, "") == ""
