"""API keys of integrations (issue 12, item 1): issued and revoked by an administrator, each named and
scoped to actions, stored only as the sha256 of the key.

A key is ``wl_<prefix>_<secret>``: ``prefix`` (8 characters, stored in the clear, unique) finds the row
with one index lookup, and the sha256 of the whole key is compared with the stored one in constant time
(``hmac.compare_digest``). The secret has 256 bits, so a plain hash is enough (no slow KDF is needed
against guessing; a leaked table gives no key). The key itself is shown once, when it is made.

Creation and revocation are audited with the administrator as actor (``apikey_create``,
``apikey_revoke``); every use is audited by the web with the integration as actor (``web/api_keys.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from store import models
from store.db import Database
from store.timeutil import utcnow
from store.users import audit

#: What a key may be used for: report (POST), read (its own reports), subscribe (webhooks).
SCOPES = ("report", "read", "subscribe")
#: A new key's scopes when none are named.
DEFAULT_SCOPES = ("report", "read")
#: An integration's name: what the audit and events carry.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_KEY = re.compile(r"^wl_([A-Za-z0-9]{8})_([A-Za-z0-9_\-]{20,100})$")


class ApiKeyError(ValueError):
    """A refused key operation: ``code`` names the reason (``name``, ``exists``, ``scope``, ``missing``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Integration:
    """What a valid key stands for: the integration's name and the scopes it was given."""

    name: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        """Whether the key was given ``scope``."""
        return scope in self.scopes

    @property
    def actor(self) -> str:
        """The audit's actor for this integration's actions."""
        return f"integration:{self.name}"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(scopes: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The scopes asked for, checked and in canonical order (the defaults when none)."""
    chosen = [s.strip() for s in (scopes or ()) if s.strip()]
    if not chosen:
        return DEFAULT_SCOPES
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise ApiKeyError("scope", f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in chosen)


async def create_key(db: Database, name: str, scopes: tuple[str, ...], actor: str) -> tuple[models.ApiKey, str]:
    """A new key for the integration ``name``: its row and the key itself (to show once)."""
    if not NAME_PATTERN.match(name or ""):
        raise ApiKeyError("name", "a name is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    scopes = parse_scopes(list(scopes))
    async with db.session() as session:
        if await session.get(models.ApiKey, name) is not None:
            raise ApiKeyError("exists", f"an integration named '{name}' exists (revoked keys keep their name)")
        prefix = secrets.token_hex(4)
        key = f"wl_{prefix}_{secrets.token_urlsafe(32)}"
        row = models.ApiKey(name=name, prefix=prefix, key_hash=_hash(key), scopes=",".join(scopes),
                            created_by=actor, created_at=utcnow())
        session.add(row)
        await session.commit()
        await session.refresh(row)
    await audit(db, actor, "apikey_create", name, ",".join(scopes))
    return row, key


async def list_keys(db: Database) -> list[models.ApiKey]:
    """Every key, revoked ones too, by name (never the key: only its hash is stored)."""
    async with db.session() as session:
        return list((await session.exec(select(models.ApiKey).order_by(col(models.ApiKey.name)))).all())


async def revoke_key(db: Database, name: str, actor: str) -> models.ApiKey:
    """Revoke the key of ``name`` (it is refused from now on); revoking twice changes nothing more."""
    async with db.session() as session:
        row = await session.get(models.ApiKey, name)
        if row is None:
            raise ApiKeyError("missing", f"no integration named '{name}'")
        if row.revoked_at is None:
            row.revoked_at, row.revoked_by = utcnow(), actor
            session.add(row)
            await session.commit()
            await session.refresh(row)
            await audit(db, actor, "apikey_revoke", name)
        return row


async def resolve(db: Database, key: str, now: datetime | None = None) -> Integration | None:
    """The integration of a presented key, or None when it is malformed, unknown, wrong or revoked."""
    match = _KEY.match(key or "")
    if match is None:
        return None
    async with db.session() as session:
        row = (await session.exec(select(models.ApiKey).where(models.ApiKey.prefix == match.group(1)))).first()
        if row is None or not hmac.compare_digest(row.key_hash, _hash(key)) or row.revoked_at is not None:
            return None
        row.last_used_at = now or utcnow()
        session.add(row)
        await session.commit()
        return Integration(row.name, frozenset(s for s in row.scopes.split(",") if s))
