"""Open311 GeoReport v2 at ``/open311/v2/`` (issue 12, item 2): the standard interface civic software
speaks. JSON or XML by the path's suffix (web/open311_format.py), UTF-8, string ids, datetimes in
+08:00. One jurisdiction: ``jurisdiction_id`` is accepted and ignored.

- ``discovery.{fmt}``; ``services.{fmt}`` from the active responsibility list (service_code = the
  category's code, its group, keywords, ``metadata`` true when it has attributes);
  ``services/{code}.{fmt}`` with the attributes: ``severity`` (singlevaluelist of the category's
  severity scale) where the scale has more than one level, ``needs_enforcement`` (singlevaluelist
  true/false) for law-enforcement categories.
- ``POST requests.{fmt}`` (form-encoded) needs an API key with the scope ``report`` (``api_key``, or the
  ``X-API-Key`` header); the report passes the one definition of a valid report
  (``workflows/inputs.py``) and starts its workflow through ``web.commands.start_event``, like
  ``POST /api/events``. The answer's ``service_request_id`` is the event's receipt code, or a
  ``token`` when the event was not routed within the intake wait (``tokens/{token}.{fmt}``).
- Reading requests (``GET requests.{fmt}``, ``requests/{id}.{fmt}``): with a key that has ``read``, the
  integration's own reports with everything but the reporter (description, address, coordinates,
  media); a search without ``service_request_id`` needs such a key (403 otherwise: it would list
  everybody's receipt codes). Without a key, or for a report of somebody else, a receipt code reads
  the **public subset** the tracking page shows anyway, without description, address, coordinates or
  media: id, status and notes, service, agency, the datetimes. Never a reporter's name or phone.
  Public reads are rate-limited per client address like ``/api/track``.
- Errors: the spec's ``errors`` list of ``{code, description}`` with 400, 403 (an API key missing,
  unknown, revoked or without the scope), 404, 429.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import MultiDict
from litestar.exceptions import HTTPException

from rules.responsibility_list import Category
from rules.worktime import CITY_TZ
from store import models
from store import open311 as store311
from store.api_keys import Integration
from store.timeutil import as_utc
from web import api_keys, commands
from web.client_address import client_ip
from web.context import AppContext
from web.i18n import DEFAULT_LANGUAGE, translate
from web.open311_format import errors, render, split_format
from web.request_limits import Limited, hit, track_limit
from workflows import inputs
from workflows.types import EventReport, Location, Reporter

PREFIX = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: When this interface last changed (discovery's ``changeset``).
CHANGESET = "2026-12-02T00:00:00+08:00"
#: The longest span a search may ask (the spec's 90 days) and the default span.
MAX_SPAN = timedelta(days=90)
PAGE_SIZE, MAX_PAGE_SIZE = 50, 100
#: Receipt codes one ``service_request_id`` list may name (each a public read without a key).
MAX_IDS = 50
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]{1,64})\](\[\])?$")


class Refused(Exception):
    """An Open311 refusal: the status and the description of the spec's error body."""

    def __init__(self, status: int, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers


def language(request: Request[Any, Any, Any]) -> str:
    """The caller's language from ``Accept-Language`` (highest q first): ``en`` or ``zh-CN`` (default)."""
    header = request.headers.get("accept-language", "")
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, index, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE


def iso(moment: datetime | None) -> str | None:
    """A stored datetime in the city's time zone, e.g. ``2026-12-02T09:30:00+08:00``."""
    return as_utc(moment).astimezone(CITY_TZ).isoformat(timespec="seconds") if moment else None


def _fmt(name: str) -> str:
    stem, fmt = split_format(name)
    if fmt is None:
        raise Refused(404, "unknown format: end the path with .json or .xml")
    return fmt


def _stem(name: str, expected: str) -> str:
    stem, fmt = split_format(name)
    if fmt is None or stem != expected:
        raise Refused(404, f"no such resource (try {expected}.json or {expected}.xml)")
    return fmt


def _name(lang: str, zh: str, en: str) -> str:
    return en if lang == "en" and en else zh


# ---------------------------------------------------------------------------------------- services
def attributes_of(category: Category, lang: str) -> list[dict[str, Any]]:
    """The service definition's attributes of a category (see the module's docstring)."""
    found: list[dict[str, Any]] = []
    if len(category.severity_scale) > 1:
        found.append({
            "variable": True, "code": "severity", "datatype": "singlevaluelist", "required": False,
            "datatype_description": translate(lang, "open311.attr.severity.datatype"),
            "order": 1, "description": translate(lang, "open311.attr.severity"),
            "values": [{"key": str(level), "name": name}
                       for level, name in enumerate(category.severity_scale, start=1)],
        })
    if category.law_enforcement:
        found.append({
            "variable": True, "code": "needs_enforcement", "datatype": "singlevaluelist", "required": False,
            "datatype_description": translate(lang, "open311.attr.enforcement.datatype"),
            "order": len(found) + 1, "description": translate(lang, "open311.attr.enforcement"),
            "values": [{"key": "true", "name": translate(lang, "open311.yes")},
                       {"key": "false", "name": translate(lang, "open311.no")}],
        })
    return found


# ---------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class Reader:
    """Who reads: the integration of a key with ``read`` (its own reports in full), or nobody."""

    integration: Integration | None

    def owns(self, event: models.Event) -> bool:
        return self.integration is not None and event.integration == self.integration.name


def _status(event: models.Event) -> str:
    return "closed" if event.state in store311.CLOSED_STATES else "open"


async def request_items(ctx: AppContext, events: list[models.Event], lang: str,
                        reader: Reader) -> list[dict[str, Any]]:
    """The spec's request objects of ``events``: the whole report for the reader's own, the public
    subset for the rest. Never the reporter's name or phone."""
    engine = await ctx.engine()
    org = await ctx.org()
    deadlines = await store311.handling_deadlines(ctx.db, [e.event_id for e in events])
    items = []
    for event in events:
        category = engine.category(event.category) if event.category else None
        unit = org.units.get(event.unit) if event.unit else None
        item: dict[str, Any] = {
            "service_request_id": event.receipt_code,
            "status": _status(event),
            "status_notes": translate(lang, f"state.{event.state}"),
            "service_name": (_name(lang, category.name_zh, category.name_en) if category
                             else event.category_name or None),
            "service_code": event.category,
            "agency_responsible": _name(lang, unit.name_zh, unit.name_en) if unit else event.unit,
            "service_notice": None,
            "requested_datetime": iso(event.created_at),
            "updated_datetime": iso(event.closed_at or event.updated_at),
            "expected_datetime": iso(deadlines.get(event.event_id)),
        }
        if reader.owns(event):
            item.update(description=event.description, address=event.address, address_id=None, zipcode=None,
                        lat=event.lat, long=event.lon, media_url=event.media_url)
        items.append(item)
    return items


def parse_moment(value: str, field: str, *, end: bool) -> datetime:
    """A ``start_date``/``end_date``: W3C datetime with or without its offset (naive = the city's local
    time), or a date alone (its first moment for a start, its last for an end)."""
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.fromisoformat(text).replace(tzinfo=CITY_TZ)
            return day + timedelta(days=1, microseconds=-1) if end else day
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Refused(400, f"{field}: not a date or datetime (e.g. 2026-12-01T00:00:00+08:00)") from None
    return moment.replace(tzinfo=CITY_TZ) if moment.tzinfo is None else moment


def _span(query: Any) -> tuple[datetime, datetime]:
    start_text, end_text = query.get("start_date"), query.get("end_date")
    start = parse_moment(start_text, "start_date", end=False) if start_text else None
    end = parse_moment(end_text, "end_date", end=True) if end_text else None
    if start is None and end is None:
        end = datetime.now(CITY_TZ)
    if start is None:
        assert end is not None
        start = end - MAX_SPAN
    if end is None:
        end = start + MAX_SPAN
    if end < start:
        raise Refused(400, "end_date is before start_date")
    if end - start > MAX_SPAN + timedelta(days=1):  # a whole last day counts as within 90 days
        raise Refused(400, "start_date and end_date may not span more than 90 days")
    return start, end


def _int(query: Any, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"\d{1,6}", raw) or not low <= int(raw) <= high:
        raise Refused(400, f"{name}: a whole number from {low} to {high}")
    return int(raw)


def _list(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


# ---------------------------------------------------------------------------------------- the routes
def _refused(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Every refusal under /open311/v2 as the spec's errors body, in the format of the path's suffix."""
    fmt = split_format(request.url.path.rsplit("/", 1)[-1])[1] or "json"
    if isinstance(exc, Refused):
        return errors(fmt, exc.status, exc.description, exc.headers)
    if isinstance(exc, commands.CommandError):
        return errors(fmt, exc.status, exc.reason)
    if isinstance(exc, HTTPException):
        return errors(fmt, exc.status_code, str(exc.detail), exc.headers or None)
    request.logger.exception("unhandled error on %s", request.url.path)
    return errors(fmt, 500, "internal error")


class Open311Api(Controller):
    """GeoReport v2 (see the module's docstring)."""

    path = PREFIX
    include_in_schema = False  # described by the GeoReport v2 specification and discovery, not by /schema
    exception_handlers = {Refused: _refused, commands.CommandError: _refused, HTTPException: _refused,
                          Exception: _refused}  # never an HTML page or a stack trace here

    async def _key(self, ctx: AppContext, request: Request[Any, Any, Any], scope: str,
                   key: str | None) -> Integration:
        try:
            return await api_keys.require(ctx, request, scope, key or None)
        except api_keys.KeyRefused as exc:
            if exc.status == 429:
                raise Refused(429, exc.reason, {"Retry-After": str(exc.retry_after)}) from None
            raise Refused(403, exc.reason) from None  # the spec: 403 for a key missing or not valid

    async def _reader(self, ctx: AppContext, request: Request[Any, Any, Any], ids: int = 1) -> Reader:
        """The key's integration (scope ``read``), or nobody: then each receipt code asked counts as
        one public read of the client address, like one ``/api/track`` (no faster guessing here)."""
        key = request.query_params.get("api_key") or api_keys.presented_key(request)
        if key:
            return Reader(await self._key(ctx, request, "read", key))
        try:
            for _ in range(max(1, ids)):
                await hit(ctx.db, track_limit(ctx.settings), client_ip(request, ctx.settings))
        except Limited as exc:
            raise Refused(429, str(exc), {"Retry-After": str(exc.retry_after)}) from None
        return Reader(None)

    @get("/{name:str}")
    async def top(self, ctx: AppContext, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        """``discovery.{fmt}``, ``services.{fmt}`` and ``requests.{fmt}``."""
        stem, fmt = split_format(name)
        if fmt is None:
            raise Refused(404, "unknown format: end the path with .json or .xml")
        lang = language(request)
        if stem == "discovery":
            base = (ctx.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")) + PREFIX
            return render(fmt, "discovery", {
                "changeset": CHANGESET, "contact": translate(lang, "open311.contact"),
                "key_service": translate(lang, "open311.key_service"),
                "endpoints": [{"specification": SPECIFICATION, "url": base, "changeset": CHANGESET,
                               "type": "production", "formats": ["application/json", "text/xml"]}],
            })
        if stem == "services":
            engine = await ctx.engine()
            groups = {g.code: g for g in engine.list.groups}
            return render(fmt, "services", [{
                "service_code": c.code, "service_name": _name(lang, c.name_zh, c.name_en),
                "description": translate(lang, "open311.service.description", hours=c.deadlines.handling),
                "metadata": bool(attributes_of(c, lang)), "type": "realtime",
                "keywords": ",".join(c.keywords),
                "group": _name(lang, groups[c.group].name_zh, groups[c.group].name_en) if c.group in groups
                else c.group,
            } for c in engine.list.categories])
        if stem == "requests":
            return await self._requests(ctx, request, fmt, lang)
        raise Refused(404, "no such resource (discovery, services, requests)")

    async def _requests(self, ctx: AppContext, request: Request[Any, Any, Any], fmt: str,
                        lang: str) -> Response[bytes]:
        query = request.query_params
        ids = _list(query.get("service_request_id"))
        if len(ids) > MAX_IDS:
            raise Refused(400, f"service_request_id: at most {MAX_IDS} ids")
        reader = await self._reader(ctx, request, len(ids))
        if ids:  # the spec: service_request_id overrides every other parameter
            events = await store311.events_by_receipt(ctx.db, ids)
            return render(fmt, "service_requests", await request_items(ctx, events, lang, reader))
        if reader.integration is None:
            raise Refused(403, "searching requests needs an api_key with the 'read' scope (it lists that "
                               "integration's own reports); service_request_id reads a report without one")
        statuses = _list(query.get("status"))
        if any(s not in ("open", "closed") for s in statuses):
            raise Refused(400, "status: open or closed (comma separated)")
        codes = _list(query.get("service_code"))
        if any(not re.fullmatch(inputs.CODE_PATTERN, c) or len(c) > inputs.MAX_CATEGORY for c in codes):
            raise Refused(400, "service_code: category codes such as SR-01 (comma separated)")
        start, end = _span(query)
        size = _int(query, "page_size", PAGE_SIZE, 1, MAX_PAGE_SIZE)
        page = _int(query, "page", 1, 1, 10_000)
        events = await store311.integration_events(
            ctx.db, reader.integration.name, start, end, categories=codes, status=statuses, limit=size,
            offset=(page - 1) * size)
        return render(fmt, "service_requests", await request_items(ctx, events, lang, reader))

    @get("/services/{name:str}")
    async def service(self, ctx: AppContext, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        """``services/{code}.{fmt}``: the service definition with its attributes."""
        stem, fmt = split_format(name)
        if fmt is None:
            raise Refused(404, "unknown format: end the path with .json or .xml")
        category = (await ctx.engine()).category(stem)
        if category is None:
            raise Refused(404, f"no service with the code '{stem[:40]}'")
        return render(fmt, "service_definition",
                      {"service_code": category.code, "attributes": attributes_of(category, language(request))})

    @get("/requests/{name:str}")
    async def one_request(self, ctx: AppContext, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        """``requests/{id}.{fmt}``: one request, as an array of one."""
        stem, fmt = split_format(name)
        if fmt is None:
            raise Refused(404, "unknown format: end the path with .json or .xml")
        reader = await self._reader(ctx, request)
        events = await store311.events_by_receipt(ctx.db, [stem])
        if not events:
            raise Refused(404, "no request with this id")
        return render(fmt, "service_requests", await request_items(ctx, events, language(request), reader))

    @get("/tokens/{name:str}")
    async def token(self, ctx: AppContext, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        """``tokens/{token}.{fmt}``: the request id of a token, once its event is routed and stored
        (``service_request_id`` null before)."""
        stem, fmt = split_format(name)
        if fmt is None:
            raise Refused(404, "unknown format: end the path with .json or .xml")
        row, event = await store311.token_event(ctx.db, stem)
        if row is None:
            raise Refused(404, "no such token")
        return render(fmt, "service_requests",
                      [{"token": row.token, "service_request_id": event.receipt_code if event else None}])

    @post("/{name:str}", status_code=201)
    async def create(self, ctx: AppContext, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        """``POST requests.{fmt}``: a report from an integration (form-encoded, with its ``api_key``)."""
        fmt = _stem(name, "requests")
        form = _Form(await _posted_form(request))
        lang = language(request)
        integration = await self._key(ctx, request, "report", form.get("api_key") or None)
        report = await self._report(ctx, form, integration)
        problems = inputs.report_problems(inputs.normalised(report))
        if problems:
            raise Refused(400, "; ".join(p.message.replace("location.lon", "long") for p in problems))
        started = await commands.start_event(ctx, report)
        body: list[dict[str, Any]]
        if started.snapshot is None:  # not routed within the wait: a token, resolved later
            token = await store311.new_token(ctx.db, started.event_id, integration.name)
            body = [{"token": token, "service_notice": translate(lang, "open311.notice.accepted")}]
        else:
            decision = started.snapshot.decision
            org = await ctx.org()
            unit = org.units.get(decision.unit) if decision and decision.unit else None
            notice = (translate(lang, "open311.notice.routed", unit=_name(lang, unit.name_zh, unit.name_en))
                      if unit else translate(lang, "open311.notice.accepted"))
            body = [{"service_request_id": started.receipt_code, "service_notice": notice, "account_id": None}]
        return render(fmt, "service_requests", body, status=201)

    async def _report(self, ctx: AppContext, form: Any, integration: Integration) -> EventReport:
        """The report a POST describes (checked afterwards by ``workflows.inputs``, like every entrance)."""
        code = (form.get("service_code") or "").strip()
        if not code:
            raise Refused(400, "service_code is required")
        category = (await ctx.engine()).category(code)
        if category is None:
            raise Refused(400, f"service_code '{code[:40]}' is not a service (see services.json)")
        lat, lon = _coordinate(form.get("lat"), "lat"), _coordinate(form.get("long"), "long")
        address = form.get("address_string") or None
        if (lat is None or lon is None) and not address:
            raise Refused(400, "a location is required: lat and long, or address_string")
        report = EventReport(
            category=category.code, description=form.get("description") or "",
            location=Location(lat=lat, lon=lon, address=address),
            reporter=Reporter(name=" ".join(p for p in (form.get("last_name"), form.get("first_name")) if p),
                              phone=form.get("phone") or ""),
            source="api", integration=integration.name, media_url=(form.get("media_url") or "").strip())
        known = {a["code"]: a for a in attributes_of(category, "en")}
        for key in form:
            match = _ATTRIBUTE.match(key)
            if key.startswith("attribute") and match is None:
                raise Refused(400, f"{key[:80]}: attributes are attribute[code] or attribute[code][]")
            if match is None:
                continue
            attr, values = match.group(1), [v for v in form.getall(key) if isinstance(v, str)]
            if attr not in known:
                raise Refused(400, f"attribute {attr[:64]}: not an attribute of {category.code}")
            allowed = {v["key"] for v in known[attr]["values"]}
            if len(values) != 1 or values[0] not in allowed:
                raise Refused(400, f"attribute {attr}: one of {', '.join(sorted(allowed))}")
            if attr == "severity":
                report.severity = int(values[0])
            elif attr == "needs_enforcement":
                report.needs_enforcement = values[0] == "true"
        return report


async def _posted_form(request: Request[Any, Any, Any]) -> Any:
    """The posted form. A form-encoded body is read as UTF-8 here, percent-escapes and raw bytes alike
    (``curl -d description=路口垃圾`` sends the raw bytes, which a generic parser reads as Latin-1);
    a body that is not UTF-8 is refused (400). Other bodies (multipart) go to the framework."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return await request.form()
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise Refused(400, "the form is not UTF-8") from None
    return MultiDict(pairs)


class _Form:
    """A posted form's text fields (a file where a text belongs counts as nothing)."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def get(self, name: str) -> str | None:
        value = self.data.get(name)
        return value if isinstance(value, str) else None

    def getall(self, name: str) -> list[Any]:
        return list(self.data.getall(name))

    def __iter__(self) -> Any:
        return iter(list(self.data.keys()))


def _coordinate(raw: Any, field: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise Refused(400, f"{field}: a number (WGS84 degrees)") from None


OPEN311_CONTROLLERS = [Open311Api]
