"""Routing by the responsibility list (rules.engine, rules.responsibility_list) and working time."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.active import load_engine
from rules.engine import RoutingEngine
from rules.responsibility_list import DEFAULT_LIST_PATH, TIERS, InvalidList, check, load
from rules.worktime import CITY_TZ, add_working_hours, is_working_day

#: The demo organisation's city command centre: the engine assumes none (it comes from the org tree).
CITY_CENTRE = "CC-JS"

SHANGHAI = ZoneInfo("Asia/Shanghai")
ORGANISATION = Path(__file__).parents[1] / "store" / "demo" / "organisation.json"

#: A fully located event in the demo organisation (grid HS01-G1 of community HS01 of street HS).
LOCATED = {"grid": "HS01-G1", "community": "HS01", "street": "HS"}


@cache
def engine() -> RoutingEngine:
    """One engine for the module (durable-rules rulesets are process-global and never removed)."""
    return load_engine(city_centre=CITY_CENTRE)


@cache
def shipped_raw() -> dict[str, Any]:
    return json.loads(DEFAULT_LIST_PATH.read_text(encoding="utf-8"))


def facts(category: str | None, **location: str | None) -> dict[str, Any]:
    """Facts shaped like the ones the routing activity builds."""
    return {
        "category": category,
        "grid": location.get("grid"),
        "community": location.get("community"),
        "street": location.get("street"),
        "located_by": "grid" if location.get("grid") else "unknown",
        "source": "api",
        "returned": 0,
        "escalated": 0,
    }


def first_of_tier(tier: str) -> str:
    return next(c.code for c in engine().list.categories if c.tier == tier)


# ------------------------------------------------------------------ routing, table-driven

ROUTING_CASES = [
    # (id, category, location, placed, tier, unit, rule)
    ("grid", "SR-01", LOCATED, True, "grid", "HS01-G1", "category:SR-01"),
    (
        "grid-other-street",
        "SR-01",
        {"grid": "ST01-G2", "community": "ST01", "street": "ST"},
        True,
        "grid",
        "ST01-G2",
        "category:SR-01",
    ),
    ("community", "SR-05", LOCATED, True, "community", "HS01", "category:SR-05"),
    ("street", "SR-02", LOCATED, True, "street", "HS", "category:SR-02"),
    ("street-known-street-only", "SR-02", {"street": "QH"}, True, "street", "QH", "category:SR-02"),
    ("department", "SG-07", LOCATED, True, "department", "D-ZJ", "category:SG-07"),
    ("department-without-location", "SG-07", {}, True, "department", "D-ZJ", "category:SG-07"),
    ("city", "TF-01", LOCATED, True, "city", "CC-JS", "category:TF-01"),
    ("city-without-location", "TF-01", {}, True, "city", "CC-JS", "category:TF-01"),
    ("unknown-category", "XX-99", LOCATED, False, "street", "CC-HS", "catch-all"),
    ("lowercase-code-is-unknown", "sr-01", LOCATED, False, "street", "CC-HS", "catch-all"),
    ("unknown-category-no-location", "XX-99", {}, False, "city", "CC-JS", "catch-all"),
    ("no-category-no-location", "", {}, False, "city", "CC-JS", "catch-all"),
    ("none-category-no-location", None, {}, False, "city", "CC-JS", "catch-all"),
    ("no-category-located", "", LOCATED, False, "street", "CC-HS", "catch-all"),
    (
        "grid-tier-without-grid",
        "SR-01",
        {"community": "HS01", "street": "HS"},
        False,
        "street",
        "CC-HS",
        "category:SR-01",
    ),
    ("grid-tier-without-location", "SR-01", {}, False, "city", "CC-JS", "category:SR-01"),
    (
        "community-tier-without-community",
        "SR-05",
        {"street": "ST"},
        False,
        "street",
        "CC-ST",
        "category:SR-05",
    ),
    ("street-tier-without-location", "SR-02", {}, False, "city", "CC-JS", "category:SR-02"),
]


@pytest.mark.parametrize(
    "category,location,placed,tier,unit,rule",
    [case[1:] for case in ROUTING_CASES],
    ids=[case[0] for case in ROUTING_CASES],
)
def test_routing_table(
    category: str | None, location: dict[str, str], placed: bool, tier: str, unit: str, rule: str
) -> None:
    decision = engine().decide(facts(category, **location))
    assert decision["placed"] is placed
    assert decision["tier"] == tier
    assert decision["unit"] == unit
    assert decision["rule"] == rule
    assert decision["list_version"] == "2026.1"
    assert decision["reason"]
    if placed:
        known = engine().category(category or "")
        assert known is not None
        assert decision["category_name"] == known.name_zh
        assert decision["deadline_hours"] == known.deadlines.model_dump()
    else:
        assert decision["department"] is None


def test_unknown_category_goes_to_the_street_command_centre_with_a_reason() -> None:
    decision = engine().decide(facts("XX-99", **LOCATED))
    assert decision["placed"] is False
    assert decision["unit"] == "CC-HS"
    assert "XX-99" in decision["reason"]


def test_no_category_and_no_location_goes_to_the_city_command_centre() -> None:
    decision = engine().decide(facts(""))
    assert decision["placed"] is False
    assert decision["unit"] == "CC-JS"
    assert decision["reason"] == "no category given"


def test_missing_location_for_a_located_tier_explains_itself() -> None:
    decision = engine().decide(facts("SR-01", street="HS"))
    assert decision["placed"] is False
    assert decision["unit"] == "CC-HS"
    assert "SR-01" in decision["reason"] and "grid" in decision["reason"]
    # the category is still known: its name and deadlines travel with the triage task
    assert decision["category_name"] == engine().category("SR-01").name_zh
    assert decision["deadline_hours"] == engine().category("SR-01").deadlines.model_dump()


@pytest.mark.parametrize("tier", TIERS)
def test_the_shipped_list_has_every_tier(tier: str) -> None:
    assert any(c.tier == tier for c in engine().list.categories)
    decision = engine().decide(facts(first_of_tier(tier), **LOCATED))
    assert decision["placed"] is True
    assert decision["tier"] == tier


def test_every_category_of_the_shipped_list_routes_to_its_unit() -> None:
    demo_units = {u["code"] for u in json.loads(ORGANISATION.read_text(encoding="utf-8"))["units"]}
    expected_by_tier = {
        "grid": "HS01-G1",
        "community": "HS01",
        "street": "HS",
        "city": "CC-JS",
    }
    for category in engine().list.categories:
        decision = engine().decide(facts(category.code, **LOCATED))
        assert decision["placed"] is True, category.code
        assert decision["rule"] == f"category:{category.code}"
        assert decision["tier"] == category.tier
        if category.tier == "department":
            assert decision["unit"] == f"D-{category.department}"
        else:
            assert decision["unit"] == expected_by_tier[category.tier]
        assert decision["department"] == category.department
        assert decision["co_departments"] == category.co_departments
        # the unit routed to exists in the demo organisation: no task lands in a missing inbox
        assert decision["unit"] in demo_units, category.code
        handling = category.deadlines.handling
        assert decision["priority"] == (1 if handling <= 4 else 2 if handling <= 16 else 3)


def test_decision_keeps_the_facts_and_does_not_mutate_them() -> None:
    given_facts = facts("SR-01", **LOCATED)
    before = copy.deepcopy(given_facts)
    decision = engine().decide(given_facts)
    assert given_facts == before
    assert decision["facts"] == before
    assert not {"id", "sid", "kind"} & set(decision["facts"])


def test_repeated_decisions_are_independent() -> None:
    """The same facts always give the same decision (no state left behind in the session)."""
    first = engine().decide(facts("SR-05", **LOCATED))
    for _ in range(20):
        engine().decide(facts("XX-01", street="QH"))
        assert engine().decide(facts("SR-05", **LOCATED)) == first


def test_two_engines_for_the_same_list_coexist() -> None:
    """Ruleset names are unique per engine: building a second engine must not fail or interfere."""
    other = load_engine(city_centre=CITY_CENTRE)
    assert other.decide(facts("SR-01", **LOCATED))["unit"] == "HS01-G1"
    assert engine().decide(facts("SR-05", **LOCATED))["unit"] == "HS01"


# ------------------------------------------------------------------ routing, properties

CODES = [c["code"] for c in shipped_raw()["categories"]]
REAL_LOCATIONS = ["HS01-G1", "HS01", "HS", "ST", "QH01-G3", "QH"]
location_value = st.none() | st.sampled_from(REAL_LOCATIONS) | st.text(min_size=1, max_size=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    category=st.none() | st.sampled_from(CODES) | st.text(max_size=30),
    grid=location_value,
    community=location_value,
    street=location_value,
)
def test_decide_always_returns_exactly_one_decision(
    category: str | None, grid: str | None, community: str | None, street: str | None
) -> None:
    decision = engine().decide(facts(category, grid=grid, community=community, street=street))
    assert isinstance(decision, dict)
    assert isinstance(decision["placed"], bool)
    assert isinstance(decision["unit"], str) and decision["unit"]
    assert decision["list_version"] == "2026.1"
    assert decision["reason"]
    known = engine().category(category) if category else None
    if known is None:
        assert decision["rule"] == "catch-all"
        assert decision["placed"] is False
    else:
        assert decision["rule"] == f"category:{category}"
    if not decision["placed"]:
        assert decision["unit"] == (f"CC-{street}" if street else "CC-JS")


# ------------------------------------------------------------------ the list and its checker


def test_shipped_list_is_valid() -> None:
    parsed, problems = check(copy.deepcopy(shipped_raw()))
    assert problems == []
    assert parsed is not None
    assert len(parsed.categories) == 165
    codes = [c.code for c in parsed.categories]
    assert len(set(codes)) == len(codes)
    groups = {g.code for g in parsed.groups}
    assert all(c.group in groups for c in parsed.categories)
    assert all(c.department for c in parsed.categories if c.tier == "department")


def test_shipped_list_departments_all_exist_in_the_demo_organisation() -> None:
    units = json.loads(ORGANISATION.read_text(encoding="utf-8"))["units"]
    departments = {u["code"].removeprefix("D-") for u in units if u["kind"] == "department"}
    _, problems = check(copy.deepcopy(shipped_raw()), departments)
    assert problems == []


def broken(mutate: Any) -> dict[str, Any]:
    raw = copy.deepcopy(shipped_raw())
    mutate(raw)
    return raw


def category_of(raw: dict[str, Any], code: str) -> dict[str, Any]:
    return next(c for c in raw["categories"] if c["code"] == code)


def _no_department(raw: dict[str, Any]) -> None:
    category_of(raw, "SG-07")["department"] = None


def _department_left_out(raw: dict[str, Any]) -> None:
    del category_of(raw, "SG-07")["department"]


def _co_handler_is_also_responsible(raw: dict[str, Any]) -> None:
    cat = category_of(raw, "SR-01")
    cat["co_departments"] = [cat["department"]]


def _zero_deadline(raw: dict[str, Any]) -> None:
    category_of(raw, "SR-02")["deadlines"]["handling"] = 0


def _deadline_not_a_number(raw: dict[str, Any]) -> None:
    category_of(raw, "SR-02")["deadlines"]["verification"] = "soon"


def _unknown_deadline_stage(raw: dict[str, Any]) -> None:
    category_of(raw, "SR-02")["deadlines"]["coffee"] = 1


def _unknown_group(raw: dict[str, Any]) -> None:
    category_of(raw, "SR-05")["group"] = "ZZ"


def _bad_tier(raw: dict[str, Any]) -> None:
    category_of(raw, "SR-05")["tier"] = "province"


def _blank_keyword(raw: dict[str, Any]) -> None:
    category_of(raw, "TF-01")["keywords"] = ["fire", "  "]


def _duplicate_code(raw: dict[str, Any]) -> None:
    raw["categories"].append(copy.deepcopy(category_of(raw, "SR-05")))


BROKEN_CASES = [
    ("department-tier-without-department", _no_department, "SG-07", "department"),
    ("department-left-out", _department_left_out, "SG-07", "department"),
    ("co-handler-also-responsible", _co_handler_is_also_responsible, "SR-01", "co_departments"),
    ("zero-deadline", _zero_deadline, "SR-02", "deadlines.handling"),
    ("deadline-not-a-number", _deadline_not_a_number, "SR-02", "deadlines.verification"),
    ("unknown-deadline-stage", _unknown_deadline_stage, "SR-02", "deadlines.coffee"),
    ("unknown-group", _unknown_group, "SR-05", "group"),
    ("bad-tier", _bad_tier, "SR-05", "tier"),
    ("blank-keyword", _blank_keyword, "TF-01", "keywords"),
    ("duplicate-code", _duplicate_code, "SR-05", "code"),
]


@pytest.mark.parametrize("mutate,code,field", [c[1:] for c in BROKEN_CASES], ids=[c[0] for c in BROKEN_CASES])
def test_check_names_the_category_and_field_of_each_problem(mutate: Any, code: str, field: str) -> None:
    parsed, problems = check(broken(mutate))
    assert parsed is None
    assert [p.place for p in problems] == [f"category {code}, field {field}"]
    assert problems[0].message
    assert str(problems[0]).startswith(f"category {code}, field {field}: ")


def test_check_reports_every_problem_not_just_the_first() -> None:
    def several(raw: dict[str, Any]) -> None:
        _no_department(raw)
        _zero_deadline(raw)
        _bad_tier(raw)

    parsed, problems = check(broken(several))
    assert parsed is None
    assert {p.place for p in problems} == {
        "category SG-07, field department",
        "category SR-02, field deadlines.handling",
        "category SR-05, field tier",
    }


def test_check_reports_every_structural_problem_together() -> None:
    def several(raw: dict[str, Any]) -> None:
        _unknown_group(raw)
        _duplicate_code(raw)

    _, problems = check(broken(several))
    # the duplicate of SR-05 carries the unknown group too, so it is reported twice
    assert sorted(p.place for p in problems) == [
        "category SR-05, field code",
        "category SR-05, field group",
        "category SR-05, field group",
    ]


def test_check_names_unknown_departments_when_given_the_organisation() -> None:
    departments = {"ZF", "ZJ"}
    _, problems = check(copy.deepcopy(shipped_raw()), departments)
    assert problems
    assert any(p.place == "category TF-01, field department" for p in problems)
    for problem in problems:
        assert problem.place.startswith("category ")
        assert problem.place.endswith(("field department", "field co_departments"))
        assert "unknown department" in problem.message


def test_a_category_without_a_code_is_placed_by_position() -> None:
    def no_code(raw: dict[str, Any]) -> None:
        del raw["categories"][2]["code"]

    _, problems = check(broken(no_code))
    assert [p.place for p in problems] == ["category #3, field code"]


def test_list_level_problems_name_the_list_field() -> None:
    _, problems = check({"version": "", "groups": [], "categories": []})
    assert {p.place for p in problems} == {"list, field version", "list, field categories"}


def test_load_raises_with_the_problems_of_the_file(tmp_path: Path) -> None:
    def two_problems(raw: dict[str, Any]) -> None:
        _no_department(raw)
        _zero_deadline(raw)

    path = tmp_path / "list.json"
    path.write_text(json.dumps(broken(two_problems)), encoding="utf-8")
    with pytest.raises(InvalidList) as info:
        load(path)
    assert {p.place for p in info.value.problems} == {
        "category SG-07, field department",
        "category SR-02, field deadlines.handling",
    }
    assert "category SG-07, field department" in str(info.value)

    path.write_text(json.dumps(broken(_unknown_group)), encoding="utf-8")
    with pytest.raises(InvalidList) as info:
        load(path)
    assert [p.place for p in info.value.problems] == ["category SR-05, field group"]


def test_load_checks_departments_against_the_organisation(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text(json.dumps(shipped_raw()), encoding="utf-8")
    assert len(load(path, departments=None).categories) == 165
    with pytest.raises(InvalidList) as info:
        load(path, departments={"ZF"})
    assert all("unknown department" in p.message for p in info.value.problems)


def test_load_reports_the_position_of_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text('{"version": "x",\n  "groups": [,]}')
    with pytest.raises(InvalidList) as info:
        load(path)
    assert info.value.problems[0].place == f"{path}:2:14"


def test_load_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidList) as info:
        load(tmp_path / "missing.json")
    assert "cannot read" in info.value.problems[0].message


# ------------------------------------------------------------------ working time


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def test_city_time_zone_is_shanghai() -> None:
    assert CITY_TZ.key == "Asia/Shanghai"


def test_friday_evening_plus_two_hours_is_monday_morning() -> None:
    start = sh(2026, 3, 6, 17, 0)  # a Friday
    assert start.weekday() == 4
    due = add_working_hours(start, 2)
    assert due == sh(2026, 3, 9, 9, 30)  # Monday
    assert due.utcoffset() == timedelta(0)  # the result is in UTC
    assert due == datetime(2026, 3, 9, 1, 30, tzinfo=UTC)


def test_start_given_in_utc_is_read_in_city_time() -> None:
    # 09:00 UTC is 17:00 in Shanghai: the same Friday evening as above
    assert add_working_hours(datetime(2026, 3, 6, 9, 0, tzinfo=UTC), 2) == sh(2026, 3, 9, 9, 30)


@pytest.mark.parametrize(
    "start,hours,due",
    [
        # during lunch: counting starts at 13:30
        (sh(2026, 3, 4, 12, 30), 1, sh(2026, 3, 4, 14, 30)),
        (sh(2026, 3, 4, 12, 0), 0.5, sh(2026, 3, 4, 14, 0)),
        # morning runs over lunch
        (sh(2026, 3, 4, 11, 0), 2, sh(2026, 3, 4, 14, 30)),
        # before 08:30: counting starts at 08:30
        (sh(2026, 3, 4, 7, 0), 1, sh(2026, 3, 4, 9, 30)),
        (sh(2026, 3, 4, 0, 1), 3.5, sh(2026, 3, 4, 12, 0)),
        # a whole working day is 8 hours
        (sh(2026, 3, 4, 8, 30), 8, sh(2026, 3, 4, 18, 0)),
        (sh(2026, 3, 4, 9, 0), 8, sh(2026, 3, 5, 9, 0)),
        # after 18:00: the next morning
        (sh(2026, 3, 4, 19, 0), 1, sh(2026, 3, 5, 9, 30)),
        # on a Sunday: Monday morning
        (sh(2026, 3, 8, 10, 0), 1, sh(2026, 3, 9, 9, 30)),
        # a working week (5 x 8 h) from Monday morning ends on Friday evening
        (sh(2026, 3, 9, 8, 30), 40, sh(2026, 3, 13, 18, 0)),
    ],
)
def test_working_hours_table(start: datetime, hours: float, due: datetime) -> None:
    assert add_working_hours(start, hours) == due


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError):
        add_working_hours(datetime(2026, 3, 6, 17, 0), 2)


def test_national_day_2026_is_skipped() -> None:
    # What the installed chinese_calendar says (its data ships per year): the premise of the test.
    golden_week = [date(2026, 10, d) for d in range(1, 8)]
    assert [chinese_calendar.is_workday(d) for d in golden_week] == [False] * 7
    assert chinese_calendar.is_workday(date(2026, 9, 30))
    assert chinese_calendar.is_workday(date(2026, 10, 8))
    assert not any(is_working_day(d) for d in golden_week)

    # Wednesday 30 September 17:00 + 2 h: one hour that evening, one on 8 October
    assert add_working_hours(sh(2026, 9, 30, 17, 0), 2) == sh(2026, 10, 8, 9, 30)
    # a start inside the holiday counts from the first morning after it
    assert add_working_hours(sh(2026, 10, 3, 10, 0), 1) == sh(2026, 10, 8, 9, 30)


def test_adjusted_working_saturday_counts() -> None:
    """Saturday 10 October 2026 is a make-up working day (调休) after National Day."""
    saturday = date(2026, 10, 10)
    assert saturday.weekday() == 5
    assert chinese_calendar.is_workday(saturday)
    assert is_working_day(saturday)
    assert add_working_hours(sh(2026, 10, 9, 17, 0), 2) == sh(2026, 10, 10, 9, 30)


def test_weekday_holiday_is_not_a_working_day() -> None:
    # and the ordinary weekend is not one either
    assert not is_working_day(date(2026, 10, 5))  # a Monday in the golden week
    assert not is_working_day(date(2026, 3, 7))  # a plain Saturday
    assert is_working_day(date(2026, 3, 9))


WORK_DAYS_2026 = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 1), timezones=st.just(SHANGHAI)
)
HALF_HOURS = st.integers(min_value=1, max_value=200).map(lambda n: n / 2)


@settings(max_examples=300, deadline=None)
@given(start=WORK_DAYS_2026, first=st.just(0.0) | HALF_HOURS, second=HALF_HOURS)
def test_working_hours_add_up(start: datetime, first: float, second: float) -> None:
    """Adding a then b working hours is the same as adding a + b (b > 0, as every deadline is).

    With b == 0 the law does not hold at a period end: a due time of 18:00 is kept as 18:00,
    but 18:00 + 0 h is moved to the next working morning (see the test below).
    """
    in_two = add_working_hours(add_working_hours(start, first), second)
    assert in_two == add_working_hours(start, first + second)


def test_zero_hours_moves_to_the_next_working_moment() -> None:
    assert add_working_hours(sh(2026, 3, 4, 7, 0), 0) == sh(2026, 3, 4, 8, 30)
    assert add_working_hours(sh(2026, 3, 4, 12, 0), 0) == sh(2026, 3, 4, 13, 30)
    assert add_working_hours(sh(2026, 3, 4, 18, 0), 0) == sh(2026, 3, 5, 8, 30)
    assert add_working_hours(sh(2026, 3, 4, 10, 0), 0) == sh(2026, 3, 4, 10, 0)


def test_new_year_2026_holiday_and_make_up_sunday() -> None:
    """1-3 January 2026 are holidays; Sunday 4 January is a make-up working day (调休)."""
    assert not is_working_day(date(2026, 1, 1))
    assert is_working_day(date(2026, 1, 4))
    assert add_working_hours(sh(2026, 1, 1, 0, 0), 8) == sh(2026, 1, 4, 18, 0)


@settings(max_examples=200, deadline=None)
@given(start=WORK_DAYS_2026, hours=st.integers(min_value=1, max_value=400).map(lambda n: n / 4))
def test_due_time_falls_inside_working_time(start: datetime, hours: float) -> None:
    due = add_working_hours(start, hours)
    assert due > start
    local = due.astimezone(SHANGHAI)
    assert is_working_day(local.date())
    moment = local.time()
    assert time(8, 30) < moment <= time(12, 0) or time(13, 30) < moment <= time(18, 0)
    # and never further than the working hours could possibly stretch (8 h per working day)
    assert due - start >= timedelta(hours=hours)
