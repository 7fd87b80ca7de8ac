"""A candidate responsibility list beside the active one, over the same simulated year.

Every report of the plan (same seed: same reports, same actors' decisions) is routed by the real
routing engine (``rules.engine``, durable-rules) of each list, with the facts the routing activity
gathers (placement of the grid, source, repeats of other reporters in the grid within the list's
window, the "1+X" cadres stationed at the street), and then handled by the same model as the
workflow run: the first unit returns (re-decided with the returning unit excluded), escalates
(re-decided with the escalation counted) or lets the task climb the ladder (a red warning) as the
event's draws say; the handler is late when its draw says so, or when its unit is overloaded (its
utilisation over the year, from the workload the list gives it and its people: the consequence of a
list that sends a street more than it can do). Nothing runs on Temporal here: what differs between
the lists is routing and load, and both are decided by the list.

The figures per unit are those of :class:`UnitFigures`; the same table can be read from a store a
workflow run wrote (``summary.unit_figures``), so both modes print through :func:`differences`.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from rules.engine import RoutingEngine, cadre_fact
from rules.responsibility_list import ResponsibilityList
from store.org import OrgTree
from workflows import policy
from wulian.simulation.plan import GRASSROOTS, PlannedEvent

#: Person-hours of work one handling task takes on average (what loads a unit's people).
EFFORT_HOURS = 1.5
#: Working hours per person over a year (250 days of 8 h), scaled to the plan's span.
YEAR_HOURS = 2_000.0
#: Utilisation beyond which tasks start being late, and the utilisation at which all are.
LOAD_KNEE, LOAD_FULL = 0.6, 1.6


@dataclass
class UnitFigures:
    """One unit's year: handling tasks, how many on time, escalations away from it, and for units with
    an area (grids, communities, streets) the events located there and how many ended at the grassroots."""

    tier: str = ""
    workload: int = 0
    on_time: int = 0
    escalations: int = 0
    area_events: int = 0
    area_grassroots: int = 0

    @property
    def on_time_rate(self) -> float | None:
        """On-time share of the handling tasks."""
        return self.on_time / self.workload if self.workload else None

    @property
    def grassroots_share(self) -> float | None:
        """Share of the area's events resolved at grid, community or street tier."""
        return self.area_grassroots / self.area_events if self.area_events else None


@dataclass
class Figures:
    """Every unit's figures and the city's totals."""

    units: dict[str, UnitFigures] = field(default_factory=lambda: defaultdict(UnitFigures))
    events: int = 0
    grassroots: int = 0
    escalations: int = 0

    def total(self) -> UnitFigures:
        """The city as one row."""
        out = UnitFigures(tier="city", area_events=self.events, area_grassroots=self.grassroots,
                          escalations=self.escalations)
        for row in self.units.values():
            out.workload += row.workload
            out.on_time += row.on_time
        return out


def _facts(event: PlannedEvent, org: OrgTree, repeat: int, cadres: Mapping[str, Mapping[str, str]],
           returned: int = 0, escalated: int = 0) -> dict[str, object]:
    placement = org.place_grid(event.grid)
    facts: dict[str, object] = {
        "category": event.category, "grid": placement.grid, "community": placement.community,
        "street": placement.street, "located_by": placement.how, "source": event.source, "severity": 1,
        "needs_enforcement": False, "repeat": repeat, "returned": returned, "escalated": escalated,
    }
    for department, username in cadres.get(placement.street or "", {}).items():
        facts[cadre_fact(department)] = username
    return facts


def _repeats(events: Iterable[PlannedEvent], window_days: int) -> list[int]:
    """For each event, the other reporters of its category in its grid within the window before it."""
    seen: dict[tuple[str, str], list[tuple[object, str]]] = defaultdict(list)
    out = []
    window = timedelta(days=window_days)
    for event in events:
        earlier = seen[(event.category, event.grid)]
        since = event.at - window
        out.append(len({phone for at, phone in earlier if at >= since and phone != event.reporter_phone}))  # type: ignore[operator]
        earlier.append((event.at, event.reporter_phone))
    return out


def _unit_tier(org: OrgTree, unit: str) -> str:
    info = org.units.get(unit)
    return info.tier if info is not None else ""


def figures(lst: ResponsibilityList, events: list[PlannedEvent], org: OrgTree,
            cadres: Mapping[str, Mapping[str, str]], people: Mapping[str, int], seed: int, days: int) -> Figures:
    """The year of ``events`` under ``lst``: routing by its engine, handling by the model above."""
    engine = RoutingEngine(lst, city_centre=org.city_centre())
    try:
        return _figures(engine, lst, events, org, cadres, people, seed, days)
    finally:
        engine.close()


def _figures(engine: RoutingEngine, lst: ResponsibilityList, events: list[PlannedEvent], org: OrgTree,
             cadres: Mapping[str, Mapping[str, str]], people: Mapping[str, int], seed: int, days: int) -> Figures:
    repeats = _repeats(events, lst.policies.repeat_window_days)
    centre = org.city_centre()
    # Who handles each event in the end, and who let it go on the way.
    finals: list[str] = []
    steps: list[list[str]] = []
    for event, repeat in zip(events, repeats, strict=True):
        d = event.draws
        decision = engine.decide(_facts(event, org, repeat, cadres))
        unit = decision["unit"]
        path = [unit]
        if d.action == "return":
            again = engine.decide(_facts(event, org, repeat, cadres, returned=1), exclude=[unit], city_centre=centre)
            unit = again["unit"]
            path.append(unit)
        elif d.action == "escalate" or d.stuck:
            if d.stuck:  # the red warning: one step up the ladder
                placement = org.place_grid(event.grid)
                ladder = policy.ladder([(placement.grid or "", "grid"), (placement.community or "", "community"),
                                        (placement.street or "", "street")], centre)
                unit = policy.ladder_up(ladder, unit)
            else:
                unit = engine.decide(_facts(event, org, repeat, cadres, escalated=1), city_centre=centre)["unit"]
            path.append(unit)
        finals.append(unit)
        steps.append(path)
    out = Figures()
    load: dict[str, int] = defaultdict(int)
    for path in steps:
        for unit in path:
            load[unit] += 1
    span = YEAR_HOURS * days / 365
    for index, (event, path, final) in enumerate(zip(events, steps, finals, strict=True)):
        out.events += 1
        for n, unit in enumerate(path):
            row = out.units[unit]
            row.tier = row.tier or _unit_tier(org, unit)
            row.workload += 1
            if n < len(path) - 1:  # it left this unit: returned, escalated or climbed
                if event.draws.action != "return":
                    row.escalations += 1
                    out.escalations += 1
                continue
            utilisation = load[unit] * EFFORT_HOURS / (max(1, people.get(unit, 1)) * span)
            overload = min(1.0, max(0.0, (utilisation - LOAD_KNEE) / (LOAD_FULL - LOAD_KNEE)))
            late = event.draws.late_hours > 0 and n == 0 or random.Random(f"load/{seed}/{index}").random() < overload
            row.on_time += 0 if late else 1
        grassroots = _unit_tier(org, final) in GRASSROOTS
        out.grassroots += grassroots
        placement = org.place_grid(event.grid)
        for area in (placement.grid, placement.community, placement.street):
            if area:
                row = out.units[area]
                row.tier = row.tier or _unit_tier(org, area)
                row.area_events += 1
                row.area_grassroots += grassroots
    return out


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _delta_pct(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return ""
    return f"{(b - a) * 100:+.1f}"


@dataclass(frozen=True)
class Difference:
    """One row of the comparison: a unit (or the city) under the active and the candidate list."""

    unit: str
    tier: str
    active: UnitFigures
    candidate: UnitFigures

    @property
    def workload_change(self) -> int:
        """Handling tasks added (positive) or taken away under the candidate."""
        return self.candidate.workload - self.active.workload

    @property
    def changed(self) -> bool:
        """Whether anything of the unit differs."""
        a, c = self.active, self.candidate
        return (a.workload, a.on_time, a.escalations, a.area_grassroots) != (
            c.workload, c.on_time, c.escalations, c.area_grassroots)

    def cells(self) -> list[str]:
        """The printed cells: unit, tier, workload, grassroots share, on-time rate, escalations."""
        a, c = self.active, self.candidate
        return [self.unit, self.tier, f"{a.workload} → {c.workload} ({self.workload_change:+d})",
                f"{_pct(a.grassroots_share)} → {_pct(c.grassroots_share)} "
                f"{_delta_pct(a.grassroots_share, c.grassroots_share)}",
                f"{_pct(a.on_time_rate)} → {_pct(c.on_time_rate)} {_delta_pct(a.on_time_rate, c.on_time_rate)}",
                f"{a.escalations} → {c.escalations} ({c.escalations - a.escalations:+d})"]


HEADERS = ("unit", "tier", "workload", "grassroots share", "on-time rate", "escalations")


def differences(active: Figures, candidate: Figures, *, all_units: bool = False) -> tuple[list[Difference], Difference]:
    """The units whose figures differ (all of them with ``all_units``), by workload change, and the total."""
    rows = []
    for unit in sorted(set(active.units) | set(candidate.units)):
        a, c = active.units.get(unit, UnitFigures()), candidate.units.get(unit, UnitFigures())
        row = Difference(unit, a.tier or c.tier, a, c)
        if all_units or row.changed:
            rows.append(row)
    rows.sort(key=lambda r: (-abs(r.workload_change), r.unit))
    return rows, Difference("TOTAL", "city", active.total(), candidate.total())
