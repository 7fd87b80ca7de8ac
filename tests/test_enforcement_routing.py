"""Law-enforcement categories reach law enforcement (issue 10, item 4).

The seed's "1+X" design: four departments (国土 GT, 规划 GH, 市场监管 SJ, 综合行政执法 ZF) station
cadres full-time at every street, so that the cases needing their powers (fines, orders to stop or
demolish, confiscation) are handled at the street by someone who holds them. 违章搭建 used to land with
the street's staff, who have none of those powers. Now every law-enforcement category of a stationed
department is the department's, at the department tier; routing puts it in the department's inbox,
assigned to its cadre stationed at the event's street (or to the department when none is).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from activities.lifecycle import LifecycleActivities
from rules.active import load_engine
from store import models
from store.db import Database
from store.seed import load_organisation
from workflows.types import EventReport, Location, RoutingRequest

ENGINE = load_engine()
ORGANISATION = json.loads((Path(__file__).parents[1] / "store" / "demo" / "organisation.json").read_text("utf-8"))
#: The "1+X" departments of the seed, as the demo organisation marks them.
STATIONED = {u["code"].removeprefix("D-") for u in ORGANISATION["units"] if u.get("stationed")}
STREETS = {
    "HS": {"grid": "HS01-G1", "community": "HS01", "street": "HS"},
    "ST": {"grid": "ST01-G2", "community": "ST01", "street": "ST"},
    "QH": {"grid": "QH02-G3", "community": "QH02", "street": "QH"},
}


def cadres(street: str) -> dict[str, str]:
    """The cadre facts the routing activity gathers at ``street`` in the demo organisation."""
    return {f"cadre_{u['unit'].removeprefix('D-')}": u["username"] for u in ORGANISATION["users"]
            if u["role"] == "dispatched_cadre" and u.get("stationed_street") == street}


def test_the_demo_organisation_stations_the_four_departments_of_the_seed_at_every_street() -> None:
    assert STATIONED == {"GT", "GH", "SJ", "ZF"}
    for street in STREETS:
        assert set(cadres(street)) == {f"cadre_{d}" for d in STATIONED}


def test_every_law_enforcement_category_of_a_stationed_department_is_the_departments() -> None:
    wrong = [(c.code, c.name_zh, c.tier) for c in ENGINE.list.categories
             if c.law_enforcement and c.department in STATIONED and c.tier != "department"]
    assert wrong == []


# (report as a dispatcher sees it, category, the department whose power it needs)
ENFORCEMENT_CASES = [
    ("邻居在楼顶违章搭建阳光房", "GH-01", "ZF"),  # 违法建设: illegal construction
    ("晚上有人偷偷砌墙盖房", "GH-02", "ZF"),  # 在建违建
    ("村里有人超面积建房", "GH-03", "ZF"),  # 农村建房违规
    ("车库改成了小饭店", "GH-04", "ZF"),  # 擅自改变房屋用途
    ("一楼住户破墙开店", "GH-06", "ZF"),  # 擅自开门开窗
    ("楼下有人私挖地下室", "FW-06", "ZF"),  # 私挖地下室
    ("路边摆摊卖水果把路占了", "JM-01", "ZF"),  # 占道经营: occupying the road
    ("店铺把货摆到人行道上", "JM-03", "ZF"),  # 店外经营
    ("烧烤摊摆在路边到半夜", "JM-06", "ZF"),  # 露天烧烤
    ("修车铺在马路上修车", "JM-07", "ZF"),  # 占道洗车修车
    ("商店门口高音喇叭促销太吵", "JM-09", "ZF"),  # 商业促销喇叭扰民: noise from business
    ("废品站的废品堆到路上", "JM-10", "ZF"),  # 废品收购站违规经营
    ("楼顶立了一块很大的广告牌", "GG-02", "ZF"),  # 违规户外广告: illegal advertising
    ("工地半夜还在施工", "SG-01", "ZF"),  # 施工扰民
    ("工地扬尘很大", "SG-02", "ZF"),  # 工地扬尘
    ("渣土车一路撒泥", "SG-03", "ZF"),  # 渣土车抛洒
    ("施工把半条路围了", "SG-04", "ZF"),  # 施工占道
    ("有人把装修垃圾倒在河边", "SG-06", "ZF"),  # 装修垃圾乱倒
    ("饭店油烟直排到居民楼", "HB-02", "ZF"),  # 油烟扰民
    ("僵尸车停了半年", "SR-10", "ZF"),  # 废弃车辆
    ("有人踩踏破坏绿化带", "YL-02", "ZF"),  # 绿地破坏
    ("有人偷偷砍了路边的树", "YL-05", "ZF"),  # 擅自砍伐树木
    ("车停在人行道上挡路", "JT-03", "ZF"),  # 机动车乱停放
    ("楼下小店没有营业执照", "SC-01", "SJ"),  # 无证经营: unlicensed trading
    ("菜场摊贩缺斤短两", "SC-04", "SJ"),  # 缺斤短两
    ("超市在卖过期食品", "SP-02", "SJ"),  # 过期食品
    ("小区里有无证的家庭厨房做外卖", "SP-03", "SJ"),  # 无证餐饮
    ("菜场门口违规宰杀活禽", "SP-08", "SJ"),  # 活禽宰杀
    ("有人占用耕地盖厂房", "FW-02", "GT"),  # 非法占用土地
]


def test_the_cases_cover_every_law_enforcement_category_of_a_stationed_department() -> None:
    shipped = {c.code for c in ENGINE.list.categories if c.law_enforcement and c.department in STATIONED}
    assert {code for _, code, _ in ENFORCEMENT_CASES} <= shipped
    assert len({code for _, code, _ in ENFORCEMENT_CASES}) >= 25


@pytest.mark.parametrize("street", sorted(STREETS))
@pytest.mark.parametrize(("text", "code", "department"), ENFORCEMENT_CASES,
                         ids=[f"{c}:{t[:6]}" for t, c, _ in ENFORCEMENT_CASES])
def test_law_enforcement_goes_to_the_departments_cadre_at_the_street(
    text: str, code: str, department: str, street: str
) -> None:
    decision = ENGINE.decide({**STREETS[street], "source": "portal", "category": code, **cadres(street)})
    assert (decision["rule"], decision["tier"], decision["unit"], decision["assignee"]) == (
        f"cadre:{code}", "department", f"D-{department}", f"pz_{department.lower()}_{street.lower()}"), text
    assert decision["department"] == department


@pytest.mark.parametrize(("text", "code", "department"), ENFORCEMENT_CASES[:6],
                         ids=[f"{c}:{t[:6]}" for t, c, _ in ENFORCEMENT_CASES[:6]])
def test_without_a_cadre_at_the_street_the_department_has_it(text: str, code: str, department: str) -> None:
    decision = ENGINE.decide({**STREETS["HS"], "source": "portal", "category": code})
    assert (decision["rule"], decision["unit"], decision["assignee"]) == (f"category:{code}", f"D-{department}", None)


def test_a_law_enforcement_case_asked_for_explicitly_keeps_the_cadre() -> None:
    decision = ENGINE.decide({**STREETS["QH"], "source": "portal", "category": "GH-01", "needs_enforcement": True,
                              **cadres("QH")})
    assert (decision["rule"], decision["unit"], decision["assignee"]) == ("enforcement", "D-ZF", "pz_zf_qh")


@pytest.mark.parametrize(("code", "tier", "unit"), [
    ("JM-02", "grid", "HS01-G1"),  # 流动摊贩: the grid worker asks a hawker to move on first
    ("GG-01", "grid", "HS01-G1"),  # 小广告: torn off on patrol
    ("SR-02", "street", "HS"),  # 积存垃圾渣土: cleaning, no enforcement
    ("MD-01", "community", "HS01"),  # 邻里纠纷: mediation
    ("ZA-06", "community", "HS01"),  # 犬只扰民: the police's power, no cadre stationed
])
def test_what_needs_no_stationed_power_stays_local(code: str, tier: str, unit: str) -> None:
    decision = ENGINE.decide({**STREETS["HS"], "source": "portal", "category": code, **cadres("HS")})
    assert (decision["rule"], decision["tier"], decision["unit"], decision["assignee"]) == (
        f"category:{code}", tier, unit, None)


# ------------------------------------------------------------------ a report, through the routing activity
@pytest.fixture
async def acts(tmp_path: Path) -> AsyncIterator[LifecycleActivities]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}")
    await db.create_all()
    await load_organisation(db)
    yield LifecycleActivities(db, secret="x")
    await db.dispose()


async def _route(acts: LifecycleActivities, category: str, grid: str, description: str = "x") -> Any:
    report = EventReport(category=category, description=description, location=Location(grid=grid))
    return await acts.route_event(RoutingRequest(event_id="EV-T-1", report=report))


@pytest.mark.parametrize(("category", "grid", "unit", "assignee"), [
    ("GH-01", "HS01-G1", "D-ZF", "pz_zf_hs"),  # 违章搭建 in Hushan: the ZF cadre stationed at HS
    ("GH-01", "ST01-G2", "D-ZF", "pz_zf_st"),
    ("JM-01", "QH02-G3", "D-ZF", "pz_zf_qh"),
    ("GG-02", "ST03-G1", "D-ZF", "pz_zf_st"),
    ("SC-01", "HS02-G1", "D-SJ", "pz_sj_hs"),
    ("FW-02", "QH01-G1", "D-GT", "pz_gt_qh"),
])
async def test_a_report_goes_to_the_cadre_stationed_at_its_street(
    acts: LifecycleActivities, category: str, grid: str, unit: str, assignee: str
) -> None:
    decision = await _route(acts, category, grid)
    assert (decision.tier, decision.unit, decision.assignee) == ("department", unit, assignee)


async def test_a_deactivated_cadre_leaves_the_case_with_the_department(acts: LifecycleActivities) -> None:
    async with acts.db.session() as session:
        cadre = await session.get(models.User, "pz_zf_hs")
        assert cadre is not None
        cadre.active = False
        session.add(cadre)
        await session.commit()
    decision = await _route(acts, "GH-01", "HS01-G1")
    assert (decision.unit, decision.assignee) == ("D-ZF", None)
