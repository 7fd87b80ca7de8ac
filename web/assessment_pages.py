"""Assessment pages (issue 11, item 3): the scores of the month (``/assessment``), inspection entries
(督查记录, ``/assessment/inspections`` and ``/api/inspections``), the cadres' ratings
(``/assessment/cadres``), and the schemes' administration (``/admin/schemes``).

Scope: a supervisor sees and enters only for the grids of their scope (a street supervisor their
street's); the scores page lists the rows of their scope. Cadres are rated by the supervisor of the
street they are stationed at (side ``street``) and by their home department's staff (side
``department``); the city supervisor and the administrator may rate either side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_201_CREATED

from assessment.entries import FieldProblem, check_inspection, check_rating
from assessment.schemes import INDICATOR_KINDS, Band, Problem, Scheme
from assessment.scores import TABLES, Part, ScoreRow, ScoreSheet, period_scores
from rules.worktime import CITY_TZ
from store import models, queries
from store import photos as photo_store
from store import schemes as scheme_store
from store.org import OrgTree
from store.timeutil import utcnow
from web.access import admins, signed_in, supervisors
from web.auth import CurrentUser
from web.commands import CommandError
from web.context import AppContext
from web.errors import refusal
from web.i18n import language_of, translate
from web.labels import has_key
from web.photos import PhotoError, form_uploads, save_staff_photos
from wulian.scheme_admin import MAX_SCHEME_BYTES, check_content, store_checked


def today_local() -> date:
    """Today in the city (Asia/Shanghai)."""
    return datetime.now(CITY_TZ).date()


# ------------------------------------------------------------------ showing numbers


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def shown_value(part: Part) -> str:
    """A part's measured value as the page shows it: rates in percent, counts whole, scores with
    two decimals, "—" when nothing was measured."""
    if part.value is None:
        return "—"
    if part.indicator:
        kind = INDICATOR_KINDS.get(part.indicator, ("rate", ""))[0]
        return _pct(part.value) if kind == "rate" else (f"{part.value:g}" if kind == "count" else f"{part.value:.1f}")
    if part.note == "standard":
        return _pct(part.value)
    if part.note == "reports":
        return f"{part.value:g}"
    if part.note == "inspection":
        return f"{part.value:.1f}"
    return f"{part.value:.2f}"


def shown_points(part: Part, grid_duty: bool) -> str:
    """The points a part gave (a grid duty's: its achievement, in percent)."""
    if part.points is None:
        return "—"
    if grid_duty:
        return _pct(part.points)
    if part.note == "rule":
        return f"{part.points:+.2f}" if part.points else "0"
    return f"{part.points:.2f}"


def _band_name(lang: str, bands: list[Band], grade: str | None) -> str:
    if grade is None:
        return "—"
    band = next((b for b in bands if b.grade == grade), None)
    if band is None:
        return grade
    return band.name_zh if lang == "zh-CN" else band.name_en


def flag_text(lang: str, scheme: Scheme, flag: str) -> str:
    """A score's flag in ``lang``: the catalogue's (``assessment.flag.<flag>``), or the name of the
    scheme's rule that sets it."""
    key = f"assessment.flag.{flag}"
    if has_key(key):
        return translate(lang, key)
    rule = next((r for r in scheme.grid.rules if r.flag == flag), None)
    if rule is not None:
        return rule.name_zh if lang == "zh-CN" else rule.name_en
    return translate(lang, "assessment.flag.other")


def indicator_label(lang: str, code: str) -> str:
    """An indicator's name in ``lang`` (the core's definitions)."""
    from assessment.indicators import BY_CODE

    found = BY_CODE.get(code)
    if found is None:
        return code
    return found.name_zh if lang == "zh-CN" else found.name_en


def drill_href(part: Part, day_from: date, day_to: date) -> str | None:
    """The list of events or tasks behind an indicator-based number (the core's drill-down)."""
    if not part.indicator or not part.unit or part.value is None:
        return None
    from assessment.indicators import BY_CODE
    from web.stats import drill_url

    found = BY_CODE.get(part.indicator)
    if found is None:
        return None
    return drill_url(part.unit, day_from, day_to, found.numerator)


@dataclass
class ShownPart:
    name: str
    value: str
    points: str
    weight: str
    href: str | None


@dataclass
class ShownRow:
    subject: str
    name: str
    score: str
    grade: str
    flags: list[str]
    parts: list[ShownPart]
    extra: str = ""  # the street's service index


def _part_name(lang: str, part: Part) -> str:
    return part.name_zh if lang == "zh-CN" else part.name_en


def shown_table(lang: str, scheme: Scheme, sheet: ScoreSheet, table: str, rows: list[ScoreRow]) -> list[ShownRow]:
    """A table's rows ready for the page."""
    bands = {"departments": scheme.composite.bands, "streets": scheme.composite.bands,
             "grids": scheme.grid.bands, "communities": scheme.fortress.bands,
             "party_members": scheme.pioneer.bands, "cadres": []}[table]
    shown: list[ShownRow] = []
    for row in rows:
        parts = []
        extra = ""
        for part in row.parts:
            if part.code == "service_index":
                extra = "—" if part.value is None else f"{part.value:.2f}"
                continue
            duty = table == "grids" and part.note not in ("standard", "rule")
            parts.append(ShownPart(_part_name(lang, part), shown_value(part), shown_points(part, duty),
                                   "" if part.weight is None else f"{part.weight:g}",
                                   drill_href(part, sheet.day_from, sheet.day_to)))
        name = row.name_zh if lang == "zh-CN" else row.name_en
        grade = _band_name(lang, bands, row.grade)
        if table == "communities" and row.grade:
            grade = "★" * int(row.grade) + f" {grade}"
        shown.append(ShownRow(row.subject, name, "—" if row.score is None else f"{row.score:.2f}", grade,
                              [flag_text(lang, scheme, f) for f in row.flags], parts, extra))
    return shown


def _period(period: str | None, today: date) -> tuple[date, date, bool] | None:
    """``YYYY-MM`` (a month; the current one up to today), ``YYYY`` (a year: with the cadres), or
    nothing (this month so far). None when it is none of these."""
    if not period:
        return today.replace(day=1), today, False
    try:
        if len(period) == 4 and period.isdigit():
            year = int(period)
            if not 2000 <= year <= today.year:
                return None
            return date(year, 1, 1), min(today, date(year, 12, 31)), True
        first = datetime.strptime(period, "%Y-%m").date()  # noqa: DTZ007 - a calendar month, no time
    except ValueError:
        return None
    if first > today or first.year < 2000:
        return None
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, min(today, following - timedelta(days=1)), False


# ------------------------------------------------------------------ scope


def _scoped(user: CurrentUser, table: str, row: ScoreRow, people: Mapping[str, models.User]) -> bool:
    if table in ("party_members", "cadres"):
        person = people.get(row.subject)
        return person is not None and user.sees(person.unit, person.stationed_street)
    return user.sees(row.subject)


def scope_grids(user: CurrentUser, org: OrgTree) -> list[models.Unit]:
    """The grids a supervisor may inspect: those of their scope."""
    return sorted((u for u in org.units.values() if u.kind == "grid" and u.code in user.scope), key=lambda u: u.code)


def rateable(user: CurrentUser, org: OrgTree, cadres: list[models.User]) -> dict[str, list[str]]:
    """The cadres ``user`` may rate, each with the sides they rate for."""
    found: dict[str, list[str]] = {}
    street = org.street_of(user.unit) if user.role == "street_supervisor" else None
    for cadre in cadres:
        if user.role in ("city_supervisor", "admin"):
            found[cadre.username] = ["street", "department"]
        elif street and cadre.stationed_street == street:
            found[cadre.username] = ["street"]
        elif user.role == "department_staff" and cadre.unit == user.unit:
            found[cadre.username] = ["department"]
    return found


# ------------------------------------------------------------------ problems in the page's language


def problem_texts(lang: str, problems: list[FieldProblem]) -> list[str]:
    """Each refused field in ``lang``: "<field>: <what>"."""
    return [translate(lang, "entry.problem", field=translate(lang, f"entry.field.{p.field}"),
                      what=translate(lang, p.key, **p.values)) for p in problems]


def scheme_problem(lang: str, problem: Problem) -> dict[str, str]:
    """One problem of a scheme check for the page: where (item, or the scheme), the field's place in
    the file, and what, in ``lang``."""
    if problem.line is not None:
        where = translate(lang, "schemecheck.where.line", line=problem.line, column=problem.column or 0)
    elif problem.item:
        where = translate(lang, "schemecheck.where.item")  # and the item's code, shown as code
    elif problem.field:
        where = translate(lang, "schemecheck.where.scheme")
    else:
        where = translate(lang, "schemecheck.where.file")
    key = f"schemecheck.{problem.code}"
    if not has_key(key):
        key = f"invalid.{problem.code}"  # pydantic's own error types, shared with the list check
    params = dict(problem.params)
    if params.get("indicator") in INDICATOR_KINDS:  # a known indicator by its name
        params["indicator"] = indicator_label(lang, str(params["indicator"]))
    # The values the file may hold are codes of the file: shown apart, as code, in every language.
    allowed = str(params.pop("expected", "") if problem.code == "literal_error" else params.get("allowed", ""))
    if problem.code == "literal_error":
        key = "schemecheck.literal"
    if has_key(key):
        try:
            what = translate(lang, key, **params)
        except (KeyError, IndexError):
            what = translate(lang, "invalid.invalid")
    else:
        what = problem.message if lang == "en" else translate(lang, "invalid.invalid")
    return {"where": where, "item": problem.item or "", "field": problem.field or "", "what": what,
            "allowed": allowed}


# ------------------------------------------------------------------ the pages


class AssessmentPages(Controller):
    """Scores, inspection entries and cadre ratings."""

    path = "/assessment"

    @get("/", guards=[supervisors])
    async def scores(self, ctx: AppContext, user: CurrentUser, request: Request,
                     period: str | None = None) -> Response[Any]:
        """The scores of the month so far (``?period=YYYY-MM`` another month, ``YYYY`` a year with the
        cadres), one table per kind, within the supervisor's scope; each indicator-based number links
        to the events behind it."""
        lang = language_of(request.cookies)
        today = today_local()
        found = _period(period, today)
        if found is None:
            raise CommandError.keyed(400, "assessment.err.period")
        day_from, day_to, annual = found
        scheme = await scheme_store.active_scheme(ctx.db)
        org = await ctx.org()
        sheet = await period_scores(ctx.db, org, scheme, day_from, day_to, annual=annual)
        people = {u.username: u for u in await queries.users(ctx.db)}
        tables = []
        for name in TABLES:
            if name == "cadres" and not annual:
                continue
            rows = [r for r in sheet.tables.get(name, []) if _scoped(user, name, r, people)]
            tables.append({"name": name, "rows": shown_table(lang, scheme, sheet, name, rows)})
        return Template("assessment.html", context={
            "user": user, "tables": tables, "scheme": scheme, "day_from": day_from, "day_to": day_to,
            "annual": annual, "period": period or "", "this_month": today.strftime("%Y-%m"),
            "this_year": str(today.year)})

    async def _inspections_context(self, ctx: AppContext, user: CurrentUser) -> dict[str, Any]:
        org = await ctx.org()
        scheme = await scheme_store.active_scheme(ctx.db)
        grids = scope_grids(user, org)
        today = today_local()
        recent = await scheme_store.inspections(ctx.db, [g.code for g in grids], date(today.year - 1, 1, 1), today,
                                                limit=50)
        return {"user": user, "grids": grids, "org": org.units, "scheme": scheme,
                "duties": [d for d in scheme.grid.duties if d.measure.kind == "inspection"],
                "duty_of": {d.code: d for d in scheme.grid.duties}, "entries": recent, "today": today.isoformat(),
                "errors": [], "form": {}, "bad": []}

    @get("/inspections", guards=[supervisors])
    async def inspections(self, ctx: AppContext, user: CurrentUser, request: Request,
                          msg: str | None = None) -> Response[Any]:
        """The inspection entries of the supervisor's grids, and the form to add one."""
        context = await self._inspections_context(ctx, user)
        context["msg"] = msg if msg == "assessment.msg.inspection_saved" else None
        return Template("assessment_inspections.html", context=context)

    @post("/inspections", guards=[supervisors], status_code=303)
    async def add_inspection(self, ctx: AppContext, user: CurrentUser, request: Request) -> Response[Any]:
        """Add an inspection entry (multipart: the fields and an optional evidence photo); the form
        comes back filled in with the reasons (400) when refused."""
        form = await request.form()
        raw = {k: form.get(k) for k in ("grid", "duty", "day", "finding", "score")}
        lang = language_of(request.cookies)
        try:
            uploads = form_uploads(form, "photo")
            if uploads:
                raw["photo_id"] = (await save_staff_photos(ctx, request, user, uploads[:1], 1))[0]
            await add_checked_inspection(ctx, user, raw)
        except (EntryRefused, PhotoError) as exc:
            context = await self._inspections_context(ctx, user)
            if isinstance(exc, PhotoError):  # the photo's own reason (not a photo, too large, ...)
                errors, bad = [translate(lang, "entry.problem", field=translate(lang, "entry.field.photo_id"),
                                         what=exc.message(lang))], ["photo_id"]
            else:
                errors, bad = problem_texts(lang, exc.problems), [p.field for p in exc.problems]
            context.update(errors=errors, form=raw, bad=bad)
            return Template("assessment_inspections.html", context=context, status_code=400)
        return Redirect("/assessment/inspections?msg=assessment.msg.inspection_saved", status_code=303)

    async def _cadres_context(self, ctx: AppContext, user: CurrentUser) -> dict[str, Any]:
        org = await ctx.org()
        cadres = [u for u in await queries.users(ctx.db) if u.role == "dispatched_cadre" and u.active]
        allowed = rateable(user, org, cadres)
        if not allowed:
            raise refusal(PermissionDeniedException, "assessment.err.no_cadres")
        today = today_local()
        ratings = {(r.username, r.side): r for r in await scheme_store.cadre_ratings(ctx.db, today.year)}
        rows = [{"cadre": c, "sides": allowed[c.username],
                 "ratings": {side: ratings.get((c.username, side)) for side in ("street", "department")}}
                for c in sorted(cadres, key=lambda c: c.username) if c.username in allowed]
        return {"user": user, "rows": rows, "year": today.year, "org": org.units, "errors": [], "form": {},
                "bad": []}

    @get("/cadres", guards=[signed_in])
    async def cadres(self, ctx: AppContext, user: CurrentUser, request: Request,
                     msg: str | None = None) -> Response[Any]:
        """The dispatched cadres this user rates (their street's, their department's) and their
        ratings of the year."""
        context = await self._cadres_context(ctx, user)
        context["msg"] = msg if msg == "assessment.msg.rating_saved" else None
        return Template("assessment_cadres.html", context=context)

    @post("/cadres", guards=[signed_in], status_code=303)
    async def rate(self, ctx: AppContext, user: CurrentUser, request: Request,
                   data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response[Any]:
        """Rate a cadre for the year (0–100); a second rating replaces the first (audited)."""
        context = await self._cadres_context(ctx, user)  # 403 for someone who rates nobody
        org = await ctx.org()
        cadres = [row["cadre"] for row in context["rows"]]
        allowed = rateable(user, org, cadres)
        username = str(data.get("username", ""))
        sides = allowed.get(username, [])
        draft, problems = check_rating(data, list(allowed), sides or ["street", "department"], today_local())
        if draft is not None and draft.side not in sides:
            problems = [FieldProblem("side", "side", {"side": draft.side})]
            draft = None
        if draft is None:
            context.update(errors=problem_texts(language_of(request.cookies), problems),
                           form=dict(data), bad=[p.field for p in problems])
            return Template("assessment_cadres.html", context=context, status_code=400)
        cadre = next(c for c in cadres if c.username == draft.username)
        unit = (cadre.stationed_street or "") if draft.side == "street" else cadre.unit
        await scheme_store.rate_cadre(ctx.db, username=draft.username, year=draft.year, side=draft.side, unit=unit,
                                      score=draft.score, comment=draft.comment, actor=user.username)
        return Redirect("/assessment/cadres?msg=assessment.msg.rating_saved", status_code=303)


class EntryRefused(Exception):
    """An inspection entry with problems (400), each naming its field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(p.code for p in problems))
        self.problems = problems


async def add_checked_inspection(ctx: AppContext, user: CurrentUser, raw: Mapping[str, Any]) -> models.InspectionEntry:
    """Check and keep an inspection entry for the page and the API alike: a grid outside the
    supervisor's scope is refused (403) before anything else; then the fields (400, every problem),
    and the evidence photo must be the inspector's own upload, not yet attached."""
    org = await ctx.org()
    grid = raw.get("grid")
    if isinstance(grid, str) and grid.strip() in org.units and not user.sees(grid.strip()):
        raise refusal(PermissionDeniedException, "assessment.err.grid_scope", grid=grid.strip())
    scheme_row = await scheme_store.ensure_default(ctx.db)
    scheme = scheme_store.parsed(scheme_row)
    grids = {u.code for u in org.units.values() if u.kind == "grid"}
    draft, problems = check_inspection(raw, scheme, grids, today_local())
    photo_id = raw.get("photo_id") or None
    if photo_id is not None:
        photo = await photo_store.get(ctx.db, photo_id) if photo_store.is_photo_id(photo_id) else None
        if photo is None or photo.uploaded_by != user.username or photo.event_id is not None:
            problems.append(FieldProblem("photo_id", "photo_unusable"))
    if draft is None or problems:
        raise EntryRefused(problems)
    entry = models.InspectionEntry(grid=draft.grid, duty=draft.duty, day=draft.day, finding=draft.finding,
                                   score=draft.score, photo_id=draft.photo_id, scheme_version=scheme_row.version,
                                   inspector=user.username, inspector_unit=user.unit,
                                   created_at=utcnow())
    return await scheme_store.add_inspection(ctx.db, entry)


# ------------------------------------------------------------------ the API


@dataclass
class InspectionIn:
    """Body of ``POST /api/inspections``: the grid, the duty (an inspection duty of the active scheme),
    the day (``YYYY-MM-DD``, default today), the finding, the score 0–100, and an evidence photo's id
    (from ``POST /api/photos``)."""

    grid: str
    duty: str
    finding: str
    score: float
    day: str | None = None
    photo_id: str | None = None


@dataclass
class InspectionOut:
    """An inspection entry."""

    id: int
    grid: str
    duty: str
    day: str
    finding: str
    score: float
    photo_id: str | None
    scheme_version: str
    inspector: str

    @classmethod
    def of(cls, entry: models.InspectionEntry) -> InspectionOut:
        return cls(entry.id or 0, entry.grid, entry.duty, entry.day.isoformat(), entry.finding, entry.score,
                   entry.photo_id, entry.scheme_version, entry.inspector)


class InspectionApi(Controller):
    """Inspection entries for supervisors, within their scope."""

    path = "/api/inspections"
    guards = [supervisors]

    @get("/")
    async def list_entries(self, ctx: AppContext, user: CurrentUser, grid: str | None = None) -> list[InspectionOut]:
        """The entries of the supervisor's grids (``grid``: one of them) since January of last year,
        newest first (at most 500)."""
        org = await ctx.org()
        grids = [g.code for g in scope_grids(user, org)]
        if grid is not None:
            if grid in org.units and not user.sees(grid):
                raise refusal(PermissionDeniedException, "assessment.err.grid_scope", grid=grid)
            grids = [g for g in grids if g == grid]
        today = today_local()
        rows = await scheme_store.inspections(ctx.db, grids, date(today.year - 1, 1, 1), today)
        return [InspectionOut.of(r) for r in rows]

    @post("/", status_code=HTTP_201_CREATED)
    async def add(self, ctx: AppContext, user: CurrentUser, data: InspectionIn) -> InspectionOut:
        """Add an inspection entry (a grid of the supervisor's scope: else 403; problems: 400 naming
        the first field, every problem in ``extra``)."""
        raw = {"grid": data.grid, "duty": data.duty, "finding": data.finding, "score": data.score,
               "day": data.day, "photo_id": data.photo_id}
        try:
            entry = await add_checked_inspection(ctx, user, raw)
        except EntryRefused as exc:
            first = exc.problems[0]  # the API names the first problem by its field, code entry_err.<code>
            detail = "; ".join(f"{p.field}: {translate('en', p.key, **p.values)}" for p in exc.problems)
            raise CommandError(400, detail, first.key, **first.values) from None
        return InspectionOut.of(entry)


# ------------------------------------------------------------------ administration


class AdminSchemesPages(Controller):
    """Assessment schemes, for administrators: versions, upload with check, activation."""

    path = "/admin/schemes"
    guards = [admins]

    @get("/")
    async def overview(self, ctx: AppContext, user: CurrentUser, request: Request, msg: str | None = None,
                       error: str | None = None) -> Response[Any]:
        """The active scheme (its composite terms, grid duties, standards and rules, indices), the
        stored versions with their activation, and the upload form."""
        active = await scheme_store.ensure_default(ctx.db)
        versions = await scheme_store.list_versions(ctx.db)
        lang = language_of(request.cookies)
        return Template("admin_schemes.html", context={
            "user": user, "versions": versions, "active": active, "scheme": scheme_store.parsed(active),
            "msg": msg if msg == "assessment.msg.scheme_activated" else None,
            "error": translate(lang, error) if error == "assessment.err.unknown_version" else None,
            "indicator_label": lambda code: indicator_label(lang, code)})

    @post("/upload", status_code=200)
    async def upload(self, ctx: AppContext, user: CurrentUser, request: Request,
                     data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]) -> Response[Any]:
        """Check an uploaded scheme; when valid store it (inactive) to be activated; else every
        problem with its place (400), nothing stored."""
        upload = data.get("file")
        lang = language_of(request.cookies)
        if not isinstance(upload, UploadFile):
            problems = [Problem("file", "no file", "choose_file")]
            result = None
        else:
            result = check_content(await upload.read(MAX_SCHEME_BYTES + 1))
            problems = result.problems
        context: dict[str, Any] = {"user": user, "filename": upload.filename if isinstance(upload, UploadFile) else "",
                                   "problems": [scheme_problem(lang, p) for p in problems], "stored": None}
        if result is not None and result.parsed is not None:
            try:
                context["stored"] = await store_checked(ctx.db, result, user.username, now=False)
            except ValueError:
                context["problems"] = [scheme_problem(lang, Problem(
                    "version", "exists", "version_exists", {"version": result.parsed.version}, field="version"))]
        status = 200 if context["stored"] is not None else 400
        return Template("admin_schemes_check.html", context=context, status_code=status)

    @post("/{version:str}/activate", status_code=303)
    async def activate(self, ctx: AppContext, user: CurrentUser, version: str) -> Redirect:
        """Activate a stored version (audited); scores computed from now on use it."""
        try:
            await scheme_store.activate_stored(ctx.db, version, user.username)
        except LookupError:
            return Redirect("/admin/schemes?error=assessment.err.unknown_version", status_code=303)
        return Redirect("/admin/schemes?msg=assessment.msg.scheme_activated", status_code=303)


async def inspection_photo_visible(ctx: AppContext, user: CurrentUser, owner: str | None) -> bool | None:
    """Whether ``user`` may see a photo attached to an inspection entry (the entry's grid in their
    scope); None when the photo belongs to no inspection entry."""
    entry_id = scheme_store.inspection_of_photo(owner)
    if entry_id is None:
        return None
    entry = await scheme_store.get_inspection(ctx.db, entry_id)
    if entry is None:
        raise refusal(NotFoundException, "error.photo_missing")
    return user.sees(entry.grid)


ASSESSMENT_CONTROLLERS = [AssessmentPages, InspectionApi, AdminSchemesPages]
