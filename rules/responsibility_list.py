"""The responsibility list (权责清单): categories, tiers, departments and deadlines, as validated data.

One definition of the list's shape. :func:`check` reports every problem with its place
(category code and field) instead of stopping at the first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

Tier = Literal["grid", "community", "street", "department", "city"]
TIERS: tuple[str, ...] = ("grid", "community", "street", "department", "city")
STAGES = ("dispatch", "handling", "verification", "rating_window")

#: The list shipped with the platform (version 1 of the city's 165 categories).
DEFAULT_LIST_PATH = Path(__file__).parent / "data" / "responsibility_list.json"


class Deadlines(BaseModel):
    """Deadlines per stage, in hours of working time."""

    model_config = ConfigDict(extra="forbid")

    dispatch: int = Field(gt=0, le=24 * 30)
    handling: int = Field(gt=0, le=24 * 90)
    verification: int = Field(gt=0, le=24 * 30)
    rating_window: int = Field(gt=0, le=24 * 30)


class Group(BaseModel):
    """A group of categories (e.g. 市容环境)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[A-Z]{2,4}$")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class Category(BaseModel):
    """One event category of the list and who must handle it."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[A-Z]{2,4}-\d{2,3}$")
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=120)
    group: str
    tier: Tier
    # validate_default: the department rule must also run when the field is left out.
    department: str | None = Field(default=None, validate_default=True)
    co_departments: list[str] = Field(default_factory=list)
    deadlines: Deadlines
    law_enforcement: bool = False
    severity_scale: list[str] = Field(min_length=1, max_length=6)
    keywords: list[str] = Field(min_length=1)

    # Field validators (not a model validator) so that a problem's place names the field.
    # They rely on the declaration order: tier before department before co_departments.
    @field_validator("department")
    @classmethod
    def _department_needed(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("tier") == "department" and not value:
            raise PydanticCustomError("department_needed", "tier 'department' needs a responsible department")
        return value

    @field_validator("co_departments")
    @classmethod
    def _not_also_co_handler(cls, value: list[str], info: ValidationInfo) -> list[str]:
        department = info.data.get("department")
        if department and department in value:
            raise PydanticCustomError("co_handler_responsible",
                                      "the responsible department cannot also be a co-handler")
        return value

    @field_validator("keywords")
    @classmethod
    def _non_blank(cls, value: list[str]) -> list[str]:
        if any(not k.strip() for k in value):
            raise PydanticCustomError("blank_keywords", "keywords must not be blank")
        return value


def _default_priorities() -> dict[str, int]:
    return dict(DEFAULT_PRIORITIES)


#: Rule priorities (lower fires first; the first rule that matches decides).
DEFAULT_PRIORITIES: dict[str, int] = {
    "returned": 5,  # returned too often: a supervisor decides (dispatch errors cost days)
    "severity": 10,  # the top level of the category's severity scale: one tier up
    "escalated": 15,  # escalated by handlers: as many tiers up as escalations
    "repeat": 20,  # repeated reports in the same grid: one tier up
    "enforcement": 30,  # needs law-enforcement power: the law-enforcement department
    "cadre": 40,  # a "1+X" cadre of the department is stationed at the event's street
    "camera": 50,  # camera alarms are confirmed on site by the grid worker first
    "category": 100,  # the list's own tier for the category
    "catch_all": 10_000,  # nothing placed it: triage
}


#: Tiers that may verify (核查) a handled event, lowest first ("street": the street's command centre).
VerifierTier = Literal["grid", "community", "street", "city"]
VERIFIER_TIERS: tuple[str, ...] = ("grid", "community", "street", "city")


class VerificationPolicy(BaseModel):
    """Who verifies (核查) a handled event: the unit of the event's place at ``tier`` (the grid worker
    by default), or at the category's own tier in ``categories`` where it matters (fire hazards are
    verified by the street's command centre). Never the handling unit itself: when it handled the
    event, the next tier up verifies (a grid's own work goes to its community)."""

    model_config = ConfigDict(extra="forbid")

    tier: VerifierTier = "grid"
    categories: dict[str, VerifierTier] = Field(default_factory=dict)

    def tier_for(self, category: str) -> str:
        """The verification tier of ``category``."""
        return self.categories.get(category, self.tier)


class Policies(BaseModel):
    """How facts beyond the category change a decision; priorities are explicit data."""

    model_config = ConfigDict(extra="forbid")

    repeat_window_days: int = Field(default=7, ge=1, le=365)
    repeat_threshold: int = Field(default=2, ge=1, le=100)  # earlier reports that make it a repeat
    return_threshold: int = Field(default=2, ge=1, le=10)
    enforcement_department: str = "ZF"
    priorities: dict[str, int] = Field(default_factory=_default_priorities)
    verification: VerificationPolicy = Field(default_factory=VerificationPolicy)

    @field_validator("priorities")
    @classmethod
    def _all_rules(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = set(value) - set(DEFAULT_PRIORITIES)
        if unknown:
            raise PydanticCustomError("unknown_rules", "unknown rule(s) {rules}", {"rules": ", ".join(sorted(unknown))})
        merged = {**DEFAULT_PRIORITIES, **value}
        if any(p < 0 for p in merged.values()):
            raise PydanticCustomError("negative_priority", "priorities must not be negative")
        return merged


class ResponsibilityList(BaseModel):
    """A whole version of the list."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=40, pattern=r"^[\w.\-]+$")
    title_zh: str = ""
    title_en: str = ""
    policies: Policies = Field(default_factory=Policies)
    groups: list[Group]
    categories: list[Category] = Field(min_length=1)

    def by_code(self) -> dict[str, Category]:
        """Categories keyed by code."""
        return {c.code: c for c in self.categories}


@dataclass(frozen=True)
class Problem:
    """One problem found in a list file, with its place: ``place`` and ``message`` in English (the
    CLI), and for pages the same as data: ``code`` (catalogue ``listcheck.<code>``) with ``params``,
    and the place as ``category`` (its code, or ``#n``), ``field`` (dotted path in the file) or
    ``line``/``column``."""

    place: str
    message: str
    code: str = ""
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    category: str | None = None
    field: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        return f"{self.place}: {self.message}"


class InvalidList(Exception):
    """A list that failed validation; carries every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:5]))
        self.problems = problems


def _where(raw: Any, loc: tuple[Any, ...]) -> tuple[str | None, str]:
    """A pydantic error location as (category, field): ('SR-01', 'deadlines.handling'), or
    (None, 'policies.repeat_threshold') outside the categories."""
    if len(loc) >= 2 and loc[0] == "categories" and isinstance(loc[1], int):
        cats = raw.get("categories") if isinstance(raw, dict) else None
        code = None
        if isinstance(cats, list) and loc[1] < len(cats) and isinstance(cats[loc[1]], dict):
            code = cats[loc[1]].get("code")
        return (str(code) if code else f"#{loc[1] + 1}"), ".".join(str(p) for p in loc[2:])
    return None, ".".join(str(p) for p in loc)


def _place(raw: Any, loc: tuple[Any, ...]) -> str:
    """Turn a pydantic error location into 'category SR-01, field deadlines.handling'."""
    category, fields = _where(raw, loc)
    if category is not None:
        return f"category {category}, field {fields or '(entry)'}"
    return "list, field " + (fields or "(root)")


def _problem(raw: Any, err: Any) -> Problem:
    """A pydantic error as a problem: its type is the code, its context the parameters."""
    loc = tuple(err["loc"])
    category, fields = _where(raw, loc)
    params = {k: str(v) for k, v in (err.get("ctx") or {}).items() if k != "error"}
    return Problem(_place(raw, loc), err["msg"], err["type"], params, category, fields)


def _cross(where: str, code: str | None, index: int, field_name: str, message: str, kind: str,
           **params: Any) -> Problem:
    return Problem(f"{where}, field {field_name}", message, kind, {k: str(v) for k, v in params.items()},
                   str(code) if code else f"#{index + 1}", field_name)


def check(raw: Any, departments: set[str] | None = None) -> tuple[ResponsibilityList | None, list[Problem]]:
    """Validate a decoded list; returns the list (or None) and every problem found, each with its place.

    Shape errors (pydantic) and cross-checks (duplicate codes, unknown groups and departments) are
    all reported together, so an administrator can fix a file in one pass.
    """
    problems: list[Problem] = []
    parsed: ResponsibilityList | None = None
    try:
        parsed = ResponsibilityList.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(_problem(raw, err))
    problems.extend(_cross_check(raw, departments))
    return (parsed if not problems else None), problems


def _cross_check(raw: Any, departments: set[str] | None) -> list[Problem]:
    """Checks across entries, on the raw data so they run even when some entries are malformed."""
    if not isinstance(raw, dict):
        return []
    problems: list[Problem] = []
    groups = {g.get("code") for g in raw.get("groups") or [] if isinstance(g, dict)}
    seen: set[str] = set()
    for index, cat in enumerate(raw.get("categories") or []):
        if not isinstance(cat, dict):
            continue
        code = cat.get("code")
        where = f"category {code}" if code else f"category #{index + 1}"
        if isinstance(code, str):
            if code in seen:
                problems.append(_cross(where, code, index, "code", "duplicate code", "duplicate_code"))
            seen.add(code)
        if cat.get("group") not in groups:
            problems.append(_cross(where, code, index, "group", f"unknown group '{cat.get('group')}'",
                                   "unknown_group", group=cat.get("group")))
        if departments is not None:
            codes = [("department", cat.get("department"))]
            codes += [("co_departments", d) for d in cat.get("co_departments") or []]
            for name, dept in codes:
                if dept and dept not in departments:
                    problems.append(_cross(where, code, index, name, f"unknown department '{dept}'",
                                           "unknown_department", department=dept))
    policies = raw.get("policies")
    verification = policies.get("verification") if isinstance(policies, dict) else None
    if isinstance(verification, dict) and isinstance(verification.get("categories"), dict):
        for code in verification["categories"]:
            if code not in seen:
                problems.append(Problem("policies, field verification.categories", f"unknown category '{code}'"))
    if departments is not None and isinstance(policies, dict):
        dept = policies.get("enforcement_department")
        if dept and dept not in departments:
            problems.append(Problem("policies, field enforcement_department", f"unknown department '{dept}'",
                                    "unknown_department", {"department": str(dept)},
                                    field="policies.enforcement_department"))
    return problems


def load(path: Path | str = DEFAULT_LIST_PATH, departments: set[str] | None = None) -> ResponsibilityList:
    """Read and validate a list file; raises :class:`InvalidList` with every problem."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidList([Problem(str(path), f"cannot read: {exc}")]) from exc
    except json.JSONDecodeError as exc:
        raise InvalidList([Problem(f"{path}:{exc.lineno}:{exc.colno}", exc.msg)]) from exc
    parsed, problems = check(raw, departments)
    if parsed is None:
        raise InvalidList(problems)
    return parsed
