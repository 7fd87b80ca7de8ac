"""Stored process definitions (issue 14), kept by store/versions.py per kind: a version stored once,
one active version of each kind, every upload and activation audited. The shipped definitions
(``processes/data``) become the first versions of their kinds when none is stored
(:func:`ensure_shipped`).
"""

from __future__ import annotations

import json
from functools import cache

from processes.definition import ProcessDefinition, parse, shipped
from store import models
from store.db import Database
from store.timeutil import utcnow
from store.versions import Versions

#: Parsed definitions by (kind, version): stored versions never change, so each parses once per process.
_PARSED: dict[tuple[str, str], ProcessDefinition] = {}

PROCESSES: Versions[models.ProcessVersion] = Versions(
    models.ProcessVersion, noun="process definition", action="process", detail=lambda row: row.title,
    group="kind")


def parsed(row: models.ProcessVersion) -> ProcessDefinition:
    """The stored definition as a model (it was checked when stored)."""
    key = (row.kind, row.version)
    if key not in _PARSED:
        _PARSED[key] = parse(json.loads(row.content))
    return _PARSED[key]


def content_of(definition: ProcessDefinition) -> str:
    """The text a definition is stored as (its JSON, as a file of it would hold)."""
    return json.dumps(definition.model_dump(mode="json", exclude_defaults=True), ensure_ascii=False, indent=1)


async def save(db: Database, definition: ProcessDefinition, actor: str, *, activate: bool) -> models.ProcessVersion:
    """Store a checked definition (a kind's version is stored once: another definition under it is
    refused with ValueError; the same one, however its file was laid out, is the same) and, when
    ``activate``, make it its kind's active one. Audited."""
    new = models.ProcessVersion(kind=definition.kind, version=definition.version, content=content_of(definition),
                                title=definition.name_zh[:100], uploaded_by=actor, uploaded_at=utcnow())
    return await PROCESSES.save(db, new, actor, activate=activate)


async def activate_stored(db: Database, kind: str, version: str, actor: str) -> models.ProcessVersion:
    """Make a stored version its kind's active one (LookupError when it is not stored). Audited."""
    return await PROCESSES.activate(db, version, actor, kind=kind)


async def get_version(db: Database, kind: str, version: str) -> models.ProcessVersion | None:
    """One stored version."""
    return await PROCESSES.get(db, version, kind=kind)


async def list_versions(db: Database, kind: str | None = None) -> list[models.ProcessVersion]:
    """The stored versions (of ``kind``, or of every kind), newest first."""
    return await PROCESSES.all(db, kind)


async def ensure_shipped(db: Database) -> None:
    """Store and activate (by ``system``) each shipped definition whose kind has no active version
    (one read when every kind has one: what the pages and starts pay each time)."""
    rows = await list_versions(db)
    active = {row.kind for row in rows if row.active}
    for definition in _shipped():
        if definition.kind in active:
            continue
        if any(r.kind == definition.kind and r.version == definition.version for r in rows):
            await activate_stored(db, definition.kind, definition.version, "system")
        else:
            await save(db, definition, "system", activate=True)


@cache
def _shipped() -> tuple[ProcessDefinition, ...]:
    """The shipped definitions, read and checked once per process (the files ship with the code)."""
    return tuple(shipped())


async def active_definitions(db: Database) -> dict[str, ProcessDefinition]:
    """The active definition of each kind (the shipped ones stored first when missing), by kind."""
    await ensure_shipped(db)
    rows = [row for row in await list_versions(db) if row.active]
    return {row.kind: parsed(row) for row in sorted(rows, key=lambda r: r.kind)}


async def active_definition(db: Database, kind: str) -> ProcessDefinition | None:
    """The active definition of ``kind``, if any."""
    return (await active_definitions(db)).get(kind)
