"""Keeping the organisation's people: creating and editing users, their roles and passwords, activating
and deactivating them, and the "1+X" stations of dispatched cadres, each change validated and audited in
the same transaction. Passwords are never written to the audit trail."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import models
from store.admin_common import AdminError, audit, changes
from store.db import Database
from store.passwords import password_problem
from store.sessions import end_user_sessions
from store.timeutil import utcnow
from store.users import ROLES, hash_password

#: Usernames: lower-case letters, digits, "_", "." and "-", starting with a letter or digit.
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
DISPLAY_NAME_MAX = 100

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
        audit(session, actor, "user_create", username,
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
    db: Database, actor: str, username: str, *, role: str, unit: str, display_name: str | None = None,
    party_member: bool | None = None,
) -> models.User:
    """Change a user's role, unit (and display name, party membership); the role must suit the unit.
    An administrator cannot take the admin role from themselves. A user who stops being a dispatched
    cadre loses their station. Audited as ``user_update`` with what changed."""
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
        if party_member is not None:
            user.party_member = party_member
        if role != "dispatched_cadre":
            user.stationed_street = None
        elif user.stationed_street and user.active:
            await _check_station_free(session, user, user.stationed_street)
        detail = changes(before, _user_fields(user))
        if detail:
            session.add(user)
            audit(session, actor, "user_update", username, detail)
            await session.commit()
            await session.refresh(user)
        return user


def _user_fields(user: models.User) -> dict[str, Any]:
    return {"display_name": user.display_name, "unit": user.unit, "role": user.role,
            "stationed_street": user.stationed_street, "active": user.active, "party_member": user.party_member}


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
        audit(session, actor, "password_reset", username, "password changed")
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
        audit(session, actor, "user_reactivate" if active else "user_deactivate", username,
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
        audit(session, actor, "cadre_station" if street else "cadre_unstation", username,
               f"stationed_street: {before!r} → {street!r}")
        await session.commit()
        await session.refresh(user)
        return user
