"""Keeping the organisation and its people: creating and editing units, users, roles, passwords and
the "1+X" stations of dispatched cadres, each change validated and audited in the same transaction.

Every refusal is an :class:`AdminError` carrying a message-catalogue key (``admin.err.*``) and its
values, so the pages can answer in the visitor's language. Units are never deleted (events and tasks
refer to them) and never move to another parent. Passwords are never written to the audit trail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import models
from store.db import Database
from store.passwords import password_problem
from store.sessions import end_user_sessions
from store.timeutil import utcnow
from store.users import ROLES, hash_password

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
#: Usernames: lower-case letters, digits, "_", "." and "-", starting with a letter or digit.
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
NAME_ZH_MAX = 100
NAME_EN_MAX = 200
DISPLAY_NAME_MAX = 100
KEYWORD_MAX = 50
KEYWORDS_MAX = 30
#: Separators accepted between address keywords (Latin and Chinese commas, enumeration comma, newlines).
_KEYWORD_SPLIT = re.compile(r"[,，、;；\n\r]+")

#: The kinds of unit each role may belong to (admin: anywhere).
ROLE_UNIT_KINDS: dict[str, tuple[str, ...]] = {
    "grid_worker": ("grid",),
    "community_staff": ("community",),
    "street_staff": ("street",),
    "department_staff": ("department",),
    "dispatched_cadre": ("department",),
    "street_supervisor": ("command_centre",),
    "city_supervisor": ("command_centre", "city"),
}

#: The tier of command centre each supervisor role belongs to.
_CENTRE_TIER = {"street_supervisor": "street", "city_supervisor": "city"}


class AdminError(ValueError):
    """A refused change: ``key`` is a message-catalogue key, ``values`` fill its placeholders and
    ``field`` names the form field at fault (empty when the whole form is)."""

    def __init__(self, key: str, field: str = "", **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.field = field
        self.values = values


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


def _audit(session: AsyncSession, actor: str, action: str, target: str, detail: str) -> None:
    """An audit entry in the same transaction as the change it records."""
    session.add(models.AuditEntry(at=utcnow(), actor=actor, action=action, target=target, detail=detail))


def _changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """``field: old → new`` for each field that changed."""
    return "; ".join(f"{k}: {before[k]!r} → {after[k]!r}" for k in after if before.get(k) != after[k])


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
        _audit(session, actor, "unit_create", code, _describe_unit(unit))
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
        detail = _changes(before, _unit_fields(unit))
        if detail:
            session.add(unit)
            _audit(session, actor, "unit_update", code, detail)
            await session.commit()
            await session.refresh(unit)
        return unit


def _unit_fields(unit: models.Unit) -> dict[str, Any]:
    return {"name_zh": unit.name_zh, "name_en": unit.name_en, "lat": unit.lat, "lon": unit.lon,
            "address_keywords": list(unit.address_keywords), "stationed": unit.stationed}


# ---- users -------------------------------------------------------------------------------------


def _check_password(password: str, username: str) -> None:
    """The password policy (``store.passwords``) as an :class:`AdminError` on the password field."""
    problem = password_problem(password, username)
    if problem is not None:
        key, values = problem
        raise AdminError(key, "password", **values)


async def _unit_for_role(session: AsyncSession, unit_code: str, role: str) -> models.Unit:
    """The unit ``unit_code`` when it exists and suits ``role``."""
    if role not in ROLES:
        raise AdminError("admin.err.role", "role")
    if not unit_code:
        raise AdminError("admin.err.required", "unit")
    unit = await session.get(models.Unit, unit_code)
    if unit is None:
        raise AdminError("admin.err.unit_unknown", "unit", code=unit_code)
    kinds = ROLE_UNIT_KINDS.get(role)
    if kinds is not None and unit.kind not in kinds:
        raise AdminError("admin.err.role_unit", "unit", code=unit_code)
    if role == "dispatched_cadre" and not unit.stationed:
        raise AdminError("admin.err.not_stationed_department", "unit", code=unit_code)
    if unit.kind == "command_centre" and unit.tier != _CENTRE_TIER.get(role, unit.tier):
        raise AdminError("admin.err.role_unit", "unit", code=unit_code)  # a street's centre or the city's
    return unit


async def create_user(
    db: Database, actor: str, *, username: str, display_name: str, unit: str, role: str, password: str
) -> models.User:
    """Add a user (argon2 hash of the initial password, which must pass ``store.passwords``) after
    checking the username (format, unique), the unit (exists) and that the role suits the unit's kind
    (a dispatched cadre: a "1+X" department). Audited as ``user_create``, without the password."""
    username, display_name, unit = username.strip(), display_name.strip(), unit.strip()
    if not username:
        raise AdminError("admin.err.required", "username")
    if not USERNAME_RE.match(username):
        raise AdminError("admin.err.username", "username")
    if not display_name:
        raise AdminError("admin.err.required", "display_name")
    if len(display_name) > DISPLAY_NAME_MAX:
        raise AdminError("admin.err.too_long", "display_name", n=DISPLAY_NAME_MAX)
    async with db.session() as session:
        if await session.get(models.User, username) is not None:
            raise AdminError("admin.err.username_taken", "username", username=username)
        await _unit_for_role(session, unit, role)
        _check_password(password, username)
        user = models.User(username=username, display_name=display_name, unit=unit, role=role,
                           password_hash=hash_password(password))
        session.add(user)
        _audit(session, actor, "user_create", username,
               f"display_name={display_name!r}, unit={unit}, role={role}")
        try:
            await session.commit()
        except IntegrityError:
            raise AdminError("admin.err.username_taken", "username", username=username) from None
        await session.refresh(user)
        return user


async def _user(session: AsyncSession, username: str) -> models.User:
    user = await session.get(models.User, username)
    if user is None:
        raise LookupError(username)
    return user


async def update_user(
    db: Database, actor: str, username: str, *, role: str, unit: str, display_name: str | None = None
) -> models.User:
    """Change a user's role, unit (and display name); the role must suit the unit. An administrator
    cannot take the admin role from themselves. A user who stops being a dispatched cadre loses
    their station. Audited as ``user_update`` with what changed."""
    async with db.session() as session:
        user = await _user(session, username)
        unit = unit.strip()
        if username == actor and user.role == "admin" and role != "admin":
            raise AdminError("admin.err.self_demote", "role")
        await _unit_for_role(session, unit, role)
        before = _user_fields(user)
        if display_name is not None:
            display_name = display_name.strip()
            if not display_name:
                raise AdminError("admin.err.required", "display_name")
            if len(display_name) > DISPLAY_NAME_MAX:
                raise AdminError("admin.err.too_long", "display_name", n=DISPLAY_NAME_MAX)
            user.display_name = display_name
        user.role, user.unit = role, unit
        if role != "dispatched_cadre":
            user.stationed_street = None
        elif user.stationed_street and user.active:
            await _check_station_free(session, user, user.stationed_street)
        detail = _changes(before, _user_fields(user))
        if detail:
            session.add(user)
            _audit(session, actor, "user_update", username, detail)
            await session.commit()
            await session.refresh(user)
        return user


def _user_fields(user: models.User) -> dict[str, Any]:
    return {"display_name": user.display_name, "unit": user.unit, "role": user.role,
            "stationed_street": user.stationed_street, "active": user.active}


async def reset_password(db: Database, actor: str, username: str, password: str) -> None:
    """Give a user a new password (the policy of ``store.passwords``); audited as
    ``password_reset`` without the password. Every session the user has open ends (their session
    rows are deleted, and tokens issued before the reset are refused)."""
    _check_password(password, username)
    async with db.session() as session:
        user = await _user(session, username)
        user.password_hash = hash_password(password)
        user.sessions_valid_after = utcnow().replace(microsecond=0)
        session.add(user)
        await end_user_sessions(session, username)
        _audit(session, actor, "password_reset", username, "password changed")
        await session.commit()


async def set_active(db: Database, actor: str, username: str, active: bool) -> models.User:
    """Deactivate (no login; every open session ends for good, so a later reactivation brings none
    back) or reactivate a user; an administrator cannot deactivate themselves. Audited as
    ``user_deactivate`` / ``user_reactivate``."""
    async with db.session() as session:
        user = await _user(session, username)
        if not active and username == actor:
            raise AdminError("admin.err.self_deactivate", "active")
        if user.active == active:
            return user
        if active and user.role == "dispatched_cadre" and user.stationed_street:
            await _check_station_free(session, user, user.stationed_street)
        user.active = active
        if not active:
            user.sessions_valid_after = utcnow().replace(microsecond=0)
            await end_user_sessions(session, username)
        session.add(user)
        _audit(session, actor, "user_reactivate" if active else "user_deactivate", username,
               f"active: {not active} → {active}")
        await session.commit()
        await session.refresh(user)
        return user


async def _check_station_free(session: AsyncSession, user: models.User, street: str) -> None:
    """Routing hands a department's cases at a street to one cadre: refuse a second active one."""
    others = (await session.exec(select(models.User).where(
        models.User.unit == user.unit, models.User.stationed_street == street,
        models.User.role == "dispatched_cadre", models.User.active == True,  # noqa: E712
        models.User.username != user.username,
    ))).all()
    if others:
        raise AdminError("admin.err.station_taken", "street", street=street, username=others[0].username)


async def station(db: Database, actor: str, username: str, street: str | None) -> models.User:
    """Station a dispatched cadre of a "1+X" department at ``street`` (a unit of kind street), or
    un-station them (``street`` empty). Routing sees the change at the next decision
    (``store.queries.cadres_at`` reads the store). Audited as ``cadre_station`` / ``cadre_unstation``."""
    street = (street or "").strip() or None
    async with db.session() as session:
        user = await _user(session, username)
        if user.role != "dispatched_cadre":
            raise AdminError("admin.err.not_cadre", "street")
        department = await session.get(models.Unit, user.unit)
        if street is not None:
            if department is None or not department.stationed:
                raise AdminError("admin.err.not_stationed_department", "street", code=user.unit)
            target = await session.get(models.Unit, street)
            if target is None or target.kind != "street":
                raise AdminError("admin.err.street_unknown", "street", code=street)
            if user.active:
                await _check_station_free(session, user, street)
        if user.stationed_street == street:
            return user
        before = user.stationed_street
        user.stationed_street = street
        session.add(user)
        _audit(session, actor, "cadre_station" if street else "cadre_unstation", username,
               f"stationed_street: {before!r} → {street!r}")
        await session.commit()
        await session.refresh(user)
        return user


def units_of_kinds(units: Iterable[models.Unit], *kinds: str) -> list[models.Unit]:
    """The units of the given kinds, by code."""
    return sorted((u for u in units if u.kind in kinds), key=lambda u: u.code)
