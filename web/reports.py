"""The report pages (月度、年度考核报告): ``/reports`` (the periods with a report) and ``/reports/<period>``
(the units of one level ranked by the chosen indicator or score, the red list 红榜 of the best five and
the black list 黑榜 of the worst five, the change from the previous period, an overview of the scope's
own figures), with CSV and XLSX exports of every table, and the recompute form.

Everything shown is read from a stored snapshot (``store/reports.py``), never computed on the page:
a published report does not change when later data arrives. A recompute (city supervisors and
administrators: the snapshot is the whole city's) starts a PeriodReport run that stores the next
revision, audited; earlier revisions stay readable (``?revision=``).

Scope: supervisors and administrators; a street supervisor sees their street's units only (ranked
among themselves), the city-wide roles every unit.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException, PermissionDeniedException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect, Template
from temporalio.client import WorkflowFailureError

from store import models, reports
from web.access import current_user, supervisors
from web.auth import CurrentUser
from web.context import AppContext
from web.errors import refusal
from web.exports import TIME_ZONE_NAME, Sheet, csv_response, local_time, xlsx_book
from web.i18n import language_of, translate
from web.page_forms import Form
from workflows.period_report import (
    MONTH,
    BadPeriod,
    Period,
    PeriodReport,
    ReportRequest,
    has_ended,
    parse_period,
    previous_period,
)
from workflows.policy import CITY_WIDE_ROLES

#: The levels a report ranks, as the query's ``level`` (and the score tables' names) → the unit kind.
LEVELS = {"streets": "street", "communities": "community", "grids": "grid", "departments": "department"}
#: The scheme's tables of people (a party member's pioneer index, a dispatched cadre's annual score):
#: ranked by their score, shown to the city-wide roles (a person's row names no unit to scope it by).
PEOPLE = ("party_members", "cadres")
#: ``by=score``: rank by the scheme's score of the level (when the snapshot has one).
SCORE = "score"
#: The red and black lists: at most this many units each, never the same unit on both.
LIST_SIZE = 5
#: Seconds the recompute form waits for its run before it answers "still running".
RECOMPUTE_WAIT = 60.0
#: The longest reason of a recompute (the snapshot and its audit entry keep it).
MAX_REASON = 500
#: Messages the pages show after a redirect (only their own).
MESSAGES = ("reports.msg.recomputed", "reports.msg.unchanged", "reports.msg.running")


async def city_wide(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard (after ``supervisors``): a city supervisor or an administrator."""
    user = await current_user(connection)
    if user is None or user.role not in CITY_WIDE_ROLES:
        raise refusal(PermissionDeniedException, "reports.err.city_only")


# ------------------------------------------------------------------ what a report shows


@dataclass(frozen=True)
class Measure:
    """What a ranking can be by: an indicator (from the catalogue) or the scheme's score."""

    code: str
    name_zh: str
    name_en: str
    kind: str  # rate | count | average | score
    better: str  # higher | lower
    numerator: str | None = None  # the counters behind the numbers (drill-down links)
    denominator: str | None = None

    def name(self, lang: str) -> str:
        """The name in ``lang``."""
        return self.name_en if lang == "en" else self.name_zh


def measures(codes: Sequence[str]) -> dict[str, Measure]:
    """The indicators of a snapshot (its codes), described by the indicator catalogue."""
    from assessment.indicators import BY_CODE

    found = {}
    for code in codes:
        d = BY_CODE.get(code)
        found[code] = (Measure(code, d.name_zh, d.name_en, d.kind, d.better, d.numerator, d.denominator)
                       if d is not None else Measure(code, code, code, "count", "higher"))
    return found


SCORE_MEASURE = Measure(SCORE, "综合得分", "Score", "score", "higher")


def shown(value: float | None, kind: str) -> str:
    """A value as the pages show it: rates in percent, counts whole, hours and scores to a tenth; ``—``
    when there is none (no denominator)."""
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "count":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{value:.1f}"


def exported(value: float | None, kind: str) -> float | None:
    """A value as the exports write it: rates in percent (2 decimals), the rest as they are."""
    if value is None:
        return None
    return round(value * 100, 2) if kind == "rate" else value


def change_shown(delta: float | None, kind: str, lang: str) -> str:
    """The change from the previous period: rates in percentage points."""
    if delta is None:
        return "—"
    if kind == "rate":
        return f"{delta * 100:+.1f} " + translate(lang, "reports.points")
    if kind == "count" and float(delta).is_integer():
        return f"{delta:+,.0f}"
    return f"{delta:+.1f}"


@dataclass
class Ranked:
    """One unit of a ranking."""

    code: str
    name: str
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    previous: float | None = None
    change: float | None = None
    rank: int | None = None
    grade: str | None = None
    improved: bool | None = None  # the change is for the better (None: no change, or unknown)


@dataclass
class ReportView:
    """Everything a report page shows and its exports write."""

    snapshot: models.ReportSnapshot
    period: Period
    previous: models.ReportSnapshot | None
    lang: str
    level: str
    levels: list[str]
    measure: Measure
    measures: dict[str, Measure]
    top: dict[str, Any] | None  # the scope's own unit (the city, or the supervisor's street)
    overview: list[tuple[Measure, dict[str, Any], dict[str, Any] | None, float | None]] = field(default_factory=list)
    ranking: list[Ranked] = field(default_factory=list)
    red: list[Ranked] = field(default_factory=list)
    black: list[Ranked] = field(default_factory=list)
    has_scores: bool = False

    def unit_name(self, unit: dict[str, Any]) -> str:
        """A snapshot unit's name in the page's language."""
        return str(unit.get("name_en") if self.lang == "en" else unit.get("name_zh")) or str(unit["code"])


def _change(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else now - before


def _improved(delta: float | None, better: str) -> bool | None:
    if not delta:
        return None
    return delta > 0 if better == "higher" else delta < 0


def _sorted(rows: list[Ranked], better: str) -> list[Ranked]:
    """Best first (units without a value last, by code); ranks 1, 2, ... (equal values share one)."""
    valued = [r for r in rows if r.value is not None]
    valued.sort(key=lambda r: ((-r.value if better == "higher" else r.value), r.code))  # type: ignore[operator]
    rank, last = 0, None
    for position, row in enumerate(valued, start=1):
        if row.value != last:
            rank, last = position, row.value
        row.rank = rank
    return valued + sorted((r for r in rows if r.value is None), key=lambda r: r.code)


def red_and_black(ranked: list[Ranked]) -> tuple[list[Ranked], list[Ranked]]:
    """The red list (best first) and the black list (worst first) of a ranking: up to
    :data:`LIST_SIZE` each, and at most half of the ranked units each, so no unit is on both."""
    valued = [r for r in ranked if r.value is not None]
    size = min(LIST_SIZE, len(valued) // 2)
    return valued[:size], list(reversed(valued[len(valued) - size:])) if size else []


def _scope_units(data: dict[str, Any], user: CurrentUser) -> list[dict[str, Any]]:
    return [u for u in data.get("units", []) if user.sees(u.get("code"))]


def _top(units: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The scope's own unit: the city for city-wide roles, the street for a street supervisor."""
    codes = {u["code"] for u in units}
    for kind in ("city", "street", "community", "department", "grid"):
        for unit in units:
            if unit.get("kind") == kind and unit.get("parent") not in codes:
                return unit
    return None


def levels_of(data: dict[str, Any], user: CurrentUser) -> list[str]:
    """The levels with units in the user's scope (and, for the city-wide roles, the scheme's tables of
    people that have rows)."""
    kinds = {u.get("kind") for u in _scope_units(data, user)}
    levels = [level for level, kind in LEVELS.items() if kind in kinds]
    if user.role in CITY_WIDE_ROLES:
        levels += [table for table in PEOPLE if (data.get("scores") or {}).get(table)]
    return levels


def build_view(snapshot: models.ReportSnapshot, previous: models.ReportSnapshot | None, user: CurrentUser,
               lang: str, level: str | None, by: str | None) -> ReportView:
    """The report as ``user`` sees it: 400 (keyed) for a level or a measure the report does not have."""
    data = snapshot.data
    units = _scope_units(data, user)
    levels = levels_of(data, user)
    if level is None:  # the first level where units are compared (a street supervisor: the communities)
        counts = {lv: sum(1 for u in units if u.get("kind") == LEVELS.get(lv)) for lv in levels}
        level = next((lv for lv in levels if counts[lv] > 1), levels[0] if levels else next(iter(LEVELS)))
    elif level not in levels:
        raise refusal(ValidationException, "reports.err.level")
    found = measures(data.get("indicators", []))
    scores = (data.get("scores") or {}).get(level) or []
    if by is None or by == "" or (level in PEOPLE and by in found):  # people are ranked by their score
        by = SCORE if level in PEOPLE else next(iter(found), SCORE)
    if by == SCORE:
        if not scores:
            raise refusal(ValidationException, "reports.err.by")
        measure = SCORE_MEASURE
    elif by in found and level not in PEOPLE:
        measure = found[by]
    else:
        raise refusal(ValidationException, "reports.err.by")
    before = {u["code"]: u for u in (previous.data.get("units", []) if previous else [])}
    before_scores = {r.get("subject"): r for r in ((previous.data.get("scores") or {}).get(level) or [])} \
        if previous else {}
    view = ReportView(snapshot=snapshot, period=parse_period(snapshot.period), previous=previous, lang=lang,
                      level=level, levels=levels, measure=measure, measures=found, top=_top(units),
                      has_scores=bool(scores))
    if view.top is not None:
        old = before.get(view.top["code"])
        for m in found.values():
            now = view.top.get("values", {}).get(m.code) or {}
            then = (old or {}).get("values", {}).get(m.code) if old else None
            view.overview.append((m, now, then, _change(now.get("value"), (then or {}).get("value"))))
    rows: list[Ranked] = []
    if measure.code == SCORE:
        names = {u["code"]: view.unit_name(u) for u in units}
        if level in PEOPLE:  # the city-wide roles only (levels_of)
            names = {r.get("subject"): str(r.get("name_en") if lang == "en" else r.get("name_zh")) for r in scores}
        for row in scores:
            subject = row.get("subject")
            if subject not in names:
                continue
            then = (before_scores.get(subject) or {}).get("score")
            delta = _change(row.get("score"), then)
            rows.append(Ranked(subject, names[subject], row.get("score"), previous=then, change=delta,
                               grade=row.get("grade"), improved=_improved(delta, "higher")))
    else:
        for unit in units:
            if unit.get("kind") != LEVELS[level]:
                continue
            value = unit.get("values", {}).get(measure.code) or {}
            then = ((before.get(unit["code"]) or {}).get("values", {}).get(measure.code) or {}).get("value")
            delta = _change(value.get("value"), then)
            rows.append(Ranked(unit["code"], view.unit_name(unit), value.get("value"), value.get("numerator"),
                               value.get("denominator"), then, delta, improved=_improved(delta, measure.better)))
    view.ranking = _sorted(rows, measure.better)
    view.red, view.black = red_and_black(view.ranking)
    return view


# ------------------------------------------------------------------ exports


TABLES = ("overview", "ranking", "red", "black")


def _ranking_header(view: ReportView) -> list[str]:
    lang, m = view.lang, view.measure
    unit = translate(lang, "reports.col.percent") if m.kind == "rate" else ""
    person = view.level in PEOPLE
    header = [translate(lang, "reports.col.rank"),
              translate(lang, "reports.col.username" if person else "reports.col.code"),
              translate(lang, "reports.col.person" if person else "reports.col.unit"), m.name(lang) + unit]
    if m.code == SCORE:
        header.append(translate(lang, "reports.col.grade"))
    else:
        header += [translate(lang, "reports.col.numerator"), translate(lang, "reports.col.denominator")]
    header += [translate(lang, "reports.col.previous") + unit, translate(lang, "reports.col.change") + unit]
    return header


def _ranking_rows(view: ReportView, rows: list[Ranked]) -> list[list[Any]]:
    kind = view.measure.kind
    out = []
    for r in rows:
        line: list[Any] = [r.rank, r.code, r.name, exported(r.value, kind)]
        line += [r.grade] if view.measure.code == SCORE else [r.numerator, r.denominator]
        line += [exported(r.previous, kind), exported(r.change, kind)]
        out.append(line)
    return out


def _overview_table(view: ReportView) -> tuple[list[str], list[list[Any]]]:
    lang = view.lang
    header = [translate(lang, "reports.col.indicator_code"), translate(lang, "reports.col.indicator"),
              translate(lang, "reports.col.value"), translate(lang, "reports.col.numerator"),
              translate(lang, "reports.col.denominator"), translate(lang, "reports.col.previous"),
              translate(lang, "reports.col.change")]
    rows = []
    for m, now, then, delta in view.overview:
        suffix = " %" if m.kind == "rate" else ""
        rows.append([m.code, m.name(lang) + suffix, exported(now.get("value"), m.kind), now.get("numerator"),
                     now.get("denominator"), exported((then or {}).get("value"), m.kind), exported(delta, m.kind)])
    return header, rows


def export_table(view: ReportView, table: str) -> tuple[str, list[str], list[list[Any]]]:
    """One table of the report: its sheet title, header and rows."""
    lang = view.lang
    if table == "overview":
        header, rows = _overview_table(view)
        name = view.unit_name(view.top) if view.top else ""
        return f"{translate(lang, 'reports.table.overview')} {name}".strip(), header, rows
    chosen = {"ranking": view.ranking, "red": view.red, "black": view.black}[table]
    title = f"{translate(lang, 'reports.table.' + table)} {translate(lang, 'reports.level.' + view.level)}"
    return title, _ranking_header(view), _ranking_rows(view, chosen)


def _about(view: ReportView) -> list[list[Any]]:
    """The first rows of every file: which report, which revision, when it was computed."""
    lang, snap = view.lang, view.snapshot
    return [[translate(lang, "reports.col.period"), snap.period],
            [translate(lang, "reports.col.revision"), snap.revision],
            [translate(lang, "reports.col.computed_at", zone=TIME_ZONE_NAME), local_time(snap.computed_at)],
            [translate(lang, "reports.col.scheme"), snap.scheme_version or translate(lang, "reports.scheme.none")]]


# ------------------------------------------------------------------ pages


def _period_or_404(text: str) -> Period:
    try:
        return parse_period(text)
    except BadPeriod:
        raise refusal(NotFoundException, "reports.err.missing", period=text[:20]) from None


def _revision(request: Request) -> int | None:
    raw = request.query_params.get("revision")
    if raw in (None, ""):
        return None
    if not raw.isdigit() or not 0 < int(raw) < 1_000_000:
        raise refusal(ValidationException, "reports.err.revision")
    return int(raw)


async def _view(ctx: AppContext, user: CurrentUser, request: Request, period_text: str) -> ReportView:
    period = _period_or_404(period_text)
    snap = await reports.snapshot(ctx.db, period.code, _revision(request))
    if snap is None:
        raise refusal(NotFoundException, "reports.err.missing", period=period.code)
    previous = await reports.snapshot(ctx.db, previous_period(period).code)
    params = request.query_params
    return build_view(snap, previous, user, language_of(request.cookies), params.get("level") or None,
                      params.get("by") or None)


def drill_link(period: Period, unit: str, counter: str | None) -> str | None:
    """The list of the events or tasks behind a number (``web.stats``, from today's data: a snapshot
    keeps the numbers as computed, the list shows what is behind them now)."""
    if not counter:
        return None
    from web.stats import drill_url

    return drill_url(unit, period.first, period.last, counter)


def period_label(lang: str, code: str) -> str:
    """``2026年11月`` / ``2026-11``; ``2026年度`` / ``Year 2026``."""
    period = parse_period(code)
    key = "reports.period.month" if period.kind == MONTH else "reports.period.year"
    return translate(lang, key, year=period.first.year, month=period.first.month)


class RecomputeIn:
    """The recompute form, checked once: the period (``workflows.period_report.parse_period``, ended)
    and a reason of 1 to :data:`MAX_REASON` characters."""

    def __init__(self, period: Period, reason: str) -> None:
        self.period, self.reason = period, reason

    @classmethod
    def of(cls, form: dict[str, str], now: datetime) -> RecomputeIn:
        """The form's values, or a keyed 400 naming the problem."""
        try:
            period = parse_period(str(form.get("period") or ""))
        except BadPeriod as exc:
            raise refusal(ValidationException, f"reports.err.period_{exc.code}") from None
        if not has_ended(period, now):
            raise refusal(ValidationException, "reports.err.period_open", period=period.code)
        reason = str(form.get("reason") or "").strip()
        if not reason:
            raise refusal(ValidationException, "reports.err.reason")
        if len(reason) > MAX_REASON:
            raise refusal(ValidationException, "reports.err.reason_long", n=MAX_REASON)
        return cls(period, reason)


async def recompute(ctx: AppContext, user: CurrentUser, wanted: RecomputeIn) -> tuple[str, int | None]:
    """Start a recompute run and wait up to :data:`RECOMPUTE_WAIT` for it: the message to show and the
    revision it stored (None while it still runs)."""
    client = await ctx.temporal()
    handle = await client.start_workflow(
        PeriodReport.run,
        ReportRequest(period=wanted.period.code, recompute=True, actor=user.username, reason=wanted.reason),
        id=f"report-{wanted.period.code}-recompute-{uuid.uuid4().hex[:12]}",
        task_queue=ctx.settings.temporal_task_queue,
    )
    try:
        result = await asyncio.wait_for(handle.result(), RECOMPUTE_WAIT)
    except TimeoutError:
        return "reports.msg.running", None
    except WorkflowFailureError:
        raise refusal(ValidationException, "reports.err.failed", period=wanted.period.code) from None
    return ("reports.msg.recomputed" if result.created else "reports.msg.unchanged"), result.revision


class ReportPages(Controller):
    """The report pages and their exports, for supervisors and administrators."""

    guards = [supervisors]

    @get("/reports")
    async def index(self, ctx: AppContext, user: CurrentUser, request: Request) -> Response[Any]:
        """The periods with a report (newest first), each with its revision; the recompute form for
        city supervisors and administrators."""
        lang = language_of(request.cookies)
        rows = await reports.periods(ctx.db)
        msg = request.query_params.get("msg")
        return Template("reports.html", context={
            "user": user, "periods": rows, "labels": {r.period: period_label(lang, r.period) for r in rows},
            "may_recompute": user.role in CITY_WIDE_ROLES, "max_reason": MAX_REASON,
            "msg": msg if msg in MESSAGES else None,
        })

    @get("/reports/{period:str}")
    async def report(self, ctx: AppContext, user: CurrentUser, request: Request, period: str) -> Response[Any]:
        """One period's report: the scope's overview, the ranking of a level by an indicator or the
        score, the red and black lists, the change from the previous period; the revisions."""
        view = await _view(ctx, user, request, period)
        msg = request.query_params.get("msg")
        lang = view.lang
        return Template("report_period.html", context={
            "user": user, "view": view, "label": period_label(lang, view.snapshot.period),
            "previous_label": period_label(lang, previous_period(view.period).code),
            "revisions": await reports.revisions(ctx.db, view.snapshot.period),
            "shown": shown, "change_shown": change_shown, "score": SCORE, "levels": LEVELS, "people": PEOPLE,
            "drill": lambda unit, counter: drill_link(view.period, unit, counter),
            "may_recompute": user.role in CITY_WIDE_ROLES, "max_reason": MAX_REASON,
            "query": _query(view), "msg": msg if msg in MESSAGES else None,
        })

    @get("/reports/{period:str}/export.csv")
    async def export_csv(self, ctx: AppContext, user: CurrentUser, request: Request, period: str) -> Response[str]:
        """One table of the report as CSV (``table``: overview, ranking, red or black; UTF-8 with a byte
        order mark, times in Asia/Shanghai)."""
        view = await _view(ctx, user, request, period)
        table = request.query_params.get("table") or "ranking"
        if table not in TABLES:
            raise refusal(ValidationException, "reports.err.table")
        _, header, rows = export_table(view, table)
        name = f"report-{view.snapshot.period}-r{view.snapshot.revision}-{table}"
        if table != "overview":
            name += f"-{view.level}-{view.measure.code}"
        return csv_response(f"{name}.csv", header, rows, preface=[*_about(view), []])

    @get("/reports/{period:str}/export.xlsx")
    async def export_xlsx(self, ctx: AppContext, user: CurrentUser, request: Request, period: str) -> Response[bytes]:
        """Every table of the report (or the one named by ``table``) as an Excel workbook, a sheet each."""
        view = await _view(ctx, user, request, period)
        table = request.query_params.get("table") or ""
        if table and table not in TABLES:
            raise refusal(ValidationException, "reports.err.table")
        sheets = []
        for name in ([table] if table else TABLES):
            title, header, rows = export_table(view, name)
            sheets.append(Sheet(title, header, rows, preface=_about(view)))
        filename = f"report-{view.snapshot.period}-r{view.snapshot.revision}-{view.level}-{view.measure.code}.xlsx"
        return await xlsx_book(filename, sheets)

    @post("/reports/recompute", status_code=303, guards=[city_wide])
    async def recompute(self, ctx: AppContext, user: CurrentUser, request: Request, data: Form) -> Response[Any]:
        """Compute a period's report again (or for the first time): a new revision, audited with the
        reason; back to the report with what happened."""
        wanted = RecomputeIn.of(data, datetime.now(UTC))
        msg, revision = await recompute(ctx, user, wanted)
        where = f"/reports/{wanted.period.code}?msg={msg}"
        if revision is not None:
            where += f"&revision={revision}"
        elif msg == "reports.msg.running":
            where = f"/reports?msg={msg}"
        return Redirect(where, status_code=303)


def _query(view: ReportView) -> str:
    """The page's view as a query string (for the exports' links)."""
    return f"level={view.level}&by={view.measure.code}&revision={view.snapshot.revision}"


REPORT_CONTROLLERS = [ReportPages]
