"""What an event, its handling tasks and its warnings count for: the counters of the assessment.

One pure function over the store's rows (``facts_of``), used by the projection after every change of
an event and by the rebuild (``wulian assessment rebuild``), so the rollups and a recount from the
events cannot disagree. A fact counts for the units of its place (``Place``); ``contributions`` is
what it adds to the daily rollups of each of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from rules.worktime import CITY_TZ, working_hours_between
from store import models

#: Every counter, with its bit in ``AssessmentFact.flags``. Append only: the bits are stored.
COUNTERS: dict[str, int] = {name: 1 << bit for bit, name in enumerate((
    # events, by the day they were reported
    "events", "closed", "closed_on_time", "closed_reworked", "closed_grassroots",
    "rated", "rated_ok", "rating_satisfied", "rating_basic", "rating_dissatisfied", "rating_default",
    # handling tasks, by the day they were created
    "tasks", "tasks_done", "tasks_on_time", "tasks_extended", "dispatches", "dispatches_kept",
    # warnings, by the day they fired
    "warnings_yellow", "warnings_red",
    # late handling tasks (a deadline passed before it ended), for "open past the deadline at the end"
    "tasks_late",
    # events merged into another as duplicates (合并), by the day they were reported
    "merged",
))}
#: Counters whose value is the sum of an amount (working hours) over the subjects that have it.
AMOUNTS = ("hours_dispatch", "hours_handling", "hours_verification", "hours_feedback")
#: Counters that are no rollup: computed at the moment asked for (``store.assessment``).
MOMENT_COUNTERS = ("tasks_overdue_open",)
#: Which kind of fact each counter is read from (drill-down lists).
KIND_OF: dict[str, str] = {
    "merged": "event",
    **{c: "event" for c in ("events", "closed", "closed_on_time", "closed_reworked", "closed_grassroots", "rated",
                            "rated_ok", "rating_satisfied", "rating_basic", "rating_dissatisfied", "rating_default")},
    **{c: "task" for c in ("tasks", "tasks_done", "tasks_on_time", "tasks_extended", "dispatches",
                           "dispatches_kept")},
    "warnings_yellow": "warning", "warnings_red": "warning",
    "tasks_late": "late", "tasks_overdue_open": "late",
    **{a: "event" for a in AMOUNTS},
}
#: The tiers whose closing counts as resolved at the grassroots (街道社区两级办结).
GRASSROOTS_TIERS = ("grid", "community", "street")
_RATING_COUNTER = {"satisfied": "rating_satisfied", "basically_satisfied": "rating_basic",
                   "dissatisfied": "rating_dissatisfied"}


@dataclass(frozen=True)
class UnitInfo:
    """What the facts need of a unit: its kind, tier and the chain up to the city."""

    kind: str
    tier: str
    ancestors: tuple[str, ...]  # itself first


#: Looks a unit up (None when the organisation does not know it).
Lookup = Callable[[str], UnitInfo | None]


@dataclass(frozen=True)
class Place:
    """The units below the city a fact counts for (the city counts every fact)."""

    grid: str | None = None
    community: str | None = None
    street: str | None = None
    department: str | None = None
    centre: str | None = None

    def units(self, city: str) -> list[str]:
        """Every unit whose rollups the fact adds to, the city first."""
        return [u for u in (city, self.grid, self.community, self.street, self.department, self.centre) if u]


#: The column of ``AssessmentFact`` that holds a unit of each kind (drill-down lists filter on it).
COLUMN_OF_KIND = {"grid": "grid", "community": "community", "street": "street", "department": "department",
                  "command_centre": "centre"}


def place_of_unit(code: str | None, lookup: Lookup) -> Place:
    """The place of a unit's own work: the grid, community, street above it, or its department or
    command centre."""
    info = lookup(code) if code else None
    if info is None:
        return Place()
    found: dict[str, str] = {}
    for anc in info.ancestors:
        anc_info = lookup(anc)
        column = COLUMN_OF_KIND.get(anc_info.kind) if anc_info else None
        if column and column not in found:
            found[column] = anc
    return Place(**found)


def local_day(moment: datetime) -> date:
    """The day of ``moment`` in the city (naive store times are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CITY_TZ).date()


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    start, end = _aware(start), _aware(end)
    if start is None or end is None:
        return None
    return round(working_hours_between(start, end), 4)


#: Makes a fact from its fields (``models.AssessmentFact``; a bulk writer may pass something lighter
#: with the same attributes, as ``store.demo_history`` does).
MakeFact = Callable[..., models.AssessmentFact]


def facts_of(event: models.Event, tasks: Sequence[models.Task], warnings: Iterable[models.SupervisionWarning],
             lookup: Lookup, make: MakeFact = models.AssessmentFact) -> list[models.AssessmentFact]:
    """The facts of one event as it stands in the store: the event's, one per handling task, one per
    yellow or red warning, and one per handling task that went past its deadline.

    A duplicate merged into another event counts only as ``merged``: its problem is the primary's, so
    it is no new event, nothing closed or handled, and its tasks (closed by the merge), warnings and
    late work count for nothing (they would lower the handling and on-time rates of a unit for work
    the primary does). An undone merge counts as before (the projection records the difference)."""
    if event.state == "merged":
        return [make(subject=event.event_id, event_id=event.event_id, kind="event", day=local_day(event.created_at),
                     category=event.category, flags=COUNTERS["merged"], amounts={},
                     **vars(_event_place(event, None, lookup)))]
    handling = sorted((t for t in tasks if t.kind == "handle"), key=lambda t: (t.created_at, t.task_id))
    facts = [_event_fact(event, handling, [t for t in tasks if t.kind == "verify"], warnings, lookup, make)]
    for task in handling:
        facts.extend(_task_facts(event, task, lookup, make))
    for warning in warnings:
        if warning.kind in ("yellow", "red"):
            place = place_of_unit(warning.unit, lookup)
            facts.append(make(
                subject=f"{event.event_id}#W{warning.seq}", event_id=event.event_id, kind="warning",
                day=local_day(warning.at), category=event.category, flags=COUNTERS[f"warnings_{warning.kind}"],
                **vars(place)))
    return facts


def _event_place(event: models.Event, last_unit: str | None, lookup: Lookup) -> Place:
    """An event counts for its place (grid, community, street), else for its handling unit's; for the
    department or command centre that handled it last too."""
    handler = place_of_unit(last_unit or event.unit, lookup)
    if event.grid or event.community or event.street:
        located = place_of_unit(event.grid or event.community or event.street, lookup)
        return Place(grid=located.grid, community=located.community, street=located.street,
                     department=handler.department, centre=handler.centre)
    return handler


def _event_fact(event: models.Event, handling: list[models.Task], verifying: list[models.Task],
                warnings: Iterable[models.SupervisionWarning], lookup: Lookup, make: MakeFact) -> models.AssessmentFact:
    done = [t for t in handling if t.status == "done"]
    last = done[-1] if done else (handling[-1] if handling else None)
    counters = ["events"]
    if event.state == "closed":
        counters.append("closed")
        if not any(w.kind in ("yellow", "red") for w in warnings):
            counters.append("closed_on_time")
        if event.rework_count > 0:
            counters.append("closed_reworked")
        info = lookup(last.unit) if last else None
        if info is not None and info.tier in GRASSROOTS_TIERS:
            counters.append("closed_grassroots")
        if event.rating is None and event.close_action == "accept_by_default":
            counters.append("rating_default")
    # The reporter's latest rating, closed or not (a dissatisfied rating sends the event back to work
    # and stays its rating until the next one).
    if event.rating in _RATING_COUNTER:
        counters += ["rated", _RATING_COUNTER[event.rating]]
        if event.rating != "dissatisfied":
            counters.append("rated_ok")
    amounts: dict[str, float] = {}
    claimed = [t.claimed_at for t in handling if t.claimed_at is not None]
    if claimed:
        amounts["hours_dispatch"] = _hours(event.created_at, min(claimed)) or 0.0
    spans = [_hours(t.claimed_at, t.completed_at) for t in done if t.claimed_at]
    if spans:
        amounts["hours_handling"] = round(sum(s or 0.0 for s in spans), 4)
    checked = [_hours(t.created_at, t.completed_at) for t in verifying if t.status == "done"]
    if checked:
        amounts["hours_verification"] = round(sum(c or 0.0 for c in checked), 4)
    passed = [t.completed_at for t in verifying if t.status == "done" and t.passed and t.completed_at]
    if event.state == "closed" and passed and event.closed_at is not None:
        amounts["hours_feedback"] = _hours(max(passed), event.closed_at) or 0.0
    return make(
        subject=event.event_id, event_id=event.event_id, kind="event", day=local_day(event.created_at),
        category=event.category, flags=_bits(counters), amounts=amounts,
        **vars(_event_place(event, last.unit if last else None, lookup)))


def _task_facts(event: models.Event, task: models.Task, lookup: Lookup, make: MakeFact,
                ) -> list[models.AssessmentFact]:
    place = place_of_unit(task.unit, lookup)
    counters = ["tasks"]
    due, completed = _aware(task.due_at), _aware(task.completed_at)
    if task.status == "done":
        counters.append("tasks_done")
        if due is None or (completed is not None and completed <= due):
            counters.append("tasks_on_time")
    if task.extended_hours > 0:
        counters.append("tasks_extended")
    if task.origin == "dispatch":
        counters.append("dispatches")
        if task.ended_by != "returned":
            counters.append("dispatches_kept")
    common = dict(event_id=event.event_id, day=local_day(task.created_at), category=event.category, **vars(place))
    facts = [make(subject=task.task_id, kind="task", flags=_bits(counters), **common)]
    ended = completed or _aware(task.ended_at)
    # Late: the workflow fired its deadline mark, or it ended after it (projected when it ended).
    if due is not None and (task.overdue_level is not None or (ended is not None and ended > due)):
        facts.append(make(subject=f"{task.task_id}#late", kind="late", flags=COUNTERS["tasks_late"],
                                           due_at=due, ended_at=ended, **common))
    return facts


def _bits(counters: Iterable[str]) -> int:
    flags = 0
    for counter in counters:
        flags |= COUNTERS[counter]
    return flags


def counters_of(flags: int) -> list[str]:
    """The counters a fact's ``flags`` hold."""
    return [name for name, bit in COUNTERS.items() if flags & bit]


#: A rollup key: unit, counter, day.
Key = tuple[str, str, date]


def contributions(fact: models.AssessmentFact, city: str) -> dict[Key, tuple[int, float]]:
    """What ``fact`` adds to the daily rollups: (count, amount) per unit, counter and day. Late facts
    add nothing (whether a task is open past its deadline depends on the moment asked for)."""
    if fact.kind == "late":
        return {}
    place = Place(grid=fact.grid, community=fact.community, street=fact.street, department=fact.department,
                  centre=fact.centre)
    out: dict[Key, tuple[int, float]] = {}
    values = [(name, 1, 0.0) for name in counters_of(fact.flags)]
    values += [(name, 1, float(amount)) for name, amount in sorted(fact.amounts.items())]
    for unit in place.units(city):
        for name, count, amount in values:
            out[(unit, name, fact.day)] = (count, amount)
    return out


def category_contributions(fact: models.AssessmentFact, city: str) -> dict[tuple[str, date, str], int]:
    """What an event's fact adds to the events per unit, day and category (a merged duplicate: nothing)."""
    if fact.kind != "event" or not fact.flags & COUNTERS["events"]:
        return {}
    place = Place(grid=fact.grid, community=fact.community, street=fact.street, department=fact.department,
                  centre=fact.centre)
    return {(unit, fact.day, fact.category): 1 for unit in place.units(city)}
