"""Open311 GeoReport v2 (issue 12, item 2) against a running platform served by uvicorn on a real port,
through two unmodified clients from PyPI and through plain HTTP:

- ``georeport`` 0.3.1 (requests + xmltodict): lists services and a service definition, fetches
  requests and one request, in JSON and in XML. It never sends an ``api_key`` on a read, so it reads
  the public subset (see web/open311.py): by ``service_request_id`` it fetches; a search without ids
  is refused 403 by design (it would list everybody's receipt codes), which the test asserts.
- ``civicbot`` 0.4.0 (urllib): posts a request with attributes (validated against our service list and
  definition by the client first), resolves a token, fetches the request.
- Every answer checked against the GeoReport v2 fields and types directly (never skipped), against the
  JSON schemas of the open311/schema-validation repository with ``jsonschema`` when they are present
  (``$WULIAN_OPEN311_SCHEMAS`` or /work/shared/open311-schema-validation/georeport-v2/), and every XML
  answer parsed and compared field by field with the JSON one.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from store import api_keys, models, queries
from tests.platform import Platform, running_platform
from workflows.event_lifecycle import EventLifecycle

BASE_PATH = "/open311/v2"
#: HS01-G1's centre (store/demo/organisation.json): reports there are placed in that grid.
LAT, LON = 28.7552, 118.629
SCHEMA_DIRS = [Path(p) for p in (os.environ.get("WULIAN_OPEN311_SCHEMAS"),) if p] + [
    Path("/work/shared/open311-schema-validation/georeport-v2"),
    Path(__file__).resolve().parents[3] / "shared" / "open311-schema-validation" / "georeport-v2",
]
RFC3339_CITY = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Live:
    platform: Platform
    base: str  # http://127.0.0.1:<port>/open311/v2
    keys: dict[str, str]  # integration name -> key
    reports: dict[str, str] = field(default_factory=dict)  # what -> receipt code


@pytest.fixture(scope="module")
async def live(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    """One platform for the module, its web app on a real port, and three integrations' keys."""
    import uvicorn

    async with running_platform(dev_env.client, tmp_path_factory.mktemp("open311")) as platform:
        keys = {}
        for name, scopes in (("civic-app", ("report", "read")), ("other-app", ("report", "read")),
                             ("reader-only", ("read",))):
            _, keys[name] = await api_keys.create_key(platform.db, name, scopes, "admin")
        port = _free_port()
        app = platform.http._transport.app  # type: ignore[attr-defined]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off"))
        task = asyncio.create_task(server.serve())
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        try:
            yield Live(platform, f"http://127.0.0.1:{port}{BASE_PATH}", keys)
        finally:
            server.should_exit = True
            await task


def _civicbot(live: Live, fmt: str = "json") -> Any:
    from civicbot.http import HttpTransport, RateLimiter
    from civicbot.open311 import Open311Client
    from civicbot.registry import Endpoint

    endpoint = Endpoint(id="wulian", name="Wulian", base_url=live.base, write=True)
    # Its politeness interval (0.5 s a host) is a parameter of the transport; nothing else changes.
    return Open311Client(endpoint, transport=HttpTransport(rate_limiter=RateLimiter(min_interval=0.0)), fmt=fmt)


async def _post(live: Live, key: str | None, **form: Any) -> httpx.Response:
    data = {"service_code": "SR-01", "lat": str(LAT), "long": str(LON), "description": "路口垃圾堆积",
            **({"api_key": key} if key else {}), **form}
    async with httpx.AsyncClient() as http:
        return await http.post(f"{live.base}/requests.json", data=data)


async def _get(live: Live, path: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(f"{live.base}/{path}", params=params, headers=params.pop("headers", None) or {})


async def _routed(live: Live, receipt: str) -> models.Event:
    for _ in range(150):
        event = await queries.event_by_receipt(live.platform.db, receipt)
        if event is not None and event.unit:
            return event
        await asyncio.sleep(0.1)
    raise AssertionError(f"{receipt} was not projected")


@pytest.fixture(scope="module")
async def reported(live: Live) -> Live:
    """Reports of two integrations: civic-app's with a reporter (name and phone) and media, other-app's."""
    first = await _post(live, live.keys["civic-app"], first_name="三", last_name="张", phone="13800000000",
                        media_url="https://example.org/p/1.jpg", **{"attribute[severity]": "2"})
    assert first.status_code == 201, first.text
    live.reports["civic"] = first.json()[0]["service_request_id"]
    second = await _post(live, live.keys["other-app"], description="另一个系统的上报")
    assert second.status_code == 201, second.text
    live.reports["other"] = second.json()[0]["service_request_id"]
    for code in live.reports.values():
        await _routed(live, code)
    return live


# ---------------------------------------------------------------------------------------------- georeport
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_georeport_lists_services_and_a_definition(live: Live, fmt: str) -> None:
    from georeport import GeoReport

    client = GeoReport(live.base, output_format=fmt)
    services = await asyncio.to_thread(client.get_service_list)
    by_code = {s["service_code"]: s for s in services}
    assert len(by_code) == 165  # the shipped list's categories
    garbage = by_code["SR-01"]
    assert garbage["service_name"] == "暴露垃圾"  # zh-CN by default
    assert garbage["group"] == "市容环境" and "垃圾" in garbage["keywords"].split(",")
    assert garbage["metadata"] in (True, "true") and garbage["type"] == "realtime"
    definition = await asyncio.to_thread(client.get_service_definition, "SR-01")
    assert definition["service_code"] == "SR-01"
    attributes = definition["attributes"]
    if fmt == "xml":  # xmltodict: <attributes><attribute>… is a dict holding one attribute (or a list)
        attributes = attributes["attribute"]
        attributes = attributes if isinstance(attributes, list) else [attributes]
        values = attributes[0]["values"]["value"]
    else:
        values = attributes[0]["values"]
    assert attributes[0]["code"] == "severity" and attributes[0]["datatype"] == "singlevaluelist"
    assert [(v["key"], v["name"]) for v in values] == [("1", "一般"), ("2", "较大")]


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_georeport_fetches_requests_and_one_request(reported: Live, fmt: str) -> None:
    import requests
    from georeport import GeoReport

    live = reported
    client = GeoReport(live.base, output_format=fmt)
    both = f"{live.reports['civic']},{live.reports['other']}"
    found = await asyncio.to_thread(client.get_service_requests, service_request_id=both)
    assert [r["service_request_id"] for r in found] == [live.reports["civic"], live.reports["other"]]
    one = await asyncio.to_thread(client.get_service_request, live.reports["civic"])
    assert one["service_request_id"] == live.reports["civic"] and one["status"] == "open"
    # Severity 2 is the top of SR-01's scale: one tier up, the community (the decision's unit).
    assert one["service_code"] == "SR-01" and one["agency_responsible"] == "城北社区"
    assert RFC3339_CITY.match(one["requested_datetime"]) and RFC3339_CITY.match(one["expected_datetime"])
    # georeport sends no api_key on reads: the public subset, without description, address or media.
    assert "description" not in one and "media_url" not in one and "lat" not in one
    # A search without ids would list everybody's receipt codes: refused without a read key.
    with pytest.raises(requests.HTTPError) as refused:
        await asyncio.to_thread(client.get_service_requests, service_code="SR-01")
    assert refused.value.response.status_code == 403


# ---------------------------------------------------------------------------------------------- civicbot
async def test_civicbot_posts_with_attributes_resolves_a_token_and_fetches(live: Live) -> None:
    bot = _civicbot(live)
    key = live.keys["civic-app"]
    sent = await asyncio.to_thread(
        bot.create_request, "GG-02", dry_run=False, confirm="SEND", api_key=key, validate_remote=True,
        lat=LAT, lng=LON, description="墙上违规广告", attributes={"severity": "3", "needs_enforcement": "true"},
        media_url="https://example.org/ad.jpg")
    answer = sent.response
    assert isinstance(answer, list) and len(answer) == 1, answer
    receipt = answer[0]["service_request_id"]
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{10}", receipt) and answer[0]["service_notice"]
    event = await _routed(live, receipt)
    assert event.integration == "civic-app" and event.category == "GG-02"
    snap = await live.platform.client.get_workflow_handle(event.event_id).query(EventLifecycle.snapshot)
    assert snap.report.severity == 3 and snap.report.needs_enforcement is True  # the attributes arrived
    fetched = await asyncio.to_thread(bot.get_request, receipt)
    assert fetched["service_request_id"] == receipt and fetched["service_code"] == "GG-02"

    # Not routed within the intake wait: a token, resolved once the event is routed and stored.
    settings = live.platform.settings
    wait, settings.intake_wait_seconds = settings.intake_wait_seconds, 0
    try:
        sent = await asyncio.to_thread(bot.create_request, "SR-01", dry_run=False, confirm="SEND", api_key=key,
                                       lat=LAT, lng=LON, description="令牌测试", attributes={"severity": "1"})
    finally:
        settings.intake_wait_seconds = wait
    token = sent.response[0]["token"]
    assert "service_request_id" not in sent.response[0]
    resolved: Any = None
    for _ in range(100):
        resolved = await asyncio.to_thread(bot.get_token, token)
        if resolved[0].get("service_request_id"):
            break
        await asyncio.sleep(0.1)
    receipt = resolved[0]["service_request_id"]
    assert resolved[0]["token"] == token and receipt
    fetched = await asyncio.to_thread(bot.get_request, receipt)
    assert fetched["service_request_id"] == receipt and fetched["service_code"] == "SR-01"


async def test_civicbot_checks_attributes_against_our_definition_before_sending(live: Live) -> None:
    from civicbot.open311 import ValidationError

    bot = _civicbot(live)
    with pytest.raises(ValidationError, match="severity"):
        await asyncio.to_thread(bot.create_request, "SR-01", dry_run=False, confirm="SEND",
                                api_key=live.keys["civic-app"], validate_remote=True, lat=LAT, lng=LON,
                                description="x", attributes={"severity": "9"})


# ---------------------------------------------------------------------------------------------- scope
async def test_reading_with_a_key_lists_only_the_integrations_own_reports(reported: Live) -> None:
    live = reported
    mine = await _get(live, "requests.json", api_key=live.keys["civic-app"], service_code="SR-01")
    assert mine.status_code == 200, mine.text
    codes = [r["service_request_id"] for r in mine.json()]
    assert live.reports["civic"] in codes and live.reports["other"] not in codes
    full = next(r for r in mine.json() if r["service_request_id"] == live.reports["civic"])
    assert full["description"] == "路口垃圾堆积" and full["lat"] == LAT and full["long"] == LON
    assert full["media_url"] == "https://example.org/p/1.jpg"
    theirs = await _get(live, "requests.json", headers={"X-API-Key": live.keys["other-app"]})
    assert [r["service_request_id"] for r in theirs.json()] == [live.reports["other"]]
    # Another integration's report by id: only the public subset.
    other = await _get(live, f"requests/{live.reports['civic']}.json", api_key=live.keys["other-app"])
    assert other.status_code == 200 and "description" not in other.json()[0]
    # A key without `read` reads nothing as an integration; no key cannot search.
    for params in ({"api_key": live.keys["reader-only"] + "x"}, {}):
        refused = await _get(live, "requests.json", **params)
        assert refused.status_code == 403
        assert refused.json()[0]["code"] == 403 and refused.json()[0]["description"]


async def test_no_answer_holds_a_reporters_name_or_phone(reported: Live) -> None:
    live = reported
    key = live.keys["civic-app"]
    for fmt in ("json", "xml"):
        for path, params in ((f"requests.{fmt}", {"api_key": key}),
                             (f"requests.{fmt}", {"service_request_id": live.reports["civic"]}),
                             (f"requests/{live.reports['civic']}.{fmt}", {"api_key": key}),
                             (f"requests/{live.reports['civic']}.{fmt}", {})):
            answer = await _get(live, path, **params)
            assert answer.status_code == 200, (path, answer.text)
            assert "13800000000" not in answer.text and "张" not in answer.text, path


async def test_search_by_dates_status_and_pages(reported: Live) -> None:
    live = reported
    key = live.keys["civic-app"]
    today = datetime.now().date()
    naive = await _get(live, "requests.json", api_key=key, start_date=f"{today - timedelta(days=1)}T00:00:00",
                       end_date=str(today + timedelta(days=1)))
    assert live.reports["civic"] in [r["service_request_id"] for r in naive.json()]
    past = await _get(live, "requests.json", api_key=key, start_date="2026-01-01T00:00:00Z",
                      end_date="2026-01-31T00:00:00+08:00")
    assert past.status_code == 200 and past.json() == []
    too_long = await _get(live, "requests.json", api_key=key, start_date="2026-01-01", end_date="2026-05-01")
    assert too_long.status_code == 400 and "90 days" in too_long.json()[0]["description"]
    closed = await _get(live, "requests.json", api_key=key, status="closed")
    assert live.reports["civic"] not in [r["service_request_id"] for r in closed.json()]
    opened = await _get(live, "requests.json", api_key=key, status="open")
    everything = [r["service_request_id"] for r in opened.json()]
    assert live.reports["civic"] in everything
    pages = [await _get(live, "requests.json", api_key=key, page_size="1", page=str(n)) for n in (1, 2)]
    assert [p.json()[0]["service_request_id"] for p in pages] == everything[:2]
    bad = await _get(live, "requests.json", api_key=key, status="pending")
    assert bad.status_code == 400


async def test_refusals_are_the_specs_errors(live: Live) -> None:
    no_key = await _post(live, None)
    assert no_key.status_code == 403 and no_key.json()[0]["code"] == 403
    read_only = await _post(live, live.keys["reader-only"])
    assert read_only.status_code == 403 and "report" in read_only.json()[0]["description"]
    too_long = await _post(live, live.keys["civic-app"], description="长" * 2001)
    assert too_long.status_code == 400 and "description" in too_long.json()[0]["description"]
    blank = await _post(live, live.keys["civic-app"], description="\u200b ")
    assert blank.status_code == 400 and "description" in blank.json()[0]["description"]
    nowhere = await _post(live, live.keys["civic-app"], lat="", long="")
    assert nowhere.status_code == 400 and "location" in nowhere.json()[0]["description"]
    unknown = await _post(live, live.keys["civic-app"], **{"attribute[colour]": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json()[0]["description"]
    javascript = await _post(live, live.keys["civic-app"], media_url="javascript:alert(1)")
    assert javascript.status_code == 400 and "media_url" in javascript.json()[0]["description"]
    missing = await _get(live, "services/NOPE-1.xml")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/xml")
    error = ET.fromstring(missing.content)  # noqa: S314 - our own answer
    assert error.tag == "errors" and error.find("error/code").text == "404"  # type: ignore[union-attr]
    assert (await _get(live, "services.yaml")).status_code == 404
    assert (await _get(live, "requests/ZZZZZZZZZZ.json")).status_code == 404
    assert (await _get(live, "tokens/nope.json")).status_code == 404
    async with httpx.AsyncClient() as http:
        addressed = await http.post(f"{live.base}/requests.json", data={
            "api_key": live.keys["civic-app"], "service_code": "SR-01", "description": "北苑小区门口垃圾",
            "address_string": "城北路北苑小区"})
    assert addressed.status_code == 201, addressed.text  # address_string alone places the report


async def test_a_form_with_raw_utf8_bytes_is_read_as_utf8(live: Live) -> None:
    """``curl -d description=路口垃圾`` (the README's example) sends the text's bytes without escaping
    them: they are UTF-8, never Latin-1; a body that is not UTF-8 is refused."""
    key = live.keys["civic-app"]
    raw = (f"api_key={key}&service_code=SR-01&lat={LAT}&long={LON}&description=楼道口垃圾无人清理").encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient() as http:
        posted = await http.post(f"{live.base}/requests.json", content=raw, headers=headers)
        assert posted.status_code == 201, posted.text
        code = posted.json()[0]["service_request_id"]
        read = await http.get(f"{live.base}/requests/{code}.json", params={"api_key": key})
        gbk = f"api_key={key}&service_code=SR-01&description=".encode() + "垃圾".encode("gbk")
        latin = await http.post(f"{live.base}/requests.json", headers=headers, content=gbk)
    assert read.json()[0]["description"] == "楼道口垃圾无人清理"
    assert latin.status_code == 400 and "UTF-8" in latin.json()[0]["description"]


async def test_list_attributes_and_a_voided_report_closed(live: Live) -> None:
    key = live.keys["civic-app"]
    listed = await _post(live, key, **{"attribute[severity][]": "1"})  # the spec's list form, one value
    assert listed.status_code == 201, listed.text
    two = await _post(live, key, **{"attribute[severity][]": ["1", "2"]})
    assert two.status_code == 400 and "severity" in two.json()[0]["description"]
    receipt = listed.json()[0]["service_request_id"]
    event = await _routed(live, receipt)
    headers = await live.platform.login("zx_hs")
    voided = await live.platform.http.post(f"/api/events/{event.event_id}/supervise", headers=headers,
                                           json={"action": "void", "reason": "重复上报"})
    assert voided.status_code == 200, voided.text
    for _ in range(100):
        closed = await _get(live, "requests.json", api_key=key, status="closed")
        if receipt in [r["service_request_id"] for r in closed.json()]:
            break
        await asyncio.sleep(0.1)
    item = next(r for r in closed.json() if r["service_request_id"] == receipt)
    assert item["status"] == "closed" and item["status_notes"] == "已作废"
    assert receipt not in [r["service_request_id"] for r in
                           (await _get(live, "requests.json", api_key=key, status="open")).json()]


async def test_revoked_key_is_refused(live: Live) -> None:
    _, key = await api_keys.create_key(live.platform.db, "short-lived", ("report", "read"), "admin")
    assert (await _get(live, "requests.json", api_key=key)).status_code == 200
    await api_keys.revoke_key(live.platform.db, "short-lived", "admin")
    refused = await _get(live, "requests.json", api_key=key)
    assert refused.status_code == 403


async def test_status_notes_in_the_callers_language(reported: Live) -> None:
    live = reported
    path = f"requests/{live.reports['civic']}.json"
    zh = (await _get(live, path)).json()[0]
    en = (await _get(live, path, headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})).json()[0]
    assert zh["status_notes"] == "已派遣" or re.search(r"[\u4e00-\u9fff]", zh["status_notes"])
    assert not re.search(r"[\u4e00-\u9fff]", en["status_notes"]) and en["status_notes"]
    assert en["service_name"] == "Exposed garbage" and en["agency_responsible"] == "Chengbei Community"


# ---------------------------------------------------------------------------------------------- schemas
@pytest.fixture(scope="module")
async def answers(reported: Live) -> dict[str, tuple[Any, bytes]]:
    """Every kind of answer, as JSON and as the XML of the same request: kind -> (json, xml bytes)."""
    live = reported
    key = live.keys["civic-app"]
    civic = live.reports["civic"]
    calls = {
        "discovery": ("discovery", {}), "services": ("services", {}), "service-definition": ("services/SR-10", {}),
        "requests": ("requests", {"api_key": key}), "requests-public": ("requests", {"service_request_id": civic}),
        "request": (f"requests/{civic}", {"api_key": key}), "errors": ("services/NOPE-1", {}),
    }
    found: dict[str, tuple[Any, bytes]] = {}
    for kind, (path, params) in calls.items():
        as_json = await _get(live, f"{path}.json", **params)
        as_xml = await _get(live, f"{path}.xml", **params)
        assert as_json.headers["content-type"] == "application/json; charset=utf-8"
        assert as_xml.headers["content-type"] == "text/xml; charset=utf-8"
        assert as_json.status_code == as_xml.status_code
        found[kind] = (as_json.json(), as_xml.content)
    posted = await _post(live, key)
    async with httpx.AsyncClient() as http:
        posted_xml = await http.post(f"{live.base}/requests.xml", data={
            "api_key": key, "service_code": "SR-01", "lat": str(LAT), "long": str(LON), "description": "XML"})
    assert posted.status_code == posted_xml.status_code == 201
    found["post"] = (posted.json(), posted_xml.content)
    return found


def _schema_dir() -> Path | None:
    return next((d for d in SCHEMA_DIRS if (d / "request.json").exists()), None)


SCHEMA_OF = {"services": "services.json", "service-definition": "service-definition.json",
             "requests": "requests.json", "requests-public": "requests.json", "request": "requests.json"}


def test_answers_validate_against_the_open311_schema_validation_schemas(answers: dict[str, tuple[Any, bytes]]) -> None:
    folder = _schema_dir()
    if folder is None:
        pytest.skip("the JSON schemas of github.com/open311/schema-validation (schema/georeport-v2/*.json) are not "
                    "here: copy them to /work/shared/open311-schema-validation/georeport-v2/ or set "
                    "WULIAN_OPEN311_SCHEMAS")
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    schemas = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}
    registry = Registry().with_resources(
        (name, Resource.from_contents(body, default_specification=DRAFT4)) for name, body in schemas.items())
    for kind, schema_name in SCHEMA_OF.items():
        validator = jsonschema.Draft4Validator(schemas[schema_name], registry=registry,
                                               format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
        errors = [f"{kind}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(answers[kind][0])]
        assert not errors, errors
        assert answers[kind][0], kind  # something was validated
    # Each request item on its own too, against request.json (the array schema's items).
    item = jsonschema.Draft4Validator(schemas["request.json"], registry=registry)
    for entry in answers["requests"][0] + answers["requests-public"][0]:
        item.validate(entry)


def _string_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


def spec_problems(kind: str, data: Any) -> list[str]:
    """What an answer lacks or has wrong by the GeoReport v2 specification's fields and types."""
    problems: list[str] = []

    def need(cond: bool, what: str) -> None:
        if not cond:
            problems.append(f"{kind}: {what}")

    if kind == "discovery":
        need(isinstance(data, dict) and isinstance(data.get("endpoints"), list), "endpoints list")
        for ep in data.get("endpoints", []):
            need(ep.get("specification") == "http://wiki.open311.org/GeoReport_v2", "specification")
            need(set(ep.get("formats", [])) == {"application/json", "text/xml"}, "formats")
            need(isinstance(ep.get("url"), str) and ep["url"].endswith("/open311/v2"), "url")
            need(RFC3339_CITY.match(ep.get("changeset", "")) is not None, "changeset")
        return problems
    if kind == "services":
        need(isinstance(data, list) and bool(data), "a non-empty list")
        for s in data:
            need(isinstance(s.get("service_code"), str) and isinstance(s.get("service_name"), str), "code, name")
            need(isinstance(s.get("metadata"), bool), "metadata boolean")
            need(s.get("type") in ("realtime", "batch", "blackbox"), "type")
            need(all(_string_or_none(s.get(k)) for k in ("description", "keywords", "group")), "texts")
        return problems
    if kind == "service-definition":
        need(isinstance(data.get("service_code"), str) and isinstance(data.get("attributes"), list), "shape")
        for a in data.get("attributes", []):
            need(isinstance(a.get("variable"), bool) and isinstance(a.get("required"), bool), "booleans")
            need(isinstance(a.get("code"), str) and isinstance(a.get("order"), int), "code, order")
            need(a.get("datatype") in ("string", "number", "datetime", "text", "singlevaluelist",
                                       "multivaluelist"), "datatype")
            need(isinstance(a.get("description"), str), "description")
            need(all(isinstance(v.get("key"), str) and isinstance(v.get("name"), str) for v in a.get("values", [])),
                 "values")
        return problems
    if kind in ("requests", "requests-public", "request"):
        need(isinstance(data, list) and bool(data), "a non-empty list")
        for r in data:
            need(isinstance(r.get("service_request_id"), str), "string service_request_id")
            need(r.get("status") in ("open", "closed"), "status")
            need(isinstance(r.get("service_code"), str), "service_code")
            for k in ("requested_datetime", "updated_datetime", "expected_datetime"):
                need(r.get(k) is None or RFC3339_CITY.match(r[k]) is not None, f"{k} with +08:00")
            need(r.get("requested_datetime") is not None, "requested_datetime")
            for k in ("status_notes", "service_name", "description", "agency_responsible", "service_notice",
                      "address", "address_id", "zipcode", "media_url"):
                need(_string_or_none(r.get(k)), f"{k} text or null")
            for k in ("lat", "long"):
                need(r.get(k) is None or isinstance(r[k], int | float), f"{k} number")
            need(not {"reporter", "phone", "first_name", "last_name", "email"} & set(r), "no personal fields")
        return problems
    if kind == "post":
        need(isinstance(data, list) and len(data) == 1, "a list of one")
        for r in data:
            need(isinstance(r.get("service_request_id"), str) or isinstance(r.get("token"), str), "id or token")
            need(_string_or_none(r.get("service_notice")), "service_notice")
        return problems
    if kind == "errors":
        need(isinstance(data, list) and bool(data), "a non-empty list")
        for e in data:
            need(isinstance(e.get("code"), int) and isinstance(e.get("description"), str), "code and description")
        return problems
    raise AssertionError(kind)


def _xml_value(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    if element.tag in ("attributes", "values", "endpoints", "formats"):
        return [_xml_value(c) for c in children]
    return {c.tag: _xml_value(c) for c in children}


def _as_text(value: Any) -> Any:
    """A JSON value as XML shows it: texts, ``true``/``false``, empty for null."""
    if isinstance(value, dict):
        return {k: _as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


ROOTS = {"discovery": ("discovery", None), "services": ("services", "service"),
         "service-definition": ("service_definition", None), "requests": ("service_requests", "request"),
         "requests-public": ("service_requests", "request"), "request": ("service_requests", "request"),
         "errors": ("errors", "error")}


def test_every_answer_has_the_specs_fields_and_types_and_xml_the_same(answers: dict[str, tuple[Any, bytes]]) -> None:
    for kind, (data, xml) in answers.items():
        assert not spec_problems(kind, data), spec_problems(kind, data)
        assert xml.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
        root = ET.fromstring(xml)  # noqa: S314 - our own answer
        if kind == "post":
            assert root.tag == "service_requests" and [c.tag for c in root] == ["request"]
            assert set(_xml_value(root[0])) == set(data[0])  # another report, the same fields
            continue
        tag, item = ROOTS[kind]
        assert root.tag == tag, kind
        parsed = [_xml_value(c) for c in root] if item else _xml_value(root)
        if item:
            assert all(c.tag == item for c in root), kind
        expected = _as_text(data)
        if kind == "errors":
            assert parsed == expected
        elif kind == "discovery":
            assert parsed["endpoints"][0]["formats"] == expected["endpoints"][0]["formats"]
            assert {k: v for k, v in parsed.items() if k != "endpoints"} == {
                k: v for k, v in expected.items() if k != "endpoints"}
        else:
            assert parsed == expected, kind


async def test_the_spec_check_finds_what_is_wrong() -> None:
    """The direct check is no rubber stamp: answers that break the spec are caught."""
    assert spec_problems("requests", [{"service_request_id": 12, "status": "pending", "service_code": "SR-01",
                                       "requested_datetime": "2026-12-01 10:00"}])
    assert spec_problems("services", [{"service_code": "SR-01", "service_name": "x", "metadata": "true",
                                       "type": "realtime"}])
    assert spec_problems("requests", [{"service_request_id": "A", "status": "open", "service_code": "SR-01",
                                       "requested_datetime": "2026-12-01T10:00:00+08:00", "phone": "138"}])


async def test_an_unexpected_failure_is_an_errors_body_not_a_page(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    from store import open311 as store311

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the store fell over")

    monkeypatch.setattr(store311, "events_by_receipt", broken)
    answer = await _get(live, "requests/ABCDEFGHJK.xml")
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(answer.content)  # noqa: S314 - our own answer
    assert root.tag == "errors" and "fell over" not in answer.text  # no internals shown


def test_an_xml_answer_stays_readable_whatever_a_stored_text_holds() -> None:
    """Markup in a text is escaped, and the two characters a valid text may hold that XML 1.0 cannot
    (U+FFFE, U+FFFF) are replaced, so one report cannot make a whole page of answers unreadable."""
    from xml.etree import ElementTree

    from web.open311_format import to_xml

    text = "井盖<b>缺失</b>&\ufffe\uffff"
    parsed = ElementTree.fromstring(to_xml("service_requests", [{"description": text}]))  # noqa: S314
    assert parsed.findtext("request/description") == "井盖<b>缺失</b>&\ufffd\ufffd"
