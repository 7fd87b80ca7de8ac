"""Category suggestion from a resident's description (rules.suggest, GET /api/categories/suggest)."""

from __future__ import annotations

import json
import time
import timeit
from collections.abc import AsyncIterator
from dataclasses import FrozenInstanceError
from functools import cache
from pathlib import Path

import httpx
import pytest

from rules.responsibility_list import DEFAULT_LIST_PATH, ResponsibilityList, load
from rules.suggest import MAX_TEXT_CHARS, CategorySuggester, Suggestion
from store.db import Database
from web.app import create_app
from web.context import AppContext
from wulian.rule_admin import activate, check_content
from wulian.settings import Settings


@cache
def shipped() -> ResponsibilityList:
    return load()


@cache
def suggester() -> CategorySuggester:
    return CategorySuggester(shipped())


#: Colloquial resident descriptions and the category that must be among the top three.
RESIDENT_TEXTS: list[tuple[str, str]] = [
    ("楼道里有人给电动车充电,很危险", "XF-02"),  # 电动车楼道充电
    ("隔壁装修太吵了晚上还在施工", "SG-01"),  # 施工扰民
    ("路灯坏了一个星期了晚上很黑", "GY-01"),  # 路灯损坏
    ("饭店油烟太大熏得没法开窗", "HB-02"),  # 油烟扰民
    ("小区消防通道被车堵住了", "XF-01"),  # 消防通道堵塞
    ("垃圾没人清", "SR-01"),  # 暴露垃圾
    ("小区门口的垃圾桶都满了好几天没人收,臭气熏天", "SR-04"),  # 垃圾满溢
    ("楼下有个井盖不见了,晚上走路很危险", "GY-02"),  # 井盖缺失破损
    ("路口的红绿灯不亮了,车都乱开", "JT-02"),  # 交通信号灯故障
    ("楼上邻居家漏水,把我家天花板泡坏了", "FW-07"),  # 房屋渗漏
    ("电梯坏了,有老人被关在里面出不来", "AQ-03"),  # 电梯故障困人
    ("小区里有人遛狗不牵绳,狗还到处拉屎", "ZA-06"),  # 犬只扰民
    ("马路上有个大坑,电动车骑过去差点摔倒", "JT-01"),  # 道路破损
    ("小区旁边的河水发黑发臭,夏天蚊子特别多", "HB-05"),  # 黑臭水体
    ("菜市场有摊贩缺斤短两,买一斤只有八两", "SC-04"),  # 缺斤短两
    ("老板拖欠工人工资三个月了一直不发", "MD-04"),  # 劳资纠纷(欠薪)
    ("昨晚大风把路边的树吹倒了,压在路中间", "YL-01"),  # 树木倒伏
    ("家门口有人摆摊卖水果,把人行道都占了", "JM-01"),  # 占道经营
    ("半夜闻到很浓的煤气味,担心是漏气了", "AQ-02"),  # 燃气泄漏隐患
    ("有人在田边烧秸秆,浓烟很大呛得人受不了", "HB-04"),  # 焚烧垃圾秸秆
    ("工地晚上还在打桩,吵得睡不着", "SG-01"),  # 施工扰民
    ("邻居在楼顶私搭乱建加盖了一层", "GH-01"),  # 违法建设
    ("路边停了一辆很久没动过的车,轮胎都瘪了落满了灰", "SR-10"),  # 废弃车辆
    ("一下雨路口就积水很深,车都过不去", "JT-05"),  # 道路积水
    ("接到冒充客服的电话,被骗了两千块", "ZA-03"),  # 电信网络诈骗
    ("楼下小饭馆没有营业执照", "SC-01"),  # 无证经营
    ("墙上贴满了小广告,到处都是办证的电话", "GG-01"),  # 乱张贴小广告
    ("下水道堵了,污水冒到路上", "GY-07"),  # 下水道堵塞
    ("对面楼有人往下扔东西,差点砸到人", "AQ-01"),  # 高空坠物隐患
    ("小区里的健身器材坏了好久没人修", "GY-09"),  # 健身器材损坏
    ("楼上装修一直砸墙,担心把承重墙砸坏了", "FW-05"),  # 破坏承重结构
    ("店铺在门口摆满了货物,占用人行道", "JM-03"),  # 店外经营
    ("小区有好几家群租房,一套房子住了二十多个人", "FW-03"),  # 群租房
]


#: Colloquial noise, smell, water and neighbour descriptions (issue 10, item 4) and the category a
#: dispatcher would choose for each: it must come FIRST (not merely in the top three). Noise from a
#: square dance or a barking dog is no construction (在建违建 came first for "晚上广场舞太吵" while typed).
COLLOQUIAL_TEXTS: list[tuple[str, str]] = [
    ("晚上广场舞太吵", "HB-01"),  # 噪声污染
    ("晚上广场舞吵得睡不着", "HB-01"),  # 噪声污染
    ("小区广场舞音响声音太大，晚上十点还在跳", "HB-01"),  # 噪声污染
    ("楼下工厂机器声音很大，晚上也不停", "HB-01"),  # 噪声污染
    ("楼上装修电钻声", "SG-01"),  # 施工扰民
    ("楼上装修一大早就开始电钻，吵死了", "SG-01"),  # 施工扰民
    ("半夜还在施工打桩", "SG-01"),  # 施工扰民
    ("店门口的音响放歌太吵了", "JM-09"),  # 商业促销喇叭扰民
    ("狗半夜叫", "ZA-06"),  # 犬只扰民
    ("邻居家的狗整天乱叫", "ZA-06"),  # 犬只扰民
    ("楼上邻居家小孩天天跑跳，咚咚响", "MD-01"),  # 邻里纠纷
    ("烧烤油烟熏人", "HB-02"),  # 油烟扰民
    ("楼下饭店的油烟味飘进家里", "HB-02"),  # 油烟扰民
    ("路边烧烤摊烟熏火燎到半夜", "JM-06"),  # 露天烧烤
    ("垃圾站臭味", "SR-09"),  # 垃圾收集设施破损
    ("小区垃圾房味道太大了", "SR-09"),  # 垃圾收集设施破损
    ("化粪池满了，臭气熏天", "GY-07"),  # 下水道堵塞
    ("养猪场的臭味飘到村里", "HB-08"),  # 畜禽养殖污染
    ("工厂排出刺鼻的气味", "HB-06"),  # 工业废气
    ("公厕臭得进不去", "SR-08"),  # 公共厕所问题
    ("水管爆了", "GY-03"),  # 供水管道破裂
    ("马路上自来水管冒水", "GY-03"),  # 供水管道破裂
    ("楼上漏水", "FW-07"),  # 房屋渗漏
    ("家里突然没水了", "GY-04"),  # 停水停电
    ("自来水发黄还有股怪味", "GY-05"),  # 水压水质异常
    ("下水道返水，地漏往上冒污水", "GY-07"),  # 下水道堵塞
    ("消防栓一直在漏水", "XF-05"),  # 消防设施损坏
    ("下雨后小区门口积水很深", "JT-05"),  # 道路积水
    ("邻居占用楼道堆杂物", "XF-06"),  # 楼道堆放杂物
    ("邻居把电动车推进楼道充电", "XF-02"),  # 电动车楼道充电
    ("邻居在绿化带里种菜", "YL-03"),  # 毁绿种菜
    ("邻居在楼顶违章搭建", "GH-01"),  # 违法建设
    ("对门邻居天天吵架", "MD-01"),  # 邻里纠纷
]


def codes(text: str, limit: int = 5) -> list[str]:
    return [s.code for s in suggester().suggest(text, limit)]


def test_expected_codes_exist_in_the_list() -> None:
    known = shipped().by_code()
    assert all(code in known for _, code in RESIDENT_TEXTS)
    assert len(RESIDENT_TEXTS) >= 15


@pytest.mark.parametrize(("text", "code"), RESIDENT_TEXTS, ids=[c + ":" + t[:8] for t, c in RESIDENT_TEXTS])
def test_resident_description_ranks_its_category_in_the_top_three(text: str, code: str) -> None:
    top = suggester().suggest(text, 3)
    assert code in [s.code for s in top], [(s.code, s.name_zh, s.score, s.matched) for s in top]


def test_colloquial_texts_are_many_and_known() -> None:
    known = shipped().by_code()
    assert len(COLLOQUIAL_TEXTS) >= 21 and all(code in known for _, code in COLLOQUIAL_TEXTS)
    assert ("晚上广场舞太吵", "HB-01") in COLLOQUIAL_TEXTS


@pytest.mark.parametrize(("text", "code"), COLLOQUIAL_TEXTS, ids=[c + ":" + t[:8] for t, c in COLLOQUIAL_TEXTS])
def test_colloquial_description_ranks_its_category_first(text: str, code: str) -> None:
    top = suggester().suggest(text, 3)
    assert top and top[0].code == code, [(s.code, s.name_zh, s.score, s.matched) for s in top]


@pytest.mark.parametrize("typed", ["晚上", "晚上广场舞", "晚上广场舞太吵", "半夜", "每天晚上都很吵"])
def test_words_of_time_alone_suggest_no_construction(typed: str) -> None:
    # As the resident types, the suggestions refresh: a word that says when is no evidence of what.
    assert "GH-02" not in codes(typed)
    assert codes("晚上") == [] and codes("半夜") == []


def test_near_synonyms_rank_through_shared_characters() -> None:
    # No keyword of 垃圾满溢 occurs in the text; it ranks by the bigram fallback.
    ranked = codes("垃圾没人清", 5)
    assert ranked[0] == "SR-01"
    assert "SR-04" in ranked


def test_gapped_keyword_matches_with_inserted_characters() -> None:
    best = suggester().suggest("老板拖欠工人工资三个月了一直不发", 1)[0]
    assert best.code == "MD-04"
    assert "拖欠工资" in best.matched


def test_chinese_name_in_the_text_counts_strongly() -> None:
    best = suggester().suggest("这里有暴露垃圾", 1)[0]
    assert best.code == "SR-01"
    assert best.matched[0] == "暴露垃圾"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("The streetlight on our road has been broken for a week", "GY-01"),
        ("Someone keeps charging an EBIKE in the corridor", "XF-02"),
        ("Graffiti all over the wall of the underpass", "SR-06"),
    ],
)
def test_english_description(text: str, code: str) -> None:
    best = suggester().suggest(text, 1)[0]
    assert best.code == code
    assert best.matched  # an English keyword matched (case-insensitively)


def test_english_keywords_match_whole_words_only() -> None:
    # "firelane" and "fire" are keywords; "firefly" and "campfires" are neither.
    assert "TF-07" not in codes("a firefly near the campfires")
    assert "TF-07" in codes("there is a FIRE in the building")


@pytest.mark.parametrize("text", ["", " ", "\n\t  ", "\u3000"])
def test_empty_text_gives_nothing(text: str) -> None:
    assert suggester().suggest(text) == []


def test_text_without_any_match_gives_nothing() -> None:
    assert suggester().suggest("qwzx vbnk") == []


def test_limit_is_honoured() -> None:
    text = "小区门口的垃圾桶都满了好几天没人收,臭气熏天"
    assert len(suggester().suggest(text, 1)) == 1
    assert len(suggester().suggest(text, 3)) == 3
    assert len(suggester().suggest(text)) == 5
    many = suggester().suggest(text, 20)
    assert 5 < len(many) <= 20
    assert [s.code for s in many[:3]] == codes(text, 3)
    with pytest.raises(ValueError, match="limit"):
        suggester().suggest(text, 0)


def test_deterministic_ordering() -> None:
    other = CategorySuggester(shipped())
    for text, _ in RESIDENT_TEXTS:
        first = suggester().suggest(text, 20)
        assert first == suggester().suggest(text, 20) == other.suggest(text, 20)
        keys = [(-s.score, s.code) for s in first]
        assert keys == sorted(keys)
        assert all(s.score > 0 for s in first)


def test_suggestion_is_a_frozen_record() -> None:
    best = suggester().suggest("路灯坏了", 1)[0]
    assert isinstance(best, Suggestion)
    assert (best.code, best.name_zh, best.name_en) == ("GY-01", "路灯损坏", "Broken streetlights")
    assert isinstance(best.score, float) and isinstance(best.matched, tuple)
    with pytest.raises(FrozenInstanceError):
        best.score = 0.0  # type: ignore[misc]


def test_long_text_is_truncated() -> None:
    filler = "。" * MAX_TEXT_CHARS
    assert suggester().suggest(filler + "井盖不见了") == []
    assert codes("井盖不见了" + filler, 1) == ["GY-02"]


def test_full_width_text_is_normalised() -> None:
    assert codes("ＳＴＲＥＥＴＬＩＧＨＴ　ｂｒｏｋｅｎ", 1) == ["GY-01"]


def test_a_suggestion_takes_well_under_a_millisecond() -> None:
    texts = [t for t, _ in RESIDENT_TEXTS[:15]]
    s = suggester()
    runs = 100
    best = min(timeit.repeat(lambda: [s.suggest(t) for t in texts], timer=time.process_time, number=runs, repeat=3))
    assert best / (runs * len(texts)) < 0.001


# ------------------------------------------------------------------ web context and API
@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, AppContext]]:
    settings = Settings(data_dir=tmp_path, secret_key="x")
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    await db.create_all()
    ctx = AppContext(settings=settings, db=db)
    app = create_app(settings, ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                                 base_url="http://testserver") as client:
        yield client, ctx
    await db.dispose()


async def test_context_rebuilds_the_suggester_when_the_list_version_changes(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    await db.create_all()
    ctx = AppContext(settings=Settings(data_dir=tmp_path, secret_key="x"), db=db)
    first = await ctx.suggester()
    assert await ctx.suggester() is first
    assert first.version == (await ctx.engine()).version == "2026.1"
    data = json.loads(DEFAULT_LIST_PATH.read_text(encoding="utf-8"))
    data["version"] = "2026.1-suggest-test"
    await activate(db, await check_content(db, json.dumps(data, ensure_ascii=False)), "admin")
    ctx.engines.refresh()
    second = await ctx.suggester()
    assert second is not first
    assert second.version == "2026.1-suggest-test"
    assert await ctx.suggester() is second
    await db.dispose()


async def test_api_suggests_categories(http: tuple[httpx.AsyncClient, AppContext]) -> None:
    client, _ = http
    response = await client.get("/api/categories/suggest", params={"text": "楼道里有人给电动车充电,很危险"})
    assert response.status_code == 200, response.text
    suggestions = response.json()["suggestions"]
    assert 1 <= len(suggestions) <= 5
    assert suggestions[0]["code"] == "XF-02"
    assert set(suggestions[0]) == {"code", "name_zh", "name_en", "score", "matched"}
    assert suggestions[0]["name_zh"] == "电动车楼道充电"
    assert "电动车充电" in suggestions[0]["matched"]
    assert isinstance(suggestions[0]["score"], float)


async def test_api_limit(http: tuple[httpx.AsyncClient, AppContext]) -> None:
    client, _ = http
    text = "小区门口的垃圾桶都满了好几天没人收,臭气熏天"
    one = await client.get("/api/categories/suggest", params={"text": text, "limit": 1})
    assert one.status_code == 200 and len(one.json()["suggestions"]) == 1
    twenty = await client.get("/api/categories/suggest", params={"text": text, "limit": 20})
    assert twenty.status_code == 200 and 5 < len(twenty.json()["suggestions"]) <= 20
    for bad in ("0", "21", "-1", "many"):
        response = await client.get("/api/categories/suggest", params={"text": text, "limit": bad})
        assert response.status_code == 400, (bad, response.text)
    out_of_range = await client.get("/api/categories/suggest", params={"text": text, "limit": 21})
    assert "between 1 and 20" in out_of_range.json()["detail"]


async def test_api_rejects_missing_empty_or_too_long_text(http: tuple[httpx.AsyncClient, AppContext]) -> None:
    client, _ = http
    missing = await client.get("/api/categories/suggest")
    assert missing.status_code == 400
    assert "text" in missing.json()["detail"]
    for blank in ("", "   "):
        response = await client.get("/api/categories/suggest", params={"text": blank})
        assert response.status_code == 400
        assert "must not be empty" in response.json()["detail"]
    too_long = await client.get("/api/categories/suggest", params={"text": "路" * (MAX_TEXT_CHARS + 1)})
    assert too_long.status_code == 400
    assert "too long" in too_long.json()["detail"]
    longest = await client.get("/api/categories/suggest", params={"text": "路灯坏了" * (MAX_TEXT_CHARS // 4)})
    assert longest.status_code == 200
    assert longest.json()["suggestions"][0]["code"] == "GY-01"


async def test_api_is_public_and_does_not_clash_with_the_category_list(
    http: tuple[httpx.AsyncClient, AppContext],
) -> None:
    client, _ = http
    listing = await client.get("/api/categories")
    assert listing.status_code == 200 and len(listing.json()["categories"]) == 165
    response = await client.get("/api/categories/suggest", params={"text": "井盖不见了"})
    assert response.status_code == 200
    assert response.json()["suggestions"][0]["code"] == "GY-02"
