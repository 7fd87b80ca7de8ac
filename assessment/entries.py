"""The one definition of a valid inspection entry (督查记录) and cadre rating, for the pages and the API
alike (pure: the caller passes the active scheme, the grids and today).

A problem names its field and a catalogue key (``entry_err.<code>``) with its values, so a page shows
it in its language next to the field, and the API answers the English text with the code. Who may
enter for which grid or cadre (scope) is the caller's question, answered before these checks.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date, timedelta
from typing import Any

from assessment.schemes import Scheme

#: Longest finding and comment, in characters (refused beyond, never cut).
MAX_FINDING = 1000
MAX_COMMENT = 500
#: How far back an inspection may be entered.
MAX_AGE_DAYS = 366


@dataclass(frozen=True)
class FieldProblem:
    """A refused field: ``field`` (form and JSON name), ``code`` (catalogue ``entry_err.<code>``)."""

    field: str
    code: str
    values: dict[str, Any] = dc_field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"entry_err.{self.code}"


@dataclass(frozen=True)
class InspectionDraft:
    """A checked inspection entry (without its inspector, added by the caller)."""

    grid: str
    duty: str
    day: date
    finding: str
    score: float
    photo_id: str | None


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value).strip()


def score_value(raw: Mapping[str, Any], name: str, problems: list[FieldProblem]) -> float | None:
    """A score from 0 to 100 (one decimal at most is kept as given)."""
    value = raw.get(name)
    if isinstance(value, bool) or value is None or value == "":
        problems.append(FieldProblem(name, "required"))
        return None
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        problems.append(FieldProblem(name, "not_number"))
        return None
    if not math.isfinite(number) or number < 0 or number > 100:
        problems.append(FieldProblem(name, "score_range", {"low": 0, "high": 100}))
        return None
    return number


def check_inspection(raw: Mapping[str, Any], scheme: Scheme, grids: Collection[str],
                     today: date) -> tuple[InspectionDraft | None, list[FieldProblem]]:
    """Check an inspection entry: a grid of the organisation, an inspection duty of the active
    scheme, a day within the last year and not after today, a finding, a score 0–100, and the id of
    an uploaded photo (whether it is the inspector's own, unattached photo is the caller's check)."""
    problems: list[FieldProblem] = []
    grid = _text(raw, "grid")
    if not grid:
        problems.append(FieldProblem("grid", "required"))
    elif grid not in grids:
        problems.append(FieldProblem("grid", "unknown_grid", {"grid": grid[:32]}))
    duty = _text(raw, "duty")
    duties = {d.code: d for d in scheme.grid.duties}
    if not duty:
        problems.append(FieldProblem("duty", "required"))
    elif duty not in duties:
        problems.append(FieldProblem("duty", "unknown_duty", {"duty": duty[:16]}))
    elif duties[duty].measure.kind != "inspection":
        problems.append(FieldProblem("duty", "duty_automatic", {"duty": duty}))
    day_text = _text(raw, "day")
    day = today
    if day_text:
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            problems.append(FieldProblem("day", "not_date"))
        else:
            if day > today or day < today - timedelta(days=MAX_AGE_DAYS):
                problems.append(FieldProblem("day", "day_range", {"days": MAX_AGE_DAYS}))
    finding = _text(raw, "finding")
    if not finding:
        problems.append(FieldProblem("finding", "required"))
    elif len(finding) > MAX_FINDING:
        problems.append(FieldProblem("finding", "too_long", {"n": MAX_FINDING}))
    elif any(ord(ch) < 32 and ch not in "\n\r\t" for ch in finding):
        problems.append(FieldProblem("finding", "control_characters"))
    score = score_value(raw, "score", problems)
    photo = _text(raw, "photo_id") or None
    if problems or score is None:
        return None, problems
    return InspectionDraft(grid, duty, day, finding, score, photo), []


@dataclass(frozen=True)
class RatingDraft:
    """A checked cadre rating."""

    username: str
    year: int
    side: str
    score: float
    comment: str


def check_rating(raw: Mapping[str, Any], cadres: Collection[str], sides: Collection[str],
                 today: date) -> tuple[RatingDraft | None, list[FieldProblem]]:
    """Check a rating: a cadre the rater may rate, a side they rate for, this year or the last, a
    score 0–100, an optional comment."""
    problems: list[FieldProblem] = []
    username = _text(raw, "username")
    if not username:
        problems.append(FieldProblem("username", "required"))
    elif username not in cadres:
        problems.append(FieldProblem("username", "unknown_cadre", {"username": username[:64]}))
    side = _text(raw, "side")
    if side not in sides:
        problems.append(FieldProblem("side", "side", {"side": side[:12]}))
    year_text = _text(raw, "year") or str(today.year)
    year = today.year
    if not year_text.isdigit() or int(year_text) not in (today.year, today.year - 1):
        problems.append(FieldProblem("year", "year_range", {"first": today.year - 1, "last": today.year}))
    else:
        year = int(year_text)
    score = score_value(raw, "score", problems)
    comment = _text(raw, "comment")
    if len(comment) > MAX_COMMENT:
        problems.append(FieldProblem("comment", "too_long", {"n": MAX_COMMENT}))
    if problems or score is None:
        return None, problems
    return RatingDraft(username, year, side, score, comment), []
