"""Assessment schemes (考核方案) as validated data: how indicators become scores.

One scheme holds every way the platform scores units and people (issue 11, item 3):

- ``composite``: the score of a department and of a street from indicators with weights (default: the
  published Chengdu Jinniu formula) and the bands that give its grade (A–E);
- ``grid``: the grid assessment: duties (职责清单), each measured automatically from an indicator or the
  grid worker's own patrol reports, or by supervisors' inspection entries (督查记录); standards
  (考核标准) that weigh them into points; reward and punishment rules (奖惩办法) that add or deduct;
  bands that grade the result;
- ``own``: a person's own handling record (their handling tasks) as a score;
- ``pioneer`` (先锋指数, party members), ``fortress`` (堡垒指数, communities, stars by bands),
  ``service`` (服务指数, streets): indices, each a weighted mean of parts;
- ``cadres``: the dispatched cadres' annual score, a street part and a home-department part with
  their weights (70/30) and the excellent quota (20%).

:func:`check` reports every problem with its place (the item's code and the dotted field) instead of
stopping at the first, like :mod:`rules.responsibility_list`; a scheme with problems is never
activated. Scoring itself lives in :mod:`assessment.scores`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assessment.indicators import INDICATORS
from processes.definition import CREDIT_KINDS
from workflows.types import SOURCES

#: The scheme shipped with the platform.
DEFAULT_SCHEME_PATH = Path(__file__).parent / "data" / "scheme_default.json"

#: Indicator codes with their kind (``rate`` 0..1, ``count``, ``average`` hours) and which direction is
#: better: the core's definitions (``assessment.indicators``), which schemes may name.
INDICATOR_KINDS: dict[str, tuple[str, str]] = {d.code: (d.kind, d.better) for d in INDICATORS}
#: What a person's own handling record measures (their handling tasks: claimed, completed, on time).
PERSONAL_INDICATORS = ("handled_rate", "on_time_handled_rate")

Code = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
NameZh = Field(min_length=1, max_length=60)
NameEn = Field(min_length=1, max_length=160)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Band(_Strict):
    """A grade for scores at or above ``min`` (the bands are listed highest first; the last one's
    ``min`` is 0, so every score has a grade)."""

    grade: str = Field(min_length=1, max_length=12, pattern=r"^[A-Za-z0-9_]+$")
    min: float = Field(ge=0, le=1000)
    name_zh: str = NameZh
    name_en: str = NameEn


class Term(_Strict):
    """A weighted indicator: ``weight`` × value, or × (1 − value) when ``invert`` (a rate where lower
    is better: 返工率, 延期率, 超期待处置率)."""

    indicator: str
    weight: float = Field(gt=0, le=100)
    invert: bool = False


class Composite(_Strict):
    """The composite score of departments and streets: Σ weight × term, the weights summing to 100."""

    terms: list[Term] = Field(min_length=1)
    bands: list[Band] = Field(min_length=1)


class Measure(_Strict):
    """How a grid duty is measured, as an achievement from 0 to 1:

    - ``indicator``: the grid's indicator (a rate as it is, or 1 − rate when lower is better; with a
      ``target``, the share of the target reached); a count needs a monthly ``target`` (higher is
      better: count / target, at most 1; lower is better: 1 − count / target, down to 0 at the target);
    - ``reports``: events the grid reported itself from ``source`` (default ``grid_patrol``) against a
      monthly ``target``;
    - ``inspection``: the mean score (0–100) of the supervisors' inspection entries for the duty.
    """

    kind: Literal["indicator", "reports", "inspection"]
    indicator: str | None = None
    source: str | None = None
    target: float | None = Field(default=None, gt=0, le=100_000)


class Duty(_Strict):
    """One grid duty (职责), under one standard."""

    code: str = Code
    name_zh: str = NameZh
    name_en: str = NameEn
    standard: str
    measure: Measure


class Standard(_Strict):
    """An assessment standard (考核标准): its points are shared by its duties' achievements."""

    code: str = Code
    name_zh: str = NameZh
    name_en: str = NameEn
    points: float = Field(gt=0, le=100)


class RewardRule(_Strict):
    """A reward or punishment rule (奖惩办法), added to the grid's points:

    - ``threshold``: ``points`` when the grid's ``indicator`` compares with ``value`` by ``op``;
    - ``per_count``: ``points`` for each one of the ``indicator`` (a count), at most ``cap`` in total;
    - ``inspection_below``: ``points`` for each inspection entry scored below ``value``, at most ``cap``.

    Negative points punish. ``flag`` marks the grid (and its party members' pioneer index) when the
    rule applies.
    """

    code: str = Code
    name_zh: str = NameZh
    name_en: str = NameEn
    kind: Literal["threshold", "per_count", "inspection_below"]
    indicator: str | None = None
    op: Literal[">=", ">", "<=", "<"] | None = None
    value: float | None = Field(default=None, ge=0, le=100_000)
    points: float = Field(ge=-100, le=100)
    cap: float | None = Field(default=None, ge=-100, le=100)
    flag: str | None = Field(default=None, max_length=24, pattern=r"^[a-z][a-z0-9_]*$")


class GridAssessment(_Strict):
    """The grid assessment: duties, standards, reward and punishment rules, bands."""

    duties: list[Duty] = Field(min_length=1, max_length=200)
    standards: list[Standard] = Field(min_length=1, max_length=50)
    rules: list[RewardRule] = Field(default_factory=list, max_length=50)
    bands: list[Band] = Field(min_length=1)
    #: The achievement of a duty that nothing measured in the period (no denominator, no inspection).
    unmeasured: float = Field(default=1.0, ge=0, le=1)
    #: The grid's score is kept between 0 and this (rewards may lift it above the standards' 100).
    ceiling: float = Field(default=100, ge=1, le=1000)


PartSource = Literal["indicator", "composite", "grids", "grid", "own", "rating", "credits"]
PART_SOURCES: tuple[str, ...] = ("indicator", "composite", "grids", "grid", "own", "rating", "credits")


class IndexPart(_Strict):
    """One part of an index, scored 0–100 and weighed:

    - ``indicator``: 100 × the unit's rate (× (1 − rate) when ``invert``; with a ``target``, the share
      of the target reached);
    - ``composite``: the unit's composite score; ``grids``: the mean score of the grids below the unit;
    - ``grid``: a person's grid's score (the mean of the grids below their unit when it is no grid);
    - ``own``: the person's own handling record (``own``); ``rating``: the rating a cadre was given;
    - ``credits``: what the processes credited the person (or the community, the street) in the period,
      of kind ``credit`` (volunteer hours, pioneer points, proxy services, wishes fulfilled...), as the
      share reached of ``per_month`` a month (none at all: 0, not unmeasured: doing nothing counts,
      but an index with no other part measured is no index).
    """

    code: str = Code
    name_zh: str = NameZh
    name_en: str = NameEn
    weight: float = Field(gt=0, le=100)
    source: PartSource
    indicator: str | None = None
    invert: bool = False
    target: float | None = Field(default=None, gt=0, le=1)
    credit: str | None = None
    per_month: float | None = Field(default=None, gt=0, le=100_000)


class Index(_Strict):
    """An index: the weighted mean of its parts; a part with no value is left out and the others
    re-weighed (no part at all: no index). Optional bands grade it."""

    parts: list[IndexPart] = Field(min_length=1)
    bands: list[Band] = Field(default_factory=list)


class OwnRecord(_Strict):
    """A person's own handling record as a score: 100 × the weighted mean of their personal rates."""

    terms: list[Term] = Field(min_length=1)


class Cadres(_Strict):
    """Dispatched cadres (派驻干部): annual score = street part × ``street_weight`` + home-department part
    × ``department_weight`` (in %, summing to 100); the best ``excellent_share`` of them (rounded down:
    the quota is a maximum) are flagged excellent, if they reach ``excellent_min``. Cadres tied at the
    quota's edge are all left out of it and flagged ``quota_tie`` (the committee decides)."""

    street: Index
    department: Index
    street_weight: float = Field(gt=0, lt=100)
    department_weight: float = Field(gt=0, lt=100)
    excellent_share: float = Field(gt=0, le=1)
    excellent_min: float = Field(default=0, ge=0, le=100)


class Scheme(_Strict):
    """A whole assessment scheme version."""

    version: str = Field(min_length=1, max_length=40, pattern=r"^[\w.\-]+$")
    title_zh: str = Field(default="", max_length=100)
    title_en: str = Field(default="", max_length=200)
    composite: Composite
    grid: GridAssessment
    own: OwnRecord
    pioneer: Index
    fortress: Index
    service: Index
    cadres: Cadres


@dataclass(frozen=True)
class Problem:
    """One problem found in a scheme file, with its place: ``place`` and ``message`` in English (the
    CLI), and for pages the same as data: ``code`` (catalogue ``schemecheck.<code>``, else pydantic's
    ``invalid.<code>``) with ``params``; the place as ``item`` (a duty's, standard's, rule's or part's
    code, or ``#n``), ``field`` (the dotted path in the file) or ``line``/``column``."""

    place: str
    message: str
    code: str = ""
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    item: str | None = None
    field: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        return f"{self.place}: {self.message}"


class InvalidScheme(Exception):
    """A scheme that failed validation; carries every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:5]))
        self.problems = problems


#: Lists whose entries carry a code (the place names the code rather than the position).
_CODED = ("duties", "standards", "rules", "parts")


def _item_of(raw: Any, loc: tuple[Any, ...]) -> str | None:
    """The code of the innermost coded entry on the path ``loc`` (``D04``), or ``#n``."""
    node, item = raw, None
    for i, part in enumerate(loc):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            if i and loc[i - 1] in _CODED:
                entry = node[part]
                code = entry.get("code") if isinstance(entry, Mapping) else None
                item = str(code) if isinstance(code, str) and code else f"#{part + 1}"
            node = node[part]
        else:
            break
    return item


def _place(item: str | None, path: str) -> str:
    return (f"item {item}, field {path}" if item else f"scheme, field {path or '(root)'}")


def _problem(raw: Any, loc: tuple[Any, ...], message: str, kind: str, **params: Any) -> Problem:
    path = ".".join(str(p) for p in loc)
    item = _item_of(raw, loc)
    return Problem(_place(item, path), message, kind, {k: str(v) for k, v in params.items()}, item, path or None)


def check(raw: Any, indicators: Collection[str] | None = None) -> tuple[Scheme | None, list[Problem]]:
    """Validate a decoded scheme; returns the scheme (or None) and every problem, each with its place.

    Shape errors (pydantic) and the checks across entries (weights that must sum to 100, bands in
    order and down to 0, unknown indicators, standards and sources, duplicate codes, measures that
    need a target) are reported together, so an administrator fixes a file in one pass.
    """
    known = set(indicators if indicators is not None else INDICATOR_KINDS)
    problems: list[Problem] = []
    parsed: Scheme | None = None
    try:
        parsed = Scheme.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            params = {k: v for k, v in (err.get("ctx") or {}).items() if k != "error"}
            problems.append(_problem(raw, tuple(err["loc"]), err["msg"], err["type"], **params))
    if isinstance(raw, Mapping):
        problems.extend(_Cross(raw, known).run())
    return (parsed if not problems else None), problems


class _Cross:
    """Checks across entries, on the raw data so that they run even when some entries are malformed."""

    def __init__(self, raw: Mapping[str, Any], known: set[str]) -> None:
        self.raw, self.known = raw, known
        self.found: list[Problem] = []

    def add(self, loc: tuple[Any, ...], message: str, kind: str, **params: Any) -> None:
        self.found.append(_problem(self.raw, loc, message, kind, **params))

    def run(self) -> list[Problem]:
        raw = self.raw
        composite = _map(raw.get("composite"))
        self.terms(("composite",), composite, total=100)
        self.bands(("composite", "bands"), composite.get("bands"))
        grid = _map(raw.get("grid"))
        self.grid(grid)
        own = _map(raw.get("own"))
        self.terms(("own",), own, total=None, personal=True)
        self.index(("pioneer",), raw.get("pioneer"), {"grid", "own", "credits"})
        self.index(("fortress",), raw.get("fortress"), {"indicator", "composite", "grids", "credits"}, stars=True)
        self.index(("service",), raw.get("service"), {"indicator", "composite", "grids", "credits"})
        cadres = _map(raw.get("cadres"))
        self.index(("cadres", "street"), cadres.get("street"), {"rating", "own"})
        self.index(("cadres", "department"), cadres.get("department"), {"rating", "own"})
        weights = [cadres.get("street_weight"), cadres.get("department_weight")]
        if all(_number(w) for w in weights) and abs(sum(weights) - 100) > 1e-6:  # type: ignore[arg-type]
            self.add(("cadres", "department_weight"), "street_weight + department_weight must be 100",
                     "weights_total", total=_fmt(sum(weights)), expected=100)  # type: ignore[arg-type]
        return self.found

    def indicator(self, loc: tuple[Any, ...], code: Any, *, personal: bool = False) -> str | None:
        """The indicator's kind, or None after adding a problem for an unknown one."""
        if not isinstance(code, str) or not code:
            self.add(loc, "an indicator is needed", "indicator_needed")
            return None
        if code not in self.known or code not in INDICATOR_KINDS:
            self.add(loc, f"unknown indicator '{code}'", "unknown_indicator", indicator=code)
            return None
        if personal and code not in PERSONAL_INDICATORS:
            self.add(loc, f"'{code}' is not measured for a person", "not_personal", indicator=code,
                     allowed=", ".join(PERSONAL_INDICATORS))
            return None
        return INDICATOR_KINDS[code][0]

    def direction(self, loc: tuple[Any, ...], code: str, invert: Any) -> None:
        """A rate where lower is better is inverted, one where higher is better is not."""
        if INDICATOR_KINDS[code][0] != "rate":
            self.add(loc[:-1] + ("indicator",), f"'{code}' is not a rate", "not_a_rate", indicator=code)
            return
        lower = INDICATOR_KINDS[code][1] == "lower"
        if bool(invert) != lower:
            self.add(loc, f"'{code}' is better when {'lower' if lower else 'higher'}: invert must be "
                     f"{'true' if lower else 'false'}", "direction_lower" if lower else "direction_higher",
                     indicator=code)

    def terms(self, loc: tuple[Any, ...], node: Mapping[str, Any], *, total: float | None,
              personal: bool = False) -> None:
        terms = node.get("terms")
        if not isinstance(terms, list):
            return
        weights: list[float] = []
        for i, term in enumerate(terms):
            term = _map(term)
            here = (*loc, "terms", i)
            if self.indicator((*here, "indicator"), term.get("indicator"), personal=personal) is not None:
                self.direction((*here, "invert"), term["indicator"], term.get("invert", False))
            if _number(term.get("weight")):
                weights.append(float(term["weight"]))
        if total is not None and len(weights) == len(terms) and abs(sum(weights) - total) > 1e-6:
            self.add((*loc, "terms"), f"the weights sum to {_fmt(sum(weights))}, not {total}", "weights_total",
                     total=_fmt(sum(weights)), expected=_fmt(total))

    def bands(self, loc: tuple[Any, ...], bands: Any, *, stars: bool = False) -> None:
        if not isinstance(bands, list) or not bands:
            return
        mins: list[float] = []
        grades: set[str] = set()
        for i, band in enumerate(bands):
            band = _map(band)
            grade = band.get("grade")
            if isinstance(grade, str):
                if grade in grades:
                    self.add((*loc, i, "grade"), f"grade '{grade}' twice", "duplicate_code", code=grade)
                grades.add(grade)
                if stars and grade not in {"1", "2", "3", "4", "5"}:
                    self.add((*loc, i, "grade"), "a star band's grade is 1 to 5", "stars", grade=grade)
            if _number(band.get("min")):
                value = float(band["min"])
                if mins and value >= mins[-1]:
                    self.add((*loc, i, "min"), "bands go from the highest minimum down", "bands_order",
                             value=_fmt(value), previous=_fmt(mins[-1]))
                mins.append(value)
        if len(mins) == len(bands) and mins[-1] != 0:
            self.add((*loc, len(bands) - 1, "min"), "the last band starts at 0, so every score has a grade",
                     "bands_floor", value=_fmt(mins[-1]))

    def codes(self, loc: tuple[Any, ...], entries: list[Any]) -> set[str]:
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            code = _map(entry).get("code")
            if isinstance(code, str) and code:
                if code in seen:
                    self.add((*loc, i, "code"), f"duplicate code '{code}'", "duplicate_code", code=code)
                seen.add(code)
        return seen

    def grid(self, grid: Mapping[str, Any]) -> None:
        standards, duties, rules = _list(grid.get("standards")), _list(grid.get("duties")), _list(grid.get("rules"))
        known_standards = self.codes(("grid", "standards"), standards)
        self.codes(("grid", "duties"), duties)
        self.codes(("grid", "rules"), rules)
        points = [float(p) for p in (s.get("points") for s in map(_map, standards)) if _number(p)]
        if standards and len(points) == len(standards) and abs(sum(points) - 100) > 1e-6:
            self.add(("grid", "standards"), f"the standards' points sum to {_fmt(sum(points))}, not 100",
                     "points_total", total=_fmt(sum(points)), expected=100)
        used: set[str] = set()
        for i, duty in enumerate(map(_map, duties)):
            here = ("grid", "duties", i)
            standard = duty.get("standard")
            if isinstance(standard, str):
                used.add(standard)
                if known_standards and standard not in known_standards:
                    self.add((*here, "standard"), f"unknown standard '{standard}'", "unknown_standard",
                             standard=standard)
            self.measure((*here, "measure"), _map(duty.get("measure")))
        for i, standard in enumerate(map(_map, standards)):
            code = standard.get("code")
            if isinstance(code, str) and duties and code not in used:
                self.add(("grid", "standards", i, "code"), f"standard '{code}' has no duty", "standard_empty",
                         standard=code)
        for i, rule in enumerate(map(_map, rules)):
            self.rule(("grid", "rules", i), rule)
        self.bands(("grid", "bands"), grid.get("bands"))

    def measure(self, loc: tuple[Any, ...], measure: Mapping[str, Any]) -> None:
        kind = measure.get("kind")
        if kind == "indicator":
            found = self.indicator((*loc, "indicator"), measure.get("indicator"))
            if found == "average":
                self.add((*loc, "indicator"), "hours are no achievement; use a rate or a count", "not_measurable",
                         indicator=measure.get("indicator"))
            if found == "count" and measure.get("target") is None:
                self.add((*loc, "target"), "a count needs a target", "target_needed")
            if found == "rate" and _number(measure.get("target")) and float(measure["target"]) > 1:
                self.add((*loc, "target"), "a rate's target is a fraction up to 1", "rate_target")
        elif kind == "reports":
            source = measure.get("source", "grid_patrol")
            if source not in SOURCES:
                self.add((*loc, "source"), f"unknown source '{source}'", "unknown_source", source=source,
                         allowed=", ".join(SOURCES))
            if measure.get("target") is None:
                self.add((*loc, "target"), "reports need a monthly target", "target_needed")
        elif kind == "inspection":
            for name in ("indicator", "source", "target"):
                if measure.get(name) is not None:
                    self.add((*loc, name), "an inspection duty is scored by the inspection entries",
                             "not_for_inspection")

    def rule(self, loc: tuple[Any, ...], rule: Mapping[str, Any]) -> None:
        kind = rule.get("kind")
        if kind in ("threshold", "per_count"):
            found = self.indicator((*loc, "indicator"), rule.get("indicator"))
            if kind == "per_count" and found is not None and found != "count":
                self.add((*loc, "indicator"), "a rule per count needs a count", "not_a_count",
                         indicator=rule.get("indicator"))
        if kind == "threshold":
            if rule.get("op") is None:
                self.add((*loc, "op"), "a threshold needs op", "op_needed")
        if kind in ("threshold", "inspection_below") and rule.get("value") is None:
            self.add((*loc, "value"), "a value to compare with is needed", "value_needed")
        points, cap = rule.get("points"), rule.get("cap")
        if _number(points) and points == 0:
            self.add((*loc, "points"), "a rule that gives 0 points changes nothing", "points_zero")
        if _number(points) and _number(cap) and (float(points) > 0) != (float(cap) > 0):
            self.add((*loc, "cap"), "the cap has the sign of the points", "cap_sign")

    def index(self, loc: tuple[Any, ...], node: Any, allowed: set[str], *, stars: bool = False) -> None:
        if not isinstance(node, Mapping):
            return  # missing or not an object: the shape check has said so
        parts = _list(node.get("parts"))
        self.codes((*loc, "parts"), parts)
        for i, part in enumerate(map(_map, parts)):
            here = (*loc, "parts", i)
            source = part.get("source")
            if isinstance(source, str) and source in PART_SOURCES and source not in allowed:
                self.add((*here, "source"), f"'{source}' is not a part of this index", "source_not_here",
                         source=source, allowed=", ".join(sorted(allowed)))
            if source == "indicator":
                if self.indicator((*here, "indicator"), part.get("indicator")) is not None:
                    self.direction((*here, "invert"), part["indicator"], part.get("invert", False))
            elif part.get("indicator") is not None:
                self.add((*here, "indicator"), "only an indicator part names an indicator", "not_for_source")
            if source == "credits":
                if part.get("credit") not in CREDIT_KINDS:
                    self.add((*here, "credit"), f"unknown credit {part.get('credit')!r}", "unknown_credit",
                             credit=str(part.get("credit")), allowed=", ".join(CREDIT_KINDS))
                if part.get("per_month") is None:
                    self.add((*here, "per_month"), "a credits part needs its amount a month (per_month)",
                             "credits_need_target")
            elif part.get("credit") is not None or part.get("per_month") is not None:
                self.add((*here, "credit"), "only a credits part names a credit", "not_for_credits")
        if stars and not node.get("bands"):
            self.add((*loc, "bands"), "stars need bands", "bands_needed")
        self.bands((*loc, "bands"), node.get("bands"), stars=stars)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(value: float) -> str:
    return f"{value:g}"


def parse_text(content: str) -> tuple[Scheme | None, list[Problem]]:
    """Check a scheme given as JSON text."""
    try:
        raw = json.loads(content)
    except json.JSONDecodeError as exc:
        return None, [Problem(f"line {exc.lineno}, column {exc.colno}", exc.msg, "not_json",
                              line=exc.lineno, column=exc.colno)]
    return check(raw)


def load(path: Path | str = DEFAULT_SCHEME_PATH) -> Scheme:
    """Read and validate a scheme file; raises :class:`InvalidScheme` with every problem."""
    try:
        content = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidScheme([Problem(str(path), f"cannot read: {exc}", "unreadable")]) from exc
    parsed, problems = parse_text(content)
    if parsed is None:
        raise InvalidScheme(problems)
    return parsed
