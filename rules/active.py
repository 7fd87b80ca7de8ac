"""Which responsibility list is active, and the routing engine built from it."""

from __future__ import annotations

from pathlib import Path

from rules.engine import RoutingEngine
from rules.responsibility_list import DEFAULT_LIST_PATH, load


def load_engine(path: Path | str | None = None, *, city_centre: str | None = None) -> RoutingEngine:
    """A routing engine for the list at ``path`` (default: the list shipped with the platform), for an
    organisation whose city command centre is ``city_centre`` (else each decision names it)."""
    return RoutingEngine(load(path or DEFAULT_LIST_PATH), city_centre=city_centre)
