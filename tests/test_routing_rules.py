"""Routing over the facts of an event: a table of cases through every rule of the shipped list,
and a property test that every event gets exactly one decision."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.active import load_engine
from rules.engine import RoutingEngine

ENGINE = load_engine()
HS = {"grid": "HS01-G1", "community": "HS01", "street": "HS", "source": "portal"}
QH = {"grid": "QH02-G3", "community": "QH02", "street": "QH", "source": "portal"}
CADRES_HS = {"cadre_ZF": "pz_zf_hs", "cadre_GT": "pz_gt_hs", "cadre_GH": "pz_gh_hs", "cadre_SJ": "pz_sj_hs"}
NO_PLACE: dict[str, Any] = {"source": "portal"}

# (case, facts, rule, tier, unit, assignee)
CASES: list[tuple[str, dict[str, Any], str, str, str, str | None]] = [
    # the list's own tier, one per tier and more
    ("grid garbage", {**HS, "category": "SR-01"}, "category:SR-01", "grid", "HS01-G1", None),
    ("grid dirty road", {**HS, "category": "SR-03"}, "category:SR-03", "grid", "HS01-G1", None),
    ("grid overflowing bins", {**QH, "category": "SR-04"}, "category:SR-04", "grid", "QH02-G3", None),
    ("grid graffiti", {**HS, "category": "SR-06"}, "category:SR-06", "grid", "HS01-G1", None),
    ("grid small ads", {**QH, "category": "GG-01"}, "category:GG-01", "grid", "QH02-G3", None),
    ("grid banners", {**HS, "category": "GG-04"}, "category:GG-04", "grid", "HS01-G1", None),
    ("community sorting", {**HS, "category": "SR-05"}, "category:SR-05", "community", "HS01", None),
    ("community bins broken", {**QH, "category": "SR-09"}, "category:SR-09", "community", "QH02", None),
    ("community facade", {**HS, "category": "SR-12"}, "category:SR-12", "community", "HS01", None),
    ("community shop sign", {**HS, "category": "GG-03"}, "category:GG-03", "community", "HS01", None),
    ("community begging", {**QH, "category": "JM-08"}, "category:JM-08", "community", "QH02", None),
    ("street muck", {**HS, "category": "SR-02"}, "category:SR-02", "street", "HS", None),
    ("street toilets", {**QH, "category": "SR-08"}, "category:SR-08", "street", "QH", None),
    ("street property dispute", {**HS, "category": "MD-03"}, "category:MD-03", "street", "HS", None),
    ("street unsafe house", {**QH, "category": "FW-01"}, "category:FW-01", "street", "QH", None),
    ("street fallen tree", {**HS, "category": "YL-01"}, "category:YL-01", "street", "HS", None),
    # law enforcement of a stationed department (issue 10, item 4): the department, not the street
    ("department outdoor ads", {**HS, "category": "GG-02"}, "category:GG-02", "department", "D-ZF", None),
    ("department construction noise", {**HS, "category": "SG-01"}, "category:SG-01", "department", "D-ZF", None),
    ("department dust", {**QH, "category": "SG-02"}, "category:SG-02", "department", "D-ZF", None),
    ("department site safety", {**HS, "category": "SG-07"}, "category:SG-07", "department", "D-ZJ", None),
    ("department fire", {**HS, "category": "TF-07"}, "category:TF-07", "department", "D-XF", None),
    ("department hazchem", {**QH, "category": "TF-08"}, "category:TF-08", "department", "D-YJ", None),
    ("department wage arrears", {**HS, "category": "MD-04"}, "category:MD-04", "department", "D-RS", None),
    ("department medical dispute", {**QH, "category": "MD-10"}, "category:MD-10", "department", "D-WJ", None),
    ("department illegal taxi", {**HS, "category": "JM-05"}, "category:JM-05", "department", "D-JT", None),
    ("city major emergency", {**HS, "category": "TF-01"}, "category:TF-01", "city", "CC-JS", None),
    ("city mass incident", {**QH, "category": "TF-02"}, "category:TF-02", "city", "CC-JS", None),
    ("city natural disaster", {**HS, "category": "TF-03"}, "category:TF-03", "city", "CC-JS", None),
    ("city public health", {**HS, "category": "WS-01"}, "category:WS-01", "city", "CC-JS", None),
    ("department without location", {**NO_PLACE, "category": "TF-07"}, "category:TF-07", "department", "D-XF", None),
    ("city without location", {**NO_PLACE, "category": "TF-04"}, "category:TF-04", "city", "CC-JS", None),
    # dispatched "1+X" cadres stationed at the street
    ("cadre land", {**HS, **CADRES_HS, "category": "TF-06"}, "cadre:TF-06", "department", "D-GT", "pz_gt_hs"),
    ("cadre elevator", {**HS, **CADRES_HS, "category": "AQ-03"}, "cadre:AQ-03", "department", "D-SJ", "pz_sj_hs"),
    ("cadre amusement", {**HS, **CADRES_HS, "category": "AQ-09"}, "cadre:AQ-09", "department", "D-SJ", "pz_sj_hs"),
    ("cadre food", {**HS, **CADRES_HS, "category": "SP-01"}, "cadre:SP-01", "department", "D-SJ", "pz_sj_hs"),
    ("cadre land use", {**HS, **CADRES_HS, "category": "FW-02"}, "cadre:FW-02", "department", "D-GT", "pz_gt_hs"),
    ("cadre planning", {**HS, **CADRES_HS, "category": "GH-05"}, "cadre:GH-05", "department", "D-GH", "pz_gh_hs"),
    ("no cadre for the fire brigade", {**HS, **CADRES_HS, "category": "TF-07"}, "category:TF-07", "department",
     "D-XF", None),
    ("cadre not at this street", {**QH, "cadre_ZF": "pz_zf_qh", "category": "AQ-03"}, "category:AQ-03",
     "department", "D-SJ", None),
    # repeated reports in the same grid: one tier up
    ("repeat grid → community", {**HS, "category": "SR-01", "repeat": 2}, "repeat", "community", "HS01", None),
    ("repeat community → street", {**HS, "category": "SR-05", "repeat": 3}, "repeat", "street", "HS", None),
    ("repeat street → department", {**HS, "category": "SR-02", "repeat": 2}, "repeat", "department", "D-ZF", None),
    ("repeat street → department with cadre", {**HS, **CADRES_HS, "category": "SR-02", "repeat": 5}, "repeat",
     "department", "D-ZF", "pz_zf_hs"),
    ("repeat department → city", {**HS, "category": "TF-07", "repeat": 2}, "repeat", "city", "CC-JS", None),
    ("one earlier report is no repeat", {**HS, "category": "SR-01", "repeat": 1}, "category:SR-01", "grid",
     "HS01-G1", None),
    # law-enforcement need
    ("enforcement own department", {**HS, "category": "SG-07", "needs_enforcement": True}, "enforcement",
     "department", "D-ZJ", None),
    ("enforcement street category", {**HS, "category": "SG-01", "needs_enforcement": True}, "enforcement",
     "department", "D-ZF", None),
    ("enforcement non-enforcement category", {**HS, "category": "SR-01", "needs_enforcement": True},
     "enforcement", "department", "D-ZF", None),
    ("enforcement with cadre", {**HS, **CADRES_HS, "category": "GG-02", "needs_enforcement": True},
     "enforcement", "department", "D-ZF", "pz_zf_hs"),
    ("enforcement wage arrears", {**QH, "category": "MD-04", "needs_enforcement": True}, "enforcement",
     "department", "D-RS", None),
    # severity: the top of the category's scale goes one tier up
    ("severe garbage", {**HS, "category": "SR-01", "severity": 2}, "severity:SR-01", "community", "HS01", None),
    ("severe muck", {**HS, "category": "SR-02", "severity": 3}, "severity:SR-02", "department", "D-ZF", None),
    ("mild muck stays", {**HS, "category": "SR-02", "severity": 2}, "category:SR-02", "street", "HS", None),
    ("severe fire", {**HS, "category": "TF-07", "severity": 4}, "severity:TF-07", "city", "CC-JS", None),
    ("severe city stays city", {**HS, "category": "TF-01", "severity": 4}, "severity:TF-01", "city", "CC-JS", None),
    # escalations by handlers
    ("escalated once", {**HS, "category": "SR-01", "escalated": 1}, "escalated", "community", "HS01", None),
    ("escalated twice", {**HS, "category": "SR-01", "escalated": 2}, "escalated", "street", "HS", None),
    ("escalated three times", {**HS, "category": "SR-01", "escalated": 3}, "escalated", "department", "D-ZF", None),
    ("escalated beyond the top", {**HS, "category": "SR-01", "escalated": 9}, "escalated", "city", "CC-JS", None),
    # camera alarms: the grid worker confirms on site first
    ("camera street category", {**HS, "source": "camera", "category": "SG-04"}, "camera", "grid", "HS01-G1", None),
    ("camera department category", {**QH, "source": "camera", "category": "JM-05"}, "camera", "grid", "QH02-G3",
     None),
    ("camera without grid", {"street": "HS", "source": "camera", "category": "SR-02"}, "category:SR-02", "street",
     "HS", None),
    ("camera unknown category", {**HS, "source": "camera", "category": "ZZ-01"}, "catch-all", "street", "CC-HS",
     None),
    # triage: returned too often, unknown category, missing location
    ("returned twice", {**HS, "category": "SR-01", "returned": 2}, "returned", "street", "CC-HS", None),
    ("returned once stays", {**HS, "category": "SR-01", "returned": 1}, "category:SR-01", "grid", "HS01-G1", None),
    ("returned without street", {**NO_PLACE, "category": "SR-01", "returned": 3}, "returned", "city", "CC-JS", None),
    ("unknown category", {**QH, "category": "ZZ-99"}, "catch-all", "street", "CC-QH", None),
    ("no category", {**HS, "category": ""}, "catch-all", "street", "CC-HS", None),
    ("nothing at all", {**NO_PLACE, "category": ""}, "catch-all", "city", "CC-JS", None),
    ("grid tier without grid", {"street": "ST", "source": "portal", "category": "SR-01"}, "category:SR-01", "street",
     "CC-ST", None),
    ("community tier without location", {**NO_PLACE, "category": "SR-05"}, "category:SR-05", "city", "CC-JS", None),
    ("repeat of unknown category", {**HS, "category": "ZZ-01", "repeat": 4}, "catch-all", "street", "CC-HS", None),
]


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 60
    rules = {rule.split(":")[0] for _, _, rule, *_ in CASES}
    assert {"category", "cadre", "repeat", "enforcement", "camera", "severity", "escalated", "returned",
            "catch-all"} <= rules


# The cases that no rule can place: they go to a command centre's triage inbox.
UNPLACED = {
    "camera unknown category", "returned twice", "returned without street", "unknown category", "no category",
    "nothing at all", "grid tier without grid", "community tier without location", "repeat of unknown category",
}


@pytest.mark.parametrize(("case", "facts", "rule", "tier", "unit", "assignee"), CASES, ids=[c[0] for c in CASES])
def test_routing_case(case: str, facts: dict[str, Any], rule: str, tier: str, unit: str, assignee: str | None) -> None:
    decision = ENGINE.decide(facts)
    assert (decision["rule"], decision["tier"], decision["unit"], decision["assignee"]) == (rule, tier, unit, assignee)
    assert decision["list_version"] == ENGINE.version and decision["reason"]
    assert decision["facts"] == facts
    assert decision["placed"] is (case not in UNPLACED)


def test_triage_decisions_say_why() -> None:
    decision = ENGINE.decide({**QH, "category": "ZZ-99"})
    assert decision["placed"] is False and "ZZ-99" in decision["reason"]
    decision = ENGINE.decide({"street": "ST", "category": "SR-01"})
    assert decision["placed"] is False and "needs a grid" in decision["reason"]


def test_priorities_are_data(tmp_path: Any) -> None:
    """Swapping two priorities in the list changes which rule decides."""
    lst = ENGINE.list.model_copy(deep=True)
    lst.policies.priorities["camera"], lst.policies.priorities["repeat"] = 20, 50
    swapped = RoutingEngine(lst)
    facts = {**HS, "category": "SR-02", "source": "camera", "repeat": 3}
    assert ENGINE.decide(facts)["rule"] == "repeat"
    assert swapped.decide(facts)["rule"] == "camera"


CODES = [c.code for c in ENGINE.list.categories]
location = st.sampled_from([HS, QH, {"street": "ST"}, {}])
fact_values = st.fixed_dictionaries(
    {"category": st.one_of(st.sampled_from(CODES), st.text(max_size=12))},
    optional={
        "severity": st.integers(min_value=-2, max_value=9),
        "repeat": st.integers(min_value=0, max_value=50),
        "returned": st.integers(min_value=0, max_value=5),
        "escalated": st.integers(min_value=0, max_value=6),
        "needs_enforcement": st.booleans(),
        "source": st.sampled_from(["portal", "hotline", "camera", "grid_patrol", "api"]),
        "cadre_SJ": st.just("pz_sj_hs"),
        "cadre_ZF": st.just("pz_zf_hs"),
    },
)


@settings(max_examples=300, deadline=None)
@given(loc=location, extra=fact_values)
def test_every_event_gets_exactly_one_decision(loc: dict[str, Any], extra: dict[str, Any]) -> None:
    decision = ENGINE.decide({**loc, **extra})
    assert decision is not None
    assert isinstance(decision["placed"], bool) and decision["unit"]
    assert decision["tier"] in ("grid", "community", "street", "department", "city")
    assert decision["rule"] and decision["deadline_hours"]["handling"] > 0
