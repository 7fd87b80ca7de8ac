"""The routing engine: the responsibility list compiled into a durable-rules ruleset.

Follows the measured lessons for durable-rules 2.0.28: a Host without background threads
(otherwise an action may run outside ``post`` and the decision comes back ``None``), one lock
around posting, a catch-all rule so no message is ever unhandled, a unique id per message,
a deep copy of definitions (``set_rulesets`` mutates them) and versioned ruleset names because
a name can never be registered twice.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable
from typing import Any

from durable import engine as dr_engine

from rules.responsibility_list import Category, ResponsibilityList

#: Rule priorities (lower fires first). Explicit data so the order of rules is never implicit.
PRIORITY_CATEGORY = 100
PRIORITY_CATCH_ALL = 10_000

Decision = dict[str, Any]


class _QuietHost(dr_engine.Host):
    """A durable-rules Host whose actions run only inside ``post`` (no dispatcher threads)."""

    def _run(self) -> None:  # noqa: D401 - intentionally does nothing
        return None


class RoutingEngine:
    """Decides tier, unit and department for an event's facts, explaining which rule fired."""

    _names = itertools.count(1)

    def __init__(self, responsibility_list: ResponsibilityList, *, city_centre: str = "CC-JS") -> None:
        self.list = responsibility_list
        self.version = responsibility_list.version
        self.city_centre = city_centre
        self._categories = responsibility_list.by_code()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._results: dict[str, Decision] = {}
        self._host = _QuietHost()
        # Versioned, process-unique name: durable-rules cannot unregister or re-register a name.
        self._ruleset = f"routing_{_safe(self.version)}_{next(self._names)}"
        self._host.set_rulesets({self._ruleset: copy.deepcopy(self._definition())})

    # ------------------------------------------------------------ compile
    def _definition(self) -> dict[str, Any]:
        rules: dict[str, Any] = {}
        for code, category in self._categories.items():
            rules[f"category:{code}"] = {
                "all": [{"m": {"category": code}}],
                "pri": PRIORITY_CATEGORY,
                "run": self._action(f"category:{code}", self._by_category(category)),
            }
        rules["catch-all"] = {
            # Matches every routing message. (A catch-all on "$ex id" hangs durable-rules 2.0.28.)
            "all": [{"m": {"kind": "routing"}}],
            "pri": PRIORITY_CATCH_ALL,
            "run": self._action("catch-all", self._unplaced),
        }
        return rules

    def _action(self, rule: str, decide: Callable[[dict[str, Any]], Decision]) -> Callable[[Any], None]:
        def run(c: Any) -> None:
            facts = {k: v for k, v in c.m.items() if k not in ("id", "sid", "kind")}
            decision = decide(facts)
            decision.setdefault("rule", rule)
            self._results[c.m["id"]] = decision

        return run

    # ------------------------------------------------------------ decisions
    def _by_category(self, category: Category) -> Callable[[dict[str, Any]], Decision]:
        def decide(facts: dict[str, Any]) -> Decision:
            unit = self._unit_for(category, facts)
            if unit is None:
                return self._triage(
                    facts,
                    f"category {category.code} needs a {category.tier} but the location is unknown",
                    category,
                )
            handling = category.deadlines.handling
            return {
                "placed": True,
                "tier": category.tier,
                "unit": unit,
                "department": category.department,
                "co_departments": list(category.co_departments),
                "category_name": category.name_zh,
                "reason": f"{category.code} {category.name_zh}: responsibility of the {category.tier}",
                "deadline_hours": category.deadlines.model_dump(),
                "priority": 1 if handling <= 4 else 2 if handling <= 16 else 3,
            }

        return decide

    def _unit_for(self, category: Category, facts: dict[str, Any]) -> str | None:
        if category.tier == "department":
            return f"D-{category.department}"
        if category.tier == "city":
            return self.city_centre
        value = facts.get(category.tier)
        return str(value) if value else None

    def _unplaced(self, facts: dict[str, Any]) -> Decision:
        category = facts.get("category") or ""
        reason = f"no rule places category '{category}'" if category else "no category given"
        return self._triage(facts, reason, None)

    def _triage(self, facts: dict[str, Any], reason: str, category: Category | None) -> Decision:
        street = facts.get("street")
        deadlines = (
            category.deadlines.model_dump()
            if category
            else {"dispatch": 1, "handling": 40, "verification": 8, "rating_window": 24}
        )
        return {
            "placed": False,
            "tier": "street" if street else "city",
            "unit": f"CC-{street}" if street else self.city_centre,
            "department": None,
            "co_departments": [],
            "category_name": category.name_zh if category else "",
            "reason": reason,
            "deadline_hours": deadlines,
            "priority": 2,
        }

    def decide(self, facts: dict[str, Any]) -> Decision:
        """Route one event. ``facts`` has at least ``category`` and the resolved grid/community/street."""
        with self._lock:  # one session, one poster at a time: durable-rules sessions are not thread-safe
            message_id = f"m{next(self._ids)}"
            message = {k: v for k, v in facts.items() if v is not None}
            message.update(id=message_id, sid="routing", kind="routing")
            self._host.post(self._ruleset, message)
            decision = self._results.pop(message_id)
        decision["list_version"] = self.version
        decision["facts"] = dict(facts)
        return decision

    def category(self, code: str) -> Category | None:
        """The category with ``code`` in this engine's list, if any."""
        return self._categories.get(code)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)
