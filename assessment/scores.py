"""Scores from a scheme (:mod:`assessment.schemes`) over a period: computed, never typed.

:func:`period_scores` gathers what a period's scores need from the store (every unit's indicators
from ``store.assessment.indicator_values``, the grids' own patrol reports, the inspection entries,
the people and their own handling records, the cadres' ratings) and hands it to :func:`score_sheet`,
which is pure: the same inputs always give the same sheet, so the default scheme's numbers are
tested against hand-computed values without a store.

The rules every table follows:

- a value that has no denominator in the period (``Value.value is None``) is left out of a weighted
  sum and the other parts are re-weighed to the same total (flag ``partial``); nothing measured at
  all gives no score (``None``, shown "—"), never 0;
- a rate where lower is better counts as 1 − rate (the scheme says so with ``invert``);
- scores are rounded to two decimals (half up) once, at the end of each row.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from assessment.indicators import BY_CODE, Value
from assessment.schemes import INDICATOR_KINDS, Band, Index, IndexPart, Measure, RewardRule, Scheme, Term

#: The tables of a sheet, in the order pages show them.
TABLES = ("departments", "streets", "communities", "grids", "party_members", "cadres")


@dataclass
class Part:
    """One line of a score: what was measured (``value``: an indicator's value, an achievement 0..1,
    or a sub-score 0..100), its ``weight`` and the ``points`` it gave; ``indicator`` and ``unit`` when
    the value is an indicator's (the page links it to the events behind it)."""

    code: str
    name_zh: str
    name_en: str
    value: float | None
    points: float | None = None
    weight: float | None = None
    indicator: str | None = None
    unit: str | None = None
    note: str = ""  # unmeasured | inspection | reports | rule | partial


@dataclass
class ScoreRow:
    """One subject's score: a unit code or a username."""

    subject: str
    name_zh: str
    name_en: str
    score: float | None
    grade: str | None = None
    parts: list[Part] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


@dataclass
class ScoreSheet:
    """The scores of one period under one scheme version."""

    scheme_version: str
    day_from: date
    day_to: date
    annual: bool
    tables: dict[str, list[ScoreRow]]

    def as_json(self) -> dict[str, Any]:
        """The sheet as JSON-ready data (dates as ISO text)."""
        return {"scheme_version": self.scheme_version, "from": self.day_from.isoformat(),
                "to": self.day_to.isoformat(), "annual": self.annual,
                "tables": {name: [asdict(row) for row in rows] for name, rows in self.tables.items()}}

    def row(self, table: str, subject: str) -> ScoreRow | None:
        """One row of a table by its subject."""
        return next((r for r in self.tables.get(table, []) if r.subject == subject), None)


@dataclass(frozen=True)
class Subject:
    """A unit or a person to score, with their names."""

    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Person:
    """A user the sheet scores: party members (pioneer index) and dispatched cadres."""

    username: str
    display_name: str
    unit: str
    role: str
    party_member: bool = False
    stationed_street: str | None = None


@dataclass
class Inputs:
    """Everything a sheet is computed from (gathered by :func:`period_scores`, or given by a test)."""

    departments: list[Subject]
    streets: list[Subject]
    communities: list[Subject]
    grids: list[Subject]
    #: The grids below each street and community (and any unit a person works in).
    grids_under: Mapping[str, Sequence[str]]
    values: Mapping[str, Mapping[str, Value]]  # unit → indicator code → value
    people: list[Person] = field(default_factory=list)
    personal: Mapping[str, Mapping[str, Value]] = field(default_factory=dict)  # username → own record
    reports: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (grid, source) → events reported
    inspections: Mapping[str, Mapping[str, Sequence[float]]] = field(default_factory=dict)  # grid → duty → scores
    ratings: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (username, street|department) → 0..100
    #: What the processes credited in the period: username → credit kind → total (volunteer hours,
    #: pioneer points...), and the same by the community and the street the instances were in.
    person_credits: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    unit_credits: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


def rounded(value: float | None) -> float | None:
    """Two decimals, half up (as a person computes by hand)."""
    if value is None:
        return None
    return float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def months_in(day_from: date, day_to: date) -> float:
    """How many months a period covers: each calendar month counts the share of its days inside."""
    total, day = 0.0, day_from
    while day <= day_to:
        first_next = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        last = min(day_to, first_next - timedelta(days=1))
        month_days = (first_next - day.replace(day=1)).days
        total += ((last - day).days + 1) / month_days
        day = first_next
    return total


def _value(values: Mapping[str, Value] | None, code: str) -> float | None:
    found = values.get(code) if values else None
    return None if found is None else found.value


def _band(bands: Sequence[Band], score: float | None) -> str | None:
    if score is None or not bands:
        return None
    for band in bands:
        if score >= band.min - 1e-9:
            return band.grade
    return bands[-1].grade


# ------------------------------------------------------------------ the pieces


def weighted_terms(terms: Sequence[Term], values: Mapping[str, Value] | None, unit: str | None,
                   total: float) -> tuple[float | None, list[Part], bool]:
    """Σ weight × (value or 1 − value) over the terms with a value, re-weighed to ``total`` when
    some have none. Returns (score, parts, partial)."""
    parts: list[Part] = []
    got, weights = 0.0, 0.0
    for term in terms:
        raw = _value(values, term.indicator)
        shown = None if raw is None else (1 - raw if term.invert else raw)
        points = None if shown is None else term.weight * shown
        found = BY_CODE.get(term.indicator)
        parts.append(Part(term.indicator, found.name_zh if found else term.indicator,
                          found.name_en if found else term.indicator, raw, points, term.weight,
                          term.indicator, unit, "" if raw is not None else "unmeasured"))
        if points is not None:
            got += points
            weights += term.weight
    if weights == 0:
        return None, parts, False
    partial = weights < sum(t.weight for t in terms) - 1e-9
    return got * (total / weights), parts, partial


def composite(scheme: Scheme, values: Mapping[str, Value] | None, unit: str) -> tuple[float | None, list[Part], bool]:
    """The composite score (0..100) of a unit from its indicators."""
    return weighted_terms(scheme.composite.terms, values, unit, 100.0)


def own_score(scheme: Scheme, record: Mapping[str, Value] | None) -> float | None:
    """A person's own handling record as a score 0..100 (None: no handling task in the period)."""
    score, _, _ = weighted_terms(scheme.own.terms, record, None, 100.0)
    return score


def achievement(measure: Measure, grid: str, values: Mapping[str, Value] | None, inputs: Inputs,
                months: float, duty: str) -> tuple[float | None, float | None, str]:
    """How far a grid met a duty in the period, 0..1 (None: nothing measured it); with the value
    measured and how (indicator, reports, inspection)."""
    if measure.kind == "inspection":
        scores = list(inputs.inspections.get(grid, {}).get(duty, ()))
        if not scores:
            return None, None, "inspection"
        mean = sum(scores) / len(scores)
        return max(0.0, min(1.0, mean / 100)), mean, "inspection"
    if measure.kind == "reports":
        count = inputs.reports.get((grid, measure.source or "grid_patrol"), 0)
        target = (measure.target or 1) * months
        return (min(1.0, count / target) if target > 0 else 1.0), float(count), "reports"
    code = measure.indicator or ""
    raw = _value(values, code)
    if raw is None:
        return None, None, "indicator"
    kind, better = INDICATOR_KINDS[code]
    if kind == "rate":
        shown = raw if better == "higher" else 1 - raw
        if measure.target:
            shown = min(1.0, shown / measure.target)
        return max(0.0, min(1.0, shown)), raw, "indicator"
    target = (measure.target or 1) * months  # a monthly target, for the months of the period
    if better == "higher":
        return min(1.0, raw / target), raw, "indicator"
    return max(0.0, 1 - raw / target), raw, "indicator"  # a count to keep low: 0 at the target


def _compare(op: str | None, left: float, right: float) -> bool:
    return {">=": left >= right, ">": left > right, "<=": left <= right, "<": left < right}.get(op or "", False)


def rule_points(rule: RewardRule, grid: str, values: Mapping[str, Value] | None,
                inputs: Inputs) -> tuple[float, float | None]:
    """The points a reward or punishment rule gives a grid, and the value it looked at."""
    if rule.kind == "inspection_below":
        below = sum(1 for scores in inputs.inspections.get(grid, {}).values() for s in scores
                    if s < (rule.value or 0))
        points = below * rule.points
        return _capped(points, rule.cap), float(below)
    raw = _value(values, rule.indicator or "")
    if raw is None:
        return 0.0, None
    if rule.kind == "per_count":
        return _capped(raw * rule.points, rule.cap), raw
    return (rule.points if _compare(rule.op, raw, rule.value or 0) else 0.0), raw


def _capped(points: float, cap: float | None) -> float:
    if cap is None:
        return points
    return max(points, cap) if cap < 0 else min(points, cap)


def grid_score(scheme: Scheme, grid: Subject, inputs: Inputs, months: float) -> ScoreRow:
    """A grid's assessment: standards' points from their duties' achievements, plus the rules."""
    assessment = scheme.grid
    values = inputs.values.get(grid.code)
    by_standard: dict[str, list[float]] = defaultdict(list)
    parts: list[Part] = []
    flags: list[str] = []
    measured = 0
    for duty in assessment.duties:
        got, raw, how = achievement(duty.measure, grid.code, values, inputs, months, duty.code)
        if got is not None:
            measured += 1
        used = assessment.unmeasured if got is None else got
        by_standard[duty.standard].append(used)
        parts.append(Part(duty.code, duty.name_zh, duty.name_en, raw, used, None,
                          duty.measure.indicator if how == "indicator" else None,
                          grid.code if how == "indicator" else None, how if got is not None else "unmeasured"))
    total = 0.0
    for standard in assessment.standards:
        achieved = by_standard.get(standard.code) or [assessment.unmeasured]
        points = standard.points * sum(achieved) / len(achieved)
        total += points
        parts.append(Part(standard.code, standard.name_zh, standard.name_en, sum(achieved) / len(achieved),
                          points, standard.points, note="standard"))
    for rule in assessment.rules:
        points, raw = rule_points(rule, grid.code, values, inputs)
        if points:
            total += points
            if rule.flag and rule.flag not in flags:
                flags.append(rule.flag)
        parts.append(Part(rule.code, rule.name_zh, rule.name_en, raw, points, None, rule.indicator,
                          grid.code if rule.indicator else None, "rule"))
    if measured == 0:
        return ScoreRow(grid.code, grid.name_zh, grid.name_en, None, None, parts, ["unmeasured"])
    score = rounded(max(0.0, min(assessment.ceiling, total)))
    return ScoreRow(grid.code, grid.name_zh, grid.name_en, score, _band(assessment.bands, score), parts, flags)


def index_score(index: Index, sources: Mapping[str, float | None], unit: str | None,
                values: Mapping[str, Value] | None, credits: Mapping[str, float] | None = None,
                months: float = 1.0) -> tuple[float | None, list[Part], bool]:
    """An index: the weighted mean (0..100) of its parts with a value. ``sources`` gives the value of
    each non-indicator source (composite, grids, grid, own, rating); ``credits`` the subject's process
    credits by kind over the period of ``months`` (None: credits are not counted for this subject).
    Nothing credited counts 0 beside measured parts; with no other part measured there is no index."""
    parts: list[Part] = []
    got, weights = 0.0, 0.0
    evidence = False  # a part measured from data, or credits earned: an index of nothing is no index
    for part in index.parts:
        raw, shown = _part_value(part, sources, values, credits, months)
        points = None if shown is None else part.weight * shown / 100
        parts.append(Part(part.code, part.name_zh, part.name_en, raw, points, part.weight,
                          part.indicator, unit if part.indicator else None, "" if shown is not None else "unmeasured"))
        if shown is not None:
            got += part.weight * shown
            weights += part.weight
            evidence = evidence or part.source != "credits" or bool(raw)
    if weights == 0 or not evidence:  # only a credits part with nothing credited: unmeasured, never 0
        return None, parts, False
    return got / weights, parts, weights < sum(p.weight for p in index.parts) - 1e-9


def _part_value(part: IndexPart, sources: Mapping[str, float | None], values: Mapping[str, Value] | None,
                credits: Mapping[str, float] | None = None, months: float = 1.0) -> tuple[float | None, float | None]:
    """(the value as measured, the part's score 0..100)."""
    if part.source == "credits":
        if credits is None or not part.per_month or months <= 0:
            return None, None
        total = float(credits.get(part.credit or "", 0.0))
        return total, 100 * min(1.0, total / (part.per_month * months))
    if part.source != "indicator":
        value = sources.get(part.source)
        return value, value
    raw = _value(values, part.indicator or "")
    if raw is None:
        return None, None
    shown = 1 - raw if part.invert else raw
    if part.target:
        shown = min(1.0, shown / part.target)
    return raw, 100 * max(0.0, min(1.0, shown))


def _mean(scores: Iterable[float | None]) -> float | None:
    found = [s for s in scores if s is not None]
    return sum(found) / len(found) if found else None


# ------------------------------------------------------------------ the sheet


def score_sheet(scheme: Scheme, inputs: Inputs, day_from: date, day_to: date, *, annual: bool = False) -> ScoreSheet:
    """Every table of the period's scores (pure)."""
    months = months_in(day_from, day_to)
    tables: dict[str, list[ScoreRow]] = {}

    tables["departments"] = []
    for unit in inputs.departments:
        score, parts, partial = composite(scheme, inputs.values.get(unit.code), unit.code)
        score = rounded(score)
        tables["departments"].append(ScoreRow(unit.code, unit.name_zh, unit.name_en, score,
                                              _band(scheme.composite.bands, score), parts,
                                              ["partial"] if partial else []))

    grids = [grid_score(scheme, grid, inputs, months) for grid in inputs.grids]
    tables["grids"] = grids
    grid_scores = {row.subject: row.score for row in grids}
    grid_flags = {row.subject: row.flags for row in grids}

    def grids_mean(unit: str) -> float | None:
        return _mean(grid_scores.get(g) for g in inputs.grids_under.get(unit, ()))

    tables["streets"] = []
    for unit in inputs.streets:
        values = inputs.values.get(unit.code)
        score, parts, partial = composite(scheme, values, unit.code)
        service, service_parts, _ = index_score(scheme.service, {"composite": score, "grids": grids_mean(unit.code)},
                                                unit.code, values, inputs.unit_credits.get(unit.code, {}), months)
        score, service = rounded(score), rounded(service)
        parts.append(Part("service_index", "服务指数", "Service index", service, None, None, note="index"))
        parts.extend(Part(f"service.{p.code}", p.name_zh, p.name_en, p.value, p.points, p.weight, p.indicator,
                          p.unit, p.note) for p in service_parts)
        tables["streets"].append(ScoreRow(unit.code, unit.name_zh, unit.name_en, score,
                                          _band(scheme.composite.bands, score), parts,
                                          ["partial"] if partial else []))

    tables["communities"] = []
    for unit in inputs.communities:
        values = inputs.values.get(unit.code)
        comp, _, _ = composite(scheme, values, unit.code)
        fortress, parts, partial = index_score(scheme.fortress, {"composite": comp, "grids": grids_mean(unit.code)},
                                               unit.code, values, inputs.unit_credits.get(unit.code, {}), months)
        fortress = rounded(fortress)
        tables["communities"].append(ScoreRow(unit.code, unit.name_zh, unit.name_en, fortress,
                                              _band(scheme.fortress.bands, fortress), parts,
                                              ["partial"] if partial else []))

    tables["party_members"] = []
    for person in inputs.people:
        if not person.party_member:
            continue
        grid = grid_scores.get(person.unit) if person.unit in grid_scores else grids_mean(person.unit)
        own = own_score(scheme, inputs.personal.get(person.username))
        pioneer, parts, partial = index_score(scheme.pioneer, {"grid": grid, "own": own}, None, None,
                                              inputs.person_credits.get(person.username, {}), months)
        pioneer = rounded(pioneer)
        flags = ["partial"] if partial else []
        flags += [f for f in grid_flags.get(person.unit, []) if f not in flags and f != "unmeasured"]
        tables["party_members"].append(ScoreRow(person.username, person.display_name, person.display_name,
                                                pioneer, _band(scheme.pioneer.bands, pioneer), parts, flags))

    tables["cadres"] = cadre_scores(scheme, inputs) if annual else []
    return ScoreSheet(scheme.version, day_from, day_to, annual, tables)


def cadre_scores(scheme: Scheme, inputs: Inputs) -> list[ScoreRow]:
    """The dispatched cadres' annual scores and the excellent quota.

    Street part and department part are indices over the rating the street (or department) gave and
    the cadre's own handling record; the annual score is street × street_weight + department ×
    department_weight (in %); without either part there is no annual score (flag ``incomplete``).
    The quota is ``floor(n × excellent_share)`` of the n cadres with a score (a maximum: 12 cadres at
    20% are 2). Ranked by score, the best ``quota`` who reach ``excellent_min`` are flagged
    ``excellent``; when the last place of the quota is tied with the next cadre, every cadre with
    that score is left out and flagged ``quota_tie`` (the quota is never exceeded; the committee
    decides between them)."""
    plan = scheme.cadres
    rows: list[ScoreRow] = []
    for person in inputs.people:
        if person.role != "dispatched_cadre":
            continue
        own = own_score(scheme, inputs.personal.get(person.username))
        street, street_parts, _ = index_score(
            plan.street, {"rating": inputs.ratings.get((person.username, "street")), "own": own}, None, None)
        department, department_parts, _ = index_score(
            plan.department, {"rating": inputs.ratings.get((person.username, "department")), "own": own}, None, None)
        parts = [Part("street", "街道部分", "Street part", rounded(street), None, plan.street_weight, note="index"),
                 *(Part(f"street.{p.code}", p.name_zh, p.name_en, p.value, p.points, p.weight) for p in street_parts),
                 Part("department", "部门部分", "Department part", rounded(department), None, plan.department_weight,
                      note="index"),
                 *(Part(f"department.{p.code}", p.name_zh, p.name_en, p.value, p.points, p.weight)
                   for p in department_parts)]
        flags = [f"{side}_rating_missing" for side in ("street", "department")
                 if (person.username, side) not in inputs.ratings]
        score = None
        if street is not None and department is not None:
            score = rounded((street * plan.street_weight + department * plan.department_weight) / 100)
        else:
            flags.append("incomplete")
        rows.append(ScoreRow(person.username, person.display_name, person.display_name, score, None, parts, flags))
    _excellent(rows, plan.excellent_share, plan.excellent_min)
    rows.sort(key=lambda r: (r.score is None, -(r.score or 0), r.subject))
    return rows


def _excellent(rows: list[ScoreRow], share: float, minimum: float) -> None:
    scored = sorted((r for r in rows if r.score is not None), key=lambda r: -(r.score or 0))
    quota = math.floor(len(scored) * share + 1e-9)
    if quota == 0:
        return
    edge = scored[quota - 1].score
    tied_over = len(scored) > quota and scored[quota].score == edge
    for row in scored[:quota]:
        if (row.score or 0) < minimum - 1e-9:
            continue
        if tied_over and row.score == edge:
            continue
        row.flags.append("excellent")
    if tied_over:
        for row in scored:
            if row.score == edge and (row.score or 0) >= minimum - 1e-9:
                row.flags.append("quota_tie")


# ------------------------------------------------------------------ from the store


async def period_scores(db: Any, org: Any, scheme: Scheme, day_from: date, day_to: date,
                        annual: bool = False, *, now: datetime | None = None) -> ScoreSheet:
    """The scores of every unit and person for the period under ``scheme`` (``db``: store.db.Database,
    ``org``: store.org.OrgTree). Cadres are scored only for an ``annual`` sheet (their ratings are
    per year: ``day_from``'s). ``now`` (default: now) ends a period that has not ended yet, as for
    ``store.assessment.indicator_values``."""
    from store import score_inputs

    inputs = await score_inputs.gather(db, org, scheme, day_from, day_to, annual=annual, now=now)
    return score_sheet(scheme, inputs, day_from, day_to, annual=annual)
