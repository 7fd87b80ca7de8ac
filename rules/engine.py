"""The routing engine: the responsibility list compiled into a durable-rules ruleset.

Rules over the facts of an event (category, severity, location, repeats, returns, escalations,
law-enforcement need, stationed "1+X" cadres, source), tried in the order of the list's explicit
priorities; the first rule that matches decides, and its name is the explanation.

Follows the measured lessons for durable-rules 2.0.28: a Host without background threads
(otherwise an action may run outside ``post`` and the decision comes back ``None``), one lock
around posting, a catch-all rule so no message is ever unhandled, a unique id per message,
a deep copy of definitions (``set_rulesets`` mutates them) and uniquely named rulesets because
a name can never be registered twice.
"""

from __future__ import annotations

import copy
import itertools
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import durable_rules_engine
from durable import engine as dr_engine

from rules.reasons import reason as reason_fields
from rules.responsibility_list import Category, ResponsibilityList
from workflows.policy import TIER_UP, department_unit, street_centre

Decision = dict[str, Any]
Facts = dict[str, Any]

#: One tier up, for escalations (``workflows.policy.TIER_UP``: street goes to the department if the
#: category has one).
LOCAL_TIERS = ("grid", "community", "street")
#: The one durable-rules session every routing message is posted to.
ROUTING_SID = "routing"


class _QuietHost(dr_engine.Host):
    """A durable-rules Host whose actions run only inside ``post`` (no dispatcher threads)."""

    def _run(self) -> None:
        return None


def cadre_fact(department: str) -> str:
    """The fact naming the cadre of ``department`` stationed at the event's street."""
    return f"cadre_{department}"


class RoutingEngine:
    """Decides tier, unit, department, deadlines and priority for an event's facts."""

    _names = itertools.count(1)

    def __init__(self, responsibility_list: ResponsibilityList, *, city_centre: str | None = None) -> None:
        self.list = responsibility_list
        self.version = responsibility_list.version
        self.policies = responsibility_list.policies
        #: The city's command centre, when this engine always routes for one organisation; otherwise
        #: each ``decide`` names it (the routing activity, from the organisation tree). No demo default.
        self.city_centre = city_centre
        self._centre: str | None = None  # the city centre of the decision being made (under the lock)
        self._categories = responsibility_list.by_code()
        self._skip_facts: dict[str, str] = {}  # rule name → the fact that switches it off (exclusions)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._results: dict[str, Decision] = {}
        self._host = _QuietHost()
        # Unique name per engine: durable-rules cannot unregister or re-register a name.
        self._ruleset = f"routing_{_safe(self.version)}_{next(self._names)}"
        self._host.set_rulesets({self._ruleset: copy.deepcopy(self._definition())})
        # durable-rules never frees a ruleset's native memory (Ruleset has no __del__): free it when
        # the engine is closed, or collected (it sits in a reference cycle, so at the next gc run).
        self._closed = False
        handle = self._host.get_ruleset(self._ruleset)._handle
        self._release = weakref.finalize(self, _free_native_ruleset, handle, (ROUTING_SID,))
        self._release.atexit = False  # the process is ending anyway

    def close(self) -> None:
        """Free the native ruleset now (e.g. when a new list version is activated); idempotent.

        After ``close`` the engine refuses to decide: its native handle may be reused by a new ruleset.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._release()
            self._host._ruleset_directory.clear()
            self._host._ruleset_list.clear()

    # ------------------------------------------------------------ compile
    def _definition(self) -> dict[str, Any]:
        pri = self.policies.priorities
        rules: dict[str, Any] = {}

        def add(name: str, condition: dict[str, Any], priority: int, decide: Callable[[Facts], Decision]) -> None:
            if name != "catch-all":  # a rule whose unit is excluded is switched off by a fact and the list asked again
                skip = self._skip_facts[name] = f"skip_{len(self._skip_facts) + 1}"
                condition = {"$and": [condition, {"$nex": {skip: 1}}]}
            rules[name] = {"all": [{"m": condition}], "pri": priority, "run": self._action(name, decide)}

        add("returned", {"$gte": {"returned": self.policies.return_threshold}}, pri["returned"], self._returned)
        add("escalated", {"$gte": {"escalated": 1}}, pri["escalated"], self._escalated)
        add("repeat", {"$gte": {"repeat": self.policies.repeat_threshold}}, pri["repeat"], self._repeat)
        add("enforcement", {"needs_enforcement": True}, pri["enforcement"], self._enforcement)
        add("camera", {"$and": [{"source": "camera"}, {"$ex": {"grid": 1}}]}, pri["camera"], self._camera)
        for code, category in self._categories.items():
            top = len(category.severity_scale)
            if top >= 2:
                add(f"severity:{code}", {"$and": [{"category": code}, {"$gte": {"severity": top}}]},
                    pri["severity"], self._severity(category))
            if category.tier == "department" and category.department:
                add(f"cadre:{code}", {"$and": [{"category": code}, {"$ex": {cadre_fact(category.department): 1}}]},
                    pri["cadre"], self._by_category(category, "cadre"))
            add(f"category:{code}", {"category": code}, pri["category"], self._by_category(category, "category"))
        # Matches every message. (A catch-all on "$ex id" hangs durable-rules 2.0.28.)
        add("catch-all", {"kind": "routing"}, pri["catch_all"], self._unplaced)
        return rules

    def _action(self, rule: str, decide: Callable[[Facts], Decision]) -> Callable[[Any], None]:
        def run(c: Any) -> None:
            facts = {k: v for k, v in c.m.items() if k not in ("id", "sid", "kind")}
            decision = decide(facts)
            decision.setdefault("rule", rule)
            self._results[c.m["id"]] = decision

        return run

    # ------------------------------------------------------------ rule actions
    def _by_category(self, category: Category, why: str) -> Callable[[Facts], Decision]:
        def decide(facts: Facts) -> Decision:
            reason = reason_fields("category", category=category.code, name=category.name_zh, tier=category.tier)
            if why == "cadre":
                reason = reason_fields("cadre", category=category.code, name=category.name_zh, tier=category.tier,
                                       department=category.department, street=facts.get("street"))
            return self._place(category, category.tier, facts, reason)

        return decide

    def _severity(self, category: Category) -> Callable[[Facts], Decision]:
        def decide(facts: Facts) -> Decision:
            tier = self._up(category, category.tier, 1)
            level = category.severity_scale[-1]
            reason = reason_fields("severity", category=category.code, level=level, tier=tier)
            decision = self._place(category, tier, facts, reason)
            decision["priority"] = 1
            return decision

        return decide

    def _with_category(self, facts: Facts, then: Callable[[Category], Decision]) -> Decision:
        category = self._categories.get(str(facts.get("category") or ""))
        if category is None:  # a generic rule matched, but without a known category nothing places it
            return {**self._unplaced(facts), "rule": "catch-all"}
        return then(category)

    def _escalated(self, facts: Facts) -> Decision:
        steps = int(facts.get("escalated") or 0)

        def then(category: Category) -> Decision:
            tier = self._up(category, category.tier, steps)
            why = reason_fields("escalated", steps=steps, from_tier=category.tier, tier=tier)
            return self._place(category, tier, facts, why)

        return self._with_category(facts, then)

    def _repeat(self, facts: Facts) -> Decision:
        def then(category: Category) -> Decision:
            tier = self._up(category, category.tier, 1)
            days = self.policies.repeat_window_days
            reason = reason_fields("repeat", repeat=facts.get("repeat"), days=days, from_tier=category.tier, tier=tier)
            decision = self._place(category, tier, facts, reason)
            decision["priority"] = min(decision["priority"], 2)
            return decision

        return self._with_category(facts, then)

    def _enforcement(self, facts: Facts) -> Decision:
        def then(category: Category) -> Decision:
            own = category.law_enforcement and category.department
            department = category.department if own else self.policies.enforcement_department
            reason = reason_fields("enforcement", department=department)
            return self._place(category, "department", facts, reason, department=department)

        return self._with_category(facts, then)

    def _camera(self, facts: Facts) -> Decision:
        def then(category: Category) -> Decision:
            decision = self._place(category, "grid", facts, reason_fields("camera"))
            decision["priority"] = 1
            return decision

        return self._with_category(facts, then)

    def _returned(self, facts: Facts) -> Decision:
        category = self._categories.get(str(facts.get("category") or ""))
        return self._triage(facts, reason_fields("returned", returned=facts.get("returned")), category)

    def _unplaced(self, facts: Facts) -> Decision:
        category = facts.get("category") or ""
        reason = reason_fields("unknown_category", category=category) if category else reason_fields("no_category")
        return self._triage(facts, reason, None)

    # ------------------------------------------------------------ helpers
    def _up(self, category: Category, tier: str, steps: int) -> str:
        for _ in range(max(0, steps)):
            nxt = TIER_UP[tier]
            if nxt == "department" and not category.department:
                nxt = "city"
            tier = nxt
        return tier

    def _place(
        self, category: Category, tier: str, facts: Facts, reason: dict[str, Any], *, department: str | None = None
    ) -> Decision:
        """Resolve ``tier`` to a unit with the event's location, or triage when it is unknown."""
        department = department or category.department
        assignee = None
        if tier == "department":
            unit: str | None = department_unit(department) if department else None
            assignee = facts.get(cadre_fact(department)) if department else None
        elif tier == "city":
            unit = self._city_centre()
        else:
            unit = facts.get(tier) or None
        if unit is None:
            return self._triage(facts, reason_fields("no_location", category=category.code, tier=tier), category)
        handling = category.deadlines.handling
        priority = 1 if handling <= 4 else 2 if handling <= 16 else 3
        if facts.get("source") == "hotline":
            priority = min(priority, 2)
        return {
            "placed": True,
            "tier": tier,
            "unit": unit,
            "department": department,
            "assignee": assignee,
            "co_departments": list(category.co_departments),
            "category_name": category.name_zh,
            **reason,  # reason_code, reason_params and the English reason (rules/reasons.py)
            "deadline_hours": category.deadlines.model_dump(),
            "priority": priority,
        }

    def verification_units(self, facts: Facts, city_centre: str | None = None) -> list[str]:
        """Who may verify (核查) the event, in order: the unit of its place at the list's verification
        tier for its category, then the tiers above (the street's command centre, the city's).
        The workflow takes the first that did not handle it (``Decision.verifier``)."""
        tier = self.policies.verification.tier_for(str(facts.get("category") or ""))
        street = facts.get("street")
        chain = [facts.get("grid"), facts.get("community"), street_centre(str(street)) if street else None,
                 city_centre or self.city_centre]
        start = ("grid", "community", "street", "city").index(tier)
        return [str(unit) for unit in chain[start:] if unit]

    def _triage(self, facts: Facts, reason: dict[str, Any], category: Category | None) -> Decision:
        street = facts.get("street")
        deadlines = (
            category.deadlines.model_dump()
            if category
            else {"dispatch": 1, "handling": 40, "verification": 8, "rating_window": 24}
        )
        return {
            "placed": False,
            "tier": "street" if street else "city",
            "unit": street_centre(street) if street else self._city_centre(),
            "department": None,
            "assignee": None,
            "co_departments": [],
            "category_name": category.name_zh if category else "",
            **reason,
            "deadline_hours": deadlines,
            "priority": 2,
        }

    def _city_centre(self) -> str:
        if not self._centre:
            raise RuntimeError("routing needs the city's command centre (the organisation tree has none)")
        return self._centre

    # ------------------------------------------------------------ public
    def decide(self, facts: Facts, exclude: Iterable[str] = (), *, city_centre: str | None = None) -> Decision:
        """Route one event. ``facts`` has ``category`` and what is known of location and history;
        ``city_centre`` is the organisation's city command centre (default: the engine's).

        ``exclude``: units that returned the event (退回: "not ours"). A rule that would place it in
        one of them is switched off and the list decides again, so the next rule that matches
        decides; when every rule that matches names an excluded unit, the catch-all sends it to
        triage at the command centre. The decision lists the units it ``excluded``."""
        excluded = [unit for unit in dict.fromkeys(exclude) if unit]
        centre = city_centre or self.city_centre
        message = {k: v for k, v in facts.items() if v is not None and k not in ("id", "sid", "kind")}
        skipped: list[str] = []
        while True:
            decision = self._post(message, centre)
            if not (decision["placed"] and decision["unit"] in excluded):
                break
            skipped.append(decision["rule"])
            message[self._skip_facts[decision["rule"]]] = 1
        if excluded:
            decision["excluded"] = excluded
            if skipped and not decision["placed"] and decision["rule"] == "catch-all":
                decision.update(reason_fields("returned_everywhere", units=", ".join(excluded)))
        decision["list_version"] = self.version
        decision["facts"] = dict(facts)
        decision["verification"] = self.verification_units(facts, centre)
        return decision

    def _post(self, message: dict[str, Any], centre: str | None) -> Decision:
        with self._lock:  # one session, one poster at a time: durable-rules sessions are not thread-safe
            if self._closed:
                raise RuntimeError(f"routing engine for list {self.version} is closed")
            message_id = f"m{next(self._ids)}"
            self._centre = centre  # the actions run inside post, under the lock
            try:
                self._host.post(self._ruleset, {**message, "id": message_id, "sid": ROUTING_SID, "kind": "routing"})
            finally:
                self._centre = None
            return self._results.pop(message_id)

    def category(self, code: str) -> Category | None:
        """The category with ``code`` in this engine's list, if any."""
        return self._categories.get(code)


def _free_native_ruleset(handle: int, sids: tuple[str, ...]) -> None:
    """Free a native ruleset: first each session's state (``delete_ruleset`` alone leaks it), then the ruleset."""
    for sid in sids:
        try:
            durable_rules_engine.delete_state(handle, sid)
        except durable_rules_engine.error:
            pass  # error 309: the session never received a message, so it has no state
    durable_rules_engine.delete_ruleset(handle)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)
