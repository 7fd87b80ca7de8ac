"""What the web app holds for its lifetime: settings, store, Temporal client, list and org tree."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from temporalio.client import Client

from rules.engine import RoutingEngine
from rules.suggest import CategorySuggester
from store.db import Database
from store.org import OrgTree
from wulian import temporal_connect
from wulian.rule_registry import EngineRegistry
from wulian.settings import Settings

ORG_CACHE_SECONDS = 30.0


@dataclass
class AppContext:
    """Shared services of the web app (one per process)."""

    settings: Settings
    db: Database
    engines: EngineRegistry = field(init=False)
    _client: Client | None = None
    _client_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _org: OrgTree | None = None
    _org_at: float = 0.0
    _suggester: CategorySuggester | None = None
    _suggester_version: str | None = None

    def __post_init__(self) -> None:
        self.engines = EngineRegistry(self.db)

    async def engine(self) -> RoutingEngine:
        """The engine of the active list version (categories, validation of reports and triage)."""
        return await self.engines.active()

    async def suggester(self) -> CategorySuggester:
        """Category suggestions for the active list, rebuilt when the active version changes."""
        engine = await self.engine()
        suggester = self._suggester
        if suggester is None or self._suggester_version != engine.version:
            suggester = CategorySuggester(engine.list)
            self._suggester, self._suggester_version = suggester, engine.version
        return suggester

    async def temporal(self) -> Client:
        """The Temporal client, connected on first use (the web starts even if Temporal is down)."""
        async with self._client_lock:
            if self._client is None:
                self._client = await temporal_connect.connect(self.settings)
            return self._client

    def set_client(self, client: Client) -> None:
        """Use an existing client (tests)."""
        self._client = client

    async def org(self) -> OrgTree:
        """The organisation tree, cached for a short time."""
        if self._org is None or time.monotonic() - self._org_at > ORG_CACHE_SECONDS:
            self._org = await OrgTree.load(self.db)
            self._org_at = time.monotonic()
        return self._org

    def invalidate_org(self) -> None:
        """Forget the cached tree, so the next :meth:`org` reads the units again (after an
        administrator adds or edits a unit: this process sees it at once, other web processes
        within ``ORG_CACHE_SECONDS``)."""
        self._org = None

    async def temporal_ok(self) -> bool:
        """Whether Temporal answers."""
        try:
            client = await asyncio.wait_for(self.temporal(), timeout=3)
            return bool(await asyncio.wait_for(client.service_client.check_health(), timeout=3))
        except Exception:  # noqa: BLE001 - health check: any failure means unhealthy
            return False
