"""Keeping the organisation's units: creating and editing streets, communities, grids, departments and
command centres, each change validated and audited in the same transaction. Units are never deleted
(events and tasks refer to them) and never move to another parent."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import models
from store.admin_common import AdminError, audit, changes
from store.db import Database

#: Kinds of unit an administrator may add (the city itself comes with the organisation file).
UNIT_KINDS = ("street", "community", "grid", "department", "command_centre")
#: The kind of parent each kind needs; streets and departments hang under the city.
PARENT_KIND = {"street": "city", "department": "city", "community": "street", "grid": "community",
               "command_centre": "street"}
#: The tier a new unit gets from its kind (a command centre added here is a street's).
TIER_OF_KIND = {"street": "street", "community": "community", "grid": "grid", "department": "department",
                "command_centre": "street"}
#: Unit codes: upper-case letters and digits in groups joined by single dashes ("HS01-G5", "D-ZF").
CODE_RE = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$")
CODE_MAX = 32
NAME_ZH_MAX = 100
NAME_EN_MAX = 200
KEYWORD_MAX = 50
KEYWORDS_MAX = 30
#: Separators accepted between address keywords (Latin and Chinese commas, enumeration comma, newlines).
_KEYWORD_SPLIT = re.compile(r"[,，、;；\n\r]+")


@dataclass
class UnitDraft:
    """What an administrator types for a new unit (or, without code, kind and parent, for an edit)."""

    name_zh: str
    name_en: str
    code: str = ""
    kind: str = ""
    parent: str | None = None
    lat: float | None = None
    lon: float | None = None
    address_keywords: list[str] = field(default_factory=list)
    stationed: bool = False


def parse_keywords(text: str) -> list[str]:
    """Address keywords from a comma-, 、- or line-separated text, blanks and repeats dropped."""
    seen: list[str] = []
    for part in _KEYWORD_SPLIT.split(text or ""):
        word = part.strip()
        if word and word not in seen:
            seen.append(word)
    return seen


def parse_coordinate(text: str, name: str) -> float | None:
    """A latitude or longitude typed in a form (empty → None); ``name`` is ``lat`` or ``lon``."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise AdminError(f"admin.err.{name}", name) from None
    if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
        raise AdminError(f"admin.err.{name}", name)
    return value


# ---- units -------------------------------------------------------------------------------------


def _check_names(draft: UnitDraft) -> None:
    if not draft.name_zh.strip():
        raise AdminError("admin.err.required", "name_zh")
    if not draft.name_en.strip():
        raise AdminError("admin.err.required", "name_en")
    if len(draft.name_zh.strip()) > NAME_ZH_MAX:
        raise AdminError("admin.err.too_long", "name_zh", n=NAME_ZH_MAX)
    if len(draft.name_en.strip()) > NAME_EN_MAX:
        raise AdminError("admin.err.too_long", "name_en", n=NAME_EN_MAX)


def _check_place(kind: str, draft: UnitDraft) -> None:
    """Coordinates and keywords belong to grids, the stationed flag to departments."""
    if kind != "grid" and (draft.lat is not None or draft.lon is not None or draft.address_keywords):
        raise AdminError("admin.err.grid_only", "lat")
    if kind != "department" and draft.stationed:
        raise AdminError("admin.err.department_only", "stationed")
    if (draft.lat is None) != (draft.lon is None):
        raise AdminError("admin.err.lat_lon_pair", "lat" if draft.lat is None else "lon")
    if draft.lat is not None and not -90 <= draft.lat <= 90:
        raise AdminError("admin.err.lat", "lat")
    if draft.lon is not None and not -180 <= draft.lon <= 180:
        raise AdminError("admin.err.lon", "lon")
    if len(draft.address_keywords) > KEYWORDS_MAX:
        raise AdminError("admin.err.keywords_count", "address_keywords", n=KEYWORDS_MAX)
    for word in draft.address_keywords:
        if len(word) > KEYWORD_MAX:
            raise AdminError("admin.err.keyword_long", "address_keywords", word=word[:20], n=KEYWORD_MAX)


async def _city(session: AsyncSession) -> str | None:
    """The code of the city unit (the root the organisation file brings), if exactly one exists."""
    cities = (await session.exec(select(models.Unit).where(models.Unit.kind == "city"))).all()
    return cities[0].code if len(cities) == 1 else None


async def create_unit(db: Database, actor: str, draft: UnitDraft) -> models.Unit:
    """Add a unit after checking its code (format, unique), its kind, its parent (exists, right kind)
    and its place data; audited as ``unit_create`` by ``actor``."""
    code = draft.code.strip()
    kind = draft.kind.strip()
    if not code:
        raise AdminError("admin.err.required", "code")
    if len(code) > CODE_MAX or not CODE_RE.match(code):
        raise AdminError("admin.err.code", "code", n=CODE_MAX)
    if kind not in UNIT_KINDS:
        raise AdminError("admin.err.kind", "kind")
    _check_names(draft)
    _check_place(kind, draft)
    async with db.session() as session:
        if await session.get(models.Unit, code) is not None:
            raise AdminError("admin.err.code_taken", "code", code=code)
        parent_code = (draft.parent or "").strip() or None
        want = PARENT_KIND[kind]
        if parent_code is None and want == "city":
            parent_code = await _city(session)
        if parent_code is None:
            raise AdminError("admin.err.parent_required", "parent", kind=want)
        parent = await session.get(models.Unit, parent_code)
        if parent is None:
            raise AdminError("admin.err.parent_unknown", "parent", code=parent_code)
        if parent.kind != want:
            raise AdminError("admin.err.parent_kind", "parent", code=parent_code, kind=want)
        unit = models.Unit(
            code=code, kind=kind, tier=TIER_OF_KIND[kind], parent=parent_code,
            name_zh=draft.name_zh.strip(), name_en=draft.name_en.strip(),
            lat=draft.lat, lon=draft.lon, address_keywords=list(draft.address_keywords),
            stationed=draft.stationed,
        )
        session.add(unit)
        audit(session, actor, "unit_create", code, _describe_unit(unit))
        try:
            await session.commit()
        except IntegrityError:  # the same code added at the same moment by someone else
            raise AdminError("admin.err.code_taken", "code", code=code) from None
        await session.refresh(unit)
        return unit


def _describe_unit(unit: models.Unit) -> str:
    parts = [f"kind={unit.kind}", f"parent={unit.parent}", f"name_zh={unit.name_zh!r}", f"name_en={unit.name_en!r}"]
    if unit.lat is not None:
        parts.append(f"lat={unit.lat}, lon={unit.lon}")
    if unit.address_keywords:
        parts.append(f"address_keywords={unit.address_keywords!r}")
    if unit.stationed:
        parts.append("stationed=True")
    return ", ".join(parts)


async def update_unit(db: Database, actor: str, code: str, draft: UnitDraft) -> models.Unit:
    """Change a unit's names, coordinates and keywords (grids) or "1+X" flag (departments); the code,
    kind and parent never change. Audited as ``unit_update`` with what changed. A department with
    active cadres stationed at streets keeps its flag until they are un-stationed."""
    async with db.session() as session:
        unit = await session.get(models.Unit, code)
        if unit is None:
            raise LookupError(code)
        _check_names(draft)
        _check_place(unit.kind, draft)
        if unit.stationed and not draft.stationed:
            stationed = (await session.exec(select(models.User).where(
                models.User.unit == code, models.User.stationed_street != None,  # noqa: E711
                models.User.active == True,  # noqa: E712
            ))).all()
            if stationed:
                raise AdminError("admin.err.has_cadres", "stationed", n=len(stationed))
        before = _unit_fields(unit)
        unit.name_zh, unit.name_en = draft.name_zh.strip(), draft.name_en.strip()
        if unit.kind == "grid":
            unit.lat, unit.lon, unit.address_keywords = draft.lat, draft.lon, list(draft.address_keywords)
        if unit.kind == "department":
            unit.stationed = draft.stationed
        detail = changes(before, _unit_fields(unit))
        if detail:
            session.add(unit)
            audit(session, actor, "unit_update", code, detail)
            await session.commit()
            await session.refresh(unit)
        return unit


def _unit_fields(unit: models.Unit) -> dict[str, Any]:
    return {"name_zh": unit.name_zh, "name_en": unit.name_en, "lat": unit.lat, "lon": unit.lon,
            "address_keywords": list(unit.address_keywords), "stationed": unit.stationed}


def units_of_kinds(units: Iterable[models.Unit], *kinds: str) -> list[models.Unit]:
    """The units of the given kinds, by code."""
    return sorted((u for u in units if u.kind in kinds), key=lambda u: u.code)

