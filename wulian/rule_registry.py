"""The routing engines of the stored list versions: the active one for new events, older ones for
events in flight that started under them. A bounded cache, so reloads never grow without bound."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections import OrderedDict

from sqlalchemy.exc import IntegrityError

from rules.engine import RoutingEngine
from rules.responsibility_list import DEFAULT_LIST_PATH, ResponsibilityList, check
from store import rule_lists
from store.db import Database

#: Seconds between looks at which version is active (a hot change reaches workers this fast).
ACTIVE_CHECK_SECONDS = 5.0
#: Compiled engines kept at once (each holds a durable-rules ruleset).
MAX_ENGINES = 4


def parse_list(content: str) -> ResponsibilityList:
    """A stored list's text as a validated list (stored lists were validated on upload)."""
    parsed, problems = check(json.loads(content))
    if parsed is None:
        raise ValueError("; ".join(str(p) for p in problems))
    return parsed


async def ensure_active(db: Database) -> None:
    """Store the shipped list as the active version when no version is stored yet."""
    if await rule_lists.active_version(db) is not None:
        return
    content = await asyncio.to_thread(DEFAULT_LIST_PATH.read_text, encoding="utf-8")
    parsed = parse_list(content)
    await rule_lists.save_and_activate(db, parsed.version, content, len(parsed.categories), "system")


class EngineRegistry:
    """Routing engines by list version, the active version checked at most every few seconds."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._engines: OrderedDict[str, RoutingEngine] = OrderedDict()
        self._active: str | None = None
        self._checked = 0.0
        self._lock = asyncio.Lock()

    async def active(self) -> RoutingEngine:
        """The engine of the active version (new events route with it)."""
        if self._active is None or time.monotonic() - self._checked > ACTIVE_CHECK_SECONDS:
            row = await rule_lists.active_version(self.db)
            if row is None:
                try:
                    await ensure_active(self.db)
                except IntegrityError:  # another process stored it at the same moment
                    pass
                row = await rule_lists.active_version(self.db)
            assert row is not None
            self._active = row.version
            self._checked = time.monotonic()
        return await self.version(self._active)

    def refresh(self) -> None:
        """Look at the active version on the next call (after an activation in this process)."""
        self._active = None

    async def version(self, version: str) -> RoutingEngine:
        """The engine of a stored version (events in flight keep the version they started with)."""
        async with self._lock:
            engine = self._engines.get(version)
            if engine is None:
                row = await rule_lists.get_version(self.db, version)
                if row is None:
                    raise LookupError(f"list version {version} is not stored")
                engine = RoutingEngine(parse_list(row.content))
                self._engines[version] = engine
                if len(self._engines) > MAX_ENGINES:
                    while len(self._engines) > MAX_ENGINES:
                        self._engines.popitem(last=False)
                    # An engine sits in a reference cycle; its native ruleset is freed by its finalizer
                    # once collected (see RoutingEngine), so collect now rather than at some later time.
                    gc.collect()
            self._engines.move_to_end(version)
            return engine
