"""A realistic past for the demo and the bench: events of the months before, written straight into the
store as the projection would have left them (``seed_history``).

Each event lives a simulated life on the city's working-time scale (working hours from a fixed
day, so deadlines and durations are what ``rules.worktime`` counts): reported on a working day
mostly, in working hours mostly; placed by its category's tier (the active responsibility list;
a few categories and grids much more frequent); dispatched, sometimes returned and placed again,
sometimes extended, handled mostly on time, sometimes late (a yellow warning at the deadline) and
now and then so late that the red warning escalates it up the ladder; verified (a failed
verification is a rework), rated (satisfied, basically satisfied, dissatisfied and reworked, or
accepted by default when the window runs out), closed. What has not happened by ``now`` is cut
off: the last days' events are still open, and a few older ones are stuck past their deadline.

The rows are Event, Task, SupervisionWarning, a short TimelineEntry trail, and the assessment's
facts (``assessment.facts.facts_of`` over the same rows, in memory) with their rollups summed as
``store.assessment.rebuild`` sums them (tests/test_assessment_rollups.py checks the two agree).
Everything goes in with bulk inserts, one transaction per batch of events.

Event ids are ``EV-H`` + nine digits (real workflows' ids are ``EV-<stamp>-…`` or ``EV-X…``), in
report order; receipt codes are drawn by ``store.receipts.random_code`` and unique in the store.
"""

from __future__ import annotations

import bisect
import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import func, insert, select
from sqlmodel import col

from assessment import facts as F
from rules.responsibility_list import DEFAULT_LIST_PATH
from rules.worktime import CITY_TZ, is_working_day
from store import assessment, models, rule_lists
from store.db import Database
from store.org import OrgTree
from store.receipts import random_code
from store.timeutil import utcnow

#: Events per transaction.
BATCH = 2_000
#: The id prefix of generated events (never that of a real workflow).
PREFIX = "EV-H"
#: Where reports come from, with their weights.
SOURCES = (("grid_patrol", 38), ("hotline", 32), ("portal", 14), ("camera", 9), ("wechat", 7))
#: How a rating ends: satisfied, basically satisfied, dissatisfied (reworked once), accepted by default.
RATINGS = (("satisfied", 66), ("basically_satisfied", 17), ("dissatisfied", 3), ("default", 14))
#: Share of events whose first handling unit returns them (dispatch accuracy about 96%).
RETURN_SHARE = 0.035
#: Share of handling tasks with an approved extension.
EXTENSION_SHARE = 0.03
#: Share of verifications that fail (a rework).
VERIFY_FAIL_SHARE = 0.025
#: Share of events stuck: nobody completes the handling task (open past its deadline at the end).
STUCK_SHARE = 0.003
#: Share voided by a supervisor (duplicates, not a matter for the platform), and closed by one.
VOID_SHARE = 0.004
SUPERVISOR_CLOSE_SHARE = 0.006
#: The share of events whose category is a department's or the city's (the rest is handled at the
#: grassroots: Jiangshan's 97.3%).
UPPER_SHARE = 0.022
#: Working hours after the deadline before the red warning escalates (workflows.policy.GRACE_HOURS).
GRACE = 8.0
PHRASES = ("请尽快处理", "影响居民出行", "多次出现", "附近居民反映", "已持续数日", "存在安全隐患", "希望相关部门处理",
           "现场拍照上报", "群众意见较大", "夜间尤为明显")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗毛郑"

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------------- working time
class WorkClock:
    """The city's working time as one scale: ``at(h)`` is the moment ``h`` working hours after the
    start of ``first``, ``hours(moment)`` the inverse (a moment outside working time maps to the next
    working moment). Differences on this scale equal ``rules.worktime.working_hours_between``."""

    PERIODS = ((8.5, 12.0), (13.5, 18.0))
    DAY_HOURS = 8.0

    def __init__(self, first: date, last: date) -> None:
        self.first = first
        self.days: list[date] = []
        self.midnights: list[datetime] = []
        #: Per calendar day from ``first``: the index of its working day, or of the next one.
        self.next_index: list[int] = []
        day = first
        while day <= last:
            self.next_index.append(len(self.days))
            if is_working_day(day):
                self.days.append(day)
                self.midnights.append(datetime.combine(day, time(0), CITY_TZ).astimezone(UTC))
            day += timedelta(days=1)
        self.working = [is_working_day(first + timedelta(days=i)) for i in range(len(self.next_index))]

    @property
    def span(self) -> float:
        """Working hours from the first to past the last day."""
        return len(self.days) * self.DAY_HOURS

    def at(self, hours: float) -> datetime:
        """The moment ``hours`` working hours after the start (whole seconds)."""
        index = min(int(hours // self.DAY_HOURS), len(self.days) - 1)
        offset = hours - index * self.DAY_HOURS
        clock = 8.5 + offset if offset < 3.5 else 13.5 + (offset - 3.5)
        return self.midnights[index] + timedelta(seconds=round(clock * 3600))

    def hours(self, moment: datetime) -> float:
        """The working hours from the start to ``moment`` (its next working moment)."""
        local = moment.astimezone(CITY_TZ)
        n = (local.date() - self.first).days
        n = max(0, min(n, len(self.next_index) - 1))
        index = self.next_index[n]
        if not self.working[n]:
            return index * self.DAY_HOURS
        clock = local.hour + local.minute / 60 + local.second / 3600
        if clock <= 8.5:
            offset = 0.0
        elif clock <= 12.0:
            offset = clock - 8.5
        elif clock <= 13.5:
            offset = 3.5
        elif clock <= 18.0:
            offset = 3.5 + clock - 13.5
        else:
            offset = 8.0
        return index * self.DAY_HOURS + offset


# --------------------------------------------------------------------------------------- the city
@dataclass
class _Grid:
    code: str
    community: str
    street: str
    lat: float
    lon: float
    keywords: list[str]
    name: str


@dataclass
class _City:
    """The organisation and the list as the generator needs them."""

    org: OrgTree
    city: str
    centre: str
    grids: list[_Grid]
    grid_weights: list[float]
    categories: list[dict[str, Any]]
    category_weights: list[float]
    verification_tiers: dict[str, str]
    default_verification: str
    users: dict[str, list[tuple[str, str]]]
    street_centres: dict[str, str] = field(default_factory=dict)

    def user(self, unit: str, rng: random.Random) -> tuple[str, str]:
        """Someone of ``unit`` (username, display name), else of the nearest unit above it."""
        for code in self.org.ancestors(unit):
            people = self.users.get(code)
            if people:
                return people[0] if len(people) == 1 else rng.choice(people)
        return ("system", "系统")

    def up(self, unit: str, grid: _Grid) -> str:
        """The next unit up the supervision ladder: grid → community → street → the city's centre."""
        if unit == grid.code:
            return grid.community
        if unit == grid.community:
            return grid.street
        return self.centre

    def verifier(self, category: str, handler: str, grid: _Grid) -> str:
        """Who verifies the work of ``handler``: the first unit of the chain from the category's
        verification tier that did not handle it (as ``Decision.verifier``)."""
        tier = self.verification_tiers.get(category, self.default_verification)
        chain = [grid.code, grid.community, self.street_centres.get(grid.street, grid.street), self.centre]
        start = ("grid", "community", "street", "city").index(tier) if tier in ("grid", "community", "street",
                                                                               "city") else 0
        return next((u for u in chain[start:] if u != handler), handler)


async def _list_content(db: Database) -> dict[str, Any]:
    row = await rule_lists.active_version(db)
    text = row.content if row is not None else DEFAULT_LIST_PATH.read_text(encoding="utf-8")
    return cast(dict[str, Any], json.loads(text))


def skewed(n: int, rng: random.Random, hot: int, heat: float) -> list[float]:
    """``n`` weights: ``hot`` of them ``heat`` times more frequent, the rest spread lognormally."""
    weights = [rng.lognormvariate(0, 0.5) for _ in range(n)]
    for i in rng.sample(range(n), min(hot, n)):
        weights[i] *= heat
    return weights


def category_weights(tiers: list[str], rng: random.Random) -> list[float]:
    """How often each category (by its tier) is reported: a few grassroots hotspots take a large
    share; departments' and the city's categories share :data:`UPPER_SHARE` (the demo history and
    ``wulian simulate`` alike)."""
    local = [i for i, tier in enumerate(tiers) if tier in ("grid", "community", "street")]
    upper = [i for i, tier in enumerate(tiers) if tier not in ("grid", "community", "street")]
    local_w = skewed(len(local), rng, hot=6, heat=25.0)
    upper_w = skewed(len(upper), rng, hot=3, heat=6.0)
    weights = [0.0] * len(tiers)
    for i, w in zip(local, local_w, strict=True):
        weights[i] = w / sum(local_w) * (1 - UPPER_SHARE)
    for i, w in zip(upper, upper_w, strict=True):
        weights[i] = w / sum(upper_w) * UPPER_SHARE
    return weights


async def _city(db: Database, org: OrgTree, rng: random.Random) -> _City:
    lst = await _list_content(db)
    city = assessment.city_of(org)
    centre = next((c for c, u in org.units.items() if u.kind == "command_centre" and u.parent == city), city)
    street_centres = {u.parent: c for c, u in org.units.items()
                      if u.kind == "command_centre" and u.parent and u.parent != city}
    grids = []
    for code, unit in sorted(org.units.items()):
        if unit.kind != "grid" or unit.parent is None:
            continue
        community = unit.parent
        street = org.units[community].parent or city
        grids.append(_Grid(code, community, street, unit.lat or 28.74, unit.lon or 118.62,
                           list(unit.address_keywords) or [unit.name_zh], unit.name_zh))
    if not grids:
        raise ValueError("the organisation has no grids: load it first (store.seed.load_organisation)")
    # Categories: a few grassroots hotspots take a large share; departments' and the city's share
    # is small (most of what residents report is settled at the grassroots).
    cats = [c for c in lst["categories"] if c.get("tier") in ("grid", "community", "street", "department", "city")]
    weights = category_weights([c["tier"] for c in cats], rng)
    verification = lst.get("policies", {}).get("verification", {})
    users: dict[str, list[tuple[str, str]]] = defaultdict(list)
    user = models.User
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(col(user.username), col(user.display_name), col(user.unit))
                                   .where(col(user.active).is_(True), col(user.role) != "admin")
                                   .order_by(user.username))).all()
    for username, display_name, unit_code in rows:
        users[unit_code].append((username, display_name))
    return _City(org=org, city=city, centre=centre, grids=grids, grid_weights=skewed(len(grids), rng, 5, 5.0),
                 categories=cats, category_weights=weights,
                 verification_tiers=dict(verification.get("categories", {})),
                 default_verification=verification.get("tier", "grid"), users=dict(users),
                 street_centres=street_centres)


# ------------------------------------------------------------------------------------- one event
#: The hours of the day reports come in, by weight (a morning and an afternoon peak).
HOUR_WEIGHTS = (1, 0.5, 0.3, 0.3, 0.4, 1, 3, 7, 12, 14, 13, 10, 6, 6, 10, 12, 11, 9, 7, 6, 5, 4, 3, 2)


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0, sigma))


@dataclass
class _Life:
    """One event's simulated rows, with times on the working-hour scale (``w``) or as moments."""

    event: dict[str, Any]
    tasks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    ratings: list[tuple[datetime, str]] = field(default_factory=list)


class _Simulator:
    def __init__(self, city: _City, clock: WorkClock, rng: random.Random, now: datetime) -> None:
        self.city, self.clock, self.rng, self.now = city, clock, rng, now
        self.sources = [s for s, _ in SOURCES]
        self.source_w = [w for _, w in SOURCES]
        self.ratings = [r for r, _ in RATINGS]
        self.rating_w = [w for _, w in RATINGS]

    # The simulation writes everything as if it happened, then ``_cut`` drops what lies after now.
    def life(self, event_id: str, receipt: str, reported: datetime) -> _Life:
        rng, city, clock = self.rng, self.city, self.clock
        grid = rng.choices(city.grids, city.grid_weights)[0]
        cat = rng.choices(city.categories, city.category_weights)[0]
        deadlines = cat.get("deadlines", {})
        handling_h = float(deadlines.get("handling", 8))
        verify_h = float(deadlines.get("verification", 4))
        window_h = float(deadlines.get("rating_window", 24))
        tier = cat["tier"]
        department = f"D-{cat['department']}" if cat.get("department") else None
        if department is not None and department not in city.org.units:
            department = None
        first_unit = {"grid": grid.code, "community": grid.community, "street": grid.street,
                      "department": department or city.centre, "city": city.centre}[tier]
        source = rng.choices(self.sources, self.source_w)[0]
        place = rng.choice(grid.keywords)
        address = f"{place}{rng.randint(1, 200)}号附近" if rng.random() < 0.8 else place
        description = f"{address}{cat['name_zh']}，{rng.choice(PHRASES)}"
        if source == "grid_patrol":
            reporter_name, phone = city.user(grid.code, rng)[1], ""
        else:
            reporter_name = f"{rng.choice(SURNAMES)}先生" if rng.random() < 0.5 else f"{rng.choice(SURNAMES)}女士"
            phone = f"1{rng.choice('3578')}{rng.randint(0, 999999999):09d}"
        handling_priority = 1 if handling_h <= 4 else 2 if handling_h <= 16 else 3
        priority = min(handling_priority, 2) if source == "hotline" else handling_priority
        event: dict[str, Any] = {
            "event_id": event_id, "receipt_code": receipt, "source": source, "category": cat["code"],
            "category_name": cat.get("name_zh", ""), "description": description, "address": address,
            "lat": round(grid.lat + rng.uniform(-0.0015, 0.0015), 6),
            "lon": round(grid.lon + rng.uniform(-0.0015, 0.0015), 6),
            "grid": grid.code, "community": grid.community, "street": grid.street,
            "reporter_name": reporter_name, "reporter_phone": phone, "tier": tier, "unit": first_unit,
            "department": department if tier == "department" else None, "priority": priority,
            "rework_count": 0, "returned_count": 0, "escalated_count": 0, "rating": None, "rating_comment": "",
            "created_at": reported, "closed_at": None, "close_action": "",
            "search_text": models.search_text(description, address),
        }
        life = _Life(event)
        t0 = clock.hours(reported)
        self._step(life, "report", reporter_name or source, "reporter", reporter_name, None, "intake", reported,
                   note=description[:200])
        self._step(life, "route", "rules", "rule", "", "intake", "dispatched", reported, note=f"→ {first_unit}")
        if rng.random() < VOID_SHARE:
            task = self._task(life, "handle", first_unit, "dispatch", t0, handling_h)
            at = clock.at(t0 + rng.uniform(0.2, 4))
            task.update(status="cancelled", ended_at=at, ended_by="voided")
            sup = city.user(city.street_centres.get(grid.street, city.centre), rng)
            self._step(life, "void", sup[0], "user", sup[1], "dispatched", "voided", at, note="重复上报")
            return self._cut(life)
        stuck = rng.random() < STUCK_SHARE
        unit, origin, t = first_unit, "dispatch", t0
        if rng.random() < RETURN_SHARE and tier in ("grid", "community"):
            task = self._task(life, "handle", unit, origin, t, handling_h)
            claimed = t + _lognormal(rng, 0.4, 0.8)
            worker = city.user(unit, rng)
            self._claim(life, task, claimed, worker)
            asked = claimed + rng.uniform(0.2, 3)
            approved = asked + _lognormal(rng, 0.8, 0.7)
            sup = city.user(city.street_centres.get(grid.street, city.centre), rng)
            self._step(life, "request_return", worker[0], "user", worker[1], "handling", "return_requested",
                       clock.at(asked), note="不属于本单位职责")
            task.update(status="cancelled", ended_at=clock.at(approved), ended_by="returned")
            self._step(life, "approve_return", sup[0], "user", sup[1], "return_requested", "rerouting",
                       clock.at(approved), note="同意退回")
            life.event["returned_count"] = 1
            choices = [g.code for g in city.grids if g.community == grid.community and g.code != unit]
            unit = (rng.choice(choices) if choices and rng.random() < 0.5 else
                    grid.community if unit != grid.community else grid.street)
            life.event["unit"], life.event["tier"] = unit, city.org.units[unit].tier
            self._step(life, "route", sup[0], "user", sup[1], "rerouting", "dispatched", clock.at(approved),
                       note=f"→ {unit}")
            t = approved
        # Handling, verification and rating until it closes; a failed verification or a dissatisfied
        # rating sends it back to the unit that handled it.
        dissatisfied_once = False
        while True:
            unit, t = self._handle(life, unit, origin, t, handling_h, grid, stuck)
            if t == math.inf:
                return self._cut(life)
            verifier = city.verifier(cat["code"], unit, grid)
            vt = self._task(life, "verify", verifier, "", t, verify_h)
            vworker = city.user(verifier, rng)
            claimed = t + _lognormal(rng, 0.5, 0.9)
            done = claimed + _lognormal(rng, 0.4, 0.8)
            vt.update(status="done", claimed_by=vworker[0], claimed_at=clock.at(claimed), completed_at=clock.at(done))
            if rng.random() < VERIFY_FAIL_SHARE:
                vt.update(passed=False, result="现场核查未通过")
                self._step(life, "verify_fail", vworker[0], "user", vworker[1], "verification", "dispatched",
                           clock.at(done), note="核查未通过，返工")
                life.event["rework_count"] += 1
                origin, t = "rework", done
                continue
            vt.update(passed=True, result="现场核查通过")
            self._step(life, "verify_pass", vworker[0], "user", vworker[1], "verification", "feedback",
                       clock.at(done))
            if rng.random() < SUPERVISOR_CLOSE_SHARE:
                sup = city.user(city.street_centres.get(grid.street, city.centre), rng)
                at = clock.at(done + rng.uniform(0.5, 8))
                self._close(life, "close", at, (sup[0], "user", sup[1]))
                return self._cut(life)
            outcome = rng.choices(self.ratings, self.rating_w)[0]
            if dissatisfied_once and outcome == "dissatisfied":
                outcome = "basically_satisfied"
            if outcome == "default":
                at = clock.at(done + window_h)
                self._close(life, "accept_by_default", at, ("timer", "timer", "计时器"))
                return self._cut(life)
            rated_at = clock.at(done + min(window_h - 0.1, _lognormal(rng, 3, 1.0)))
            life.ratings.append((rated_at, outcome))
            if outcome == "dissatisfied":
                dissatisfied_once = True
                life.event["rework_count"] += 1
                life.event["rating_comment"] = "问题没有解决"
                self._step(life, "rework", "reporter", "reporter", reporter_name, "feedback", "dispatched", rated_at,
                           note="不满意，要求返工")
                origin, t = "rework", clock.hours(rated_at)
                continue
            self._close(life, "rate", rated_at, ("reporter", "reporter", reporter_name))
            return self._cut(life)

    def _handle(self, life: _Life, unit: str, origin: str, t: float, hours: float, grid: _Grid,
                stuck: bool) -> tuple[str, float]:
        """One handling task and, when the red warning escalates it, the tasks after it; returns the
        unit that completed it and when (inf: nobody did)."""
        rng, clock, city = self.rng, self.clock, self.city
        while True:
            task = self._task(life, "handle", unit, origin, t, hours)
            due = t + hours
            claimed = t + _lognormal(rng, 0.4, 0.9)
            worker = city.user(unit, rng)
            # Most work ends well within the deadline; about 7% after it, 1% after the grace too.
            took = math.inf if stuck else _lognormal(rng, 0.33 * hours, 0.75)
            done = claimed + took
            if claimed < due + GRACE:
                self._claim(life, task, claimed, worker)
            asked = claimed + rng.uniform(0.05, 0.5) * hours
            if rng.random() < EXTENSION_SHARE and asked + 0.5 < min(done, due):
                extra = rng.choice((8, 16, 24))
                sup = city.user(city.street_centres.get(grid.street, city.centre), rng)
                self._step(life, "request_extension", worker[0], "user", worker[1], None, None, clock.at(asked),
                           note=f"+{extra}h 需协调")
                self._step(life, "approve_extension", sup[0], "user", sup[1], None, None, clock.at(asked + 0.5))
                due += extra
                task.update(extension_hours=extra, extended_hours=extra)
            task["due_at"] = clock.at(due)
            for pct in (50, 80):
                mark = t + (due - t) * pct / 100
                if done > mark:
                    self._warn(life, "reminder", task, clock.at(mark), f"{pct}% of the time used")
            if done <= due:
                self._complete(life, task, done, worker)
                return unit, done
            self._warn(life, "yellow", task, clock.at(due), "deadline passed: urging notice (督办)")
            task["overdue_level"] = "yellow"
            self._step(life, "urge", "timer", "timer", "计时器", None, None, clock.at(due),
                       note=f"{task['task_id']} overdue (yellow)")
            if done <= due + GRACE:
                self._complete(life, task, done, worker)
                return unit, done
            target = city.up(unit, grid)
            if target == unit:  # the top of the ladder: done late, or still open
                if done < math.inf:
                    self._complete(life, task, done, worker)
                return unit, done
            at = clock.at(due + GRACE)
            self._warn(life, "red", task, at, f"escalated to {target} (red)")
            task.update(overdue_level="red", status="cancelled", ended_at=at, ended_by="escalated")
            state = "handling" if claimed < due + GRACE else "dispatched"
            self._step(life, "escalate_overdue", "timer", "timer", "计时器", state, "dispatched", at,
                       note=f"overdue: {unit} → {target}")
            life.event["escalated_count"] += 1
            life.event["unit"], life.event["tier"] = target, city.org.units[target].tier
            unit, origin, t = target, "escalation", due + GRACE
            stuck = stuck and rng.random() < 0.7

    # ----------------------------------------------------------------------------------- rows
    def _task(self, life: _Life, kind: str, unit: str, origin: str, t: float, hours: float) -> dict[str, Any]:
        task = {"task_id": f"{life.event['event_id']}.T{len(life.tasks) + 1}", "event_id": life.event["event_id"],
                "kind": kind, "unit": unit, "status": "open", "created_at": self.clock.at(t),
                "due_at": self.clock.at(t + hours), "origin": origin, "claimed_by": None, "claimed_at": None,
                "completed_at": None, "ended_at": None, "ended_by": "", "passed": None, "result": None,
                "extension_hours": 0, "extended_hours": 0, "overdue_level": None}
        if kind == "handle":
            task["return_by"] = self.clock.at(t + 16)
        # A task created outside working time starts at the next working moment; its row says when.
        if t == self.clock.hours(life.event["created_at"]) and kind == "handle" and not life.tasks:
            task["created_at"] = life.event["created_at"]
        life.tasks.append(task)
        return task

    def _claim(self, life: _Life, task: dict[str, Any], at: float, worker: tuple[str, str]) -> None:
        task.update(status="claimed", claimed_by=worker[0], claimed_at=self.clock.at(at))
        self._step(life, "claim", worker[0], "user", worker[1], "dispatched", "handling", self.clock.at(at))

    def _complete(self, life: _Life, task: dict[str, Any], at: float, worker: tuple[str, str]) -> None:
        if task["claimed_at"] is None:
            self._claim(life, task, at - 0.05, worker)
        task.update(status="done", completed_at=self.clock.at(at), result="已处理完毕")
        self._step(life, "complete", worker[0], "user", worker[1], "handling", "verification", self.clock.at(at),
                   note="已处理完毕")

    def _warn(self, life: _Life, kind: str, task: dict[str, Any], at: datetime, note: str) -> None:
        life.warnings.append({"event_id": life.event["event_id"], "seq": len(life.warnings) + 1, "kind": kind,
                              "task_id": task["task_id"], "unit": task["unit"], "at": at, "note": note})

    def _step(self, life: _Life, action: str, actor: str, kind: str, name: str, before: str | None,
              after: str | None, at: datetime, note: str = "") -> None:
        life.timeline.append({"event_id": life.event["event_id"], "seq": len(life.timeline) + 1,
                              "stage": "", "action": action, "actor": actor, "actor_kind": kind, "actor_name": name,
                              "from_state": before, "to_state": after, "note": note, "at": at})

    def _close(self, life: _Life, action: str, at: datetime, actor: tuple[str, str, str]) -> None:
        self._step(life, action, actor[0], actor[1], actor[2], "feedback", "closed", at)
        if action == "accept_by_default":
            self._step(life, "close", "system", "system", "系统", None, None, at, note="结案")
        life.event.update(closed_at=at, close_action=action)

    def _cut(self, life: _Life) -> _Life:
        """The event as the store holds it at ``now``: what happened later did not happen yet."""
        now = self.now
        ev = life.event
        life.timeline = sorted((e for e in life.timeline if e["at"] <= now), key=lambda e: e["at"])
        for seq, entry in enumerate(life.timeline, start=1):
            entry["seq"] = seq
        life.warnings = [w for w in life.warnings if w["at"] <= now]
        for seq, w in enumerate(life.warnings, start=1):
            w["seq"] = seq
        warned = {(w["task_id"], w["kind"]) for w in life.warnings}
        tasks = []
        for task in life.tasks:
            if task["created_at"] > now:
                continue
            if task["completed_at"] is not None and task["completed_at"] > now:
                task.update(completed_at=None, status="open", passed=None, result=None)
            if task["ended_at"] is not None and task["ended_at"] > now:
                task.update(ended_at=None, ended_by="", status="open")
            if task["claimed_at"] is not None and task["claimed_at"] > now:
                task.update(claimed_at=None, claimed_by=None)
            if task["status"] == "open" and task["claimed_at"] is not None:
                task["status"] = "claimed"
            if task["status"] in ("open", "claimed"):
                task["overdue_level"] = ("red" if (task["task_id"], "red") in warned else
                                         "yellow" if (task["task_id"], "yellow") in warned else None)
            tasks.append(task)
        life.tasks = tasks
        if ev["closed_at"] is not None and ev["closed_at"] > now:
            ev.update(closed_at=None, close_action="")
        given = [r for at, r in life.ratings if at <= now]
        ev["rating"] = given[-1] if given else None
        if ev["rating"] != "dissatisfied":
            ev["rating_comment"] = ""
        state = "intake"
        for entry in life.timeline:
            if entry["to_state"]:
                state = entry["to_state"]
            entry["stage"] = STAGE_OF_STATE.get(state, "intake")
        ev.update(state=state, stage=STAGE_OF_STATE.get(state, "intake"), version=len(life.timeline),
                  updated_at=life.timeline[-1]["at"],
                  rework_count=sum(1 for e in life.timeline if e["action"] in ("verify_fail", "rework")),
                  returned_count=sum(1 for e in life.timeline if e["action"] == "approve_return"),
                  escalated_count=sum(1 for e in life.timeline if e["action"] == "escalate_overdue"))
        handling = [t for t in tasks if t["kind"] == "handle"]
        if handling:
            ev["unit"] = handling[-1]["unit"]
            ev["tier"] = self.city.org.units[ev["unit"]].tier
        if state in ("verification", "verifying") and not any(t["kind"] == "verify" for t in tasks):
            ev["state"] = "verification"
        return life


STAGE_OF_STATE = {"intake": "intake", "rerouting": "dispatch", "triage": "dispatch", "dispatched": "dispatch",
                  "handling": "handling", "return_requested": "handling", "verification": "verification",
                  "verifying": "verification", "feedback": "feedback", "review": "feedback", "closed": "close",
                  "voided": "close"}


# ------------------------------------------------------------------------------------ the seeding
def _months_back(end: date, months: int) -> date:
    """The day after the same day ``months`` months before ``end`` (a year ending today starts a
    year ago tomorrow)."""
    year, month = end.year, end.month - months
    while month <= 0:
        month += 12
        year -= 1
    day = min(end.day, [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28, 31, 30, 31, 30,
                        31, 31, 30, 31, 30, 31][month - 1])
    return date(year, month, day) + timedelta(days=1)


def _report_moments(rng: random.Random, first: date, last: date, n: int, latest: datetime) -> list[datetime]:
    """``n`` report moments over the days, in order, none after ``latest``: working days weigh three
    times a day off, summer a little more than winter, the day's hours by ``HOUR_WEIGHTS``."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    weights = [(1.0 if is_working_day(d) else 0.35) * (1 + 0.18 * math.sin((d.timetuple().tm_yday - 100) / 58.1))
               for d in days]
    cum = list(_accumulate(weights))
    hours_cum = list(_accumulate(HOUR_WEIGHTS))
    stamps: list[tuple[int, int]] = []
    local = latest.astimezone(CITY_TZ)
    limit = ((local.date() - first).days, local.hour * 3600 + local.minute * 60 + local.second)
    while len(stamps) < n:
        day = days[bisect.bisect_left(cum, rng.random() * cum[-1])]
        hour = bisect.bisect_left(hours_cum, rng.random() * hours_cum[-1])
        stamp = ((day - first).days, hour * 3600 + rng.randrange(3600))
        if stamp <= limit:
            stamps.append(stamp)
    stamps.sort()
    midnights: dict[int, datetime] = {}
    out = []
    for day_n, second in stamps:
        midnight = midnights.get(day_n)
        if midnight is None:
            midnight = midnights[day_n] = datetime.combine(first + timedelta(days=day_n), time(0), CITY_TZ)
        out.append((midnight + timedelta(seconds=second)).astimezone(UTC))
    return out


def _accumulate(values: Any) -> Any:
    total = 0.0
    for v in values:
        total += v
        yield total


def _template(model: type[Any], **required: Any) -> dict[str, Any]:
    """Every column of ``model`` with its default (core inserts fill every NOT NULL column)."""
    return dict(model(**required).model_dump())



class _Rollups:
    """The rollups of facts, summed as ``store.assessment.rebuild`` sums them: amounts key by key in
    the facts' order (so the float sums are the same), counts grouped by place and expanded once."""

    def __init__(self, city: str) -> None:
        self.city = city
        self.counts: Counter[tuple[tuple[str, ...], date, int]] = Counter()
        self.amounts: dict[F.Key, list[float]] = defaultdict(lambda: [0, 0.0])
        self.categories: Counter[tuple[tuple[str, ...], date, str]] = Counter()

    def add(self, fact: models.AssessmentFact) -> None:
        if fact.kind == "late":
            return
        units = tuple(u for u in (self.city, fact.grid, fact.community, fact.street, fact.department, fact.centre) if u)
        self.counts[(units, fact.day, fact.flags)] += 1
        for name, amount in sorted(fact.amounts.items()):
            for unit in units:
                slot = self.amounts[(unit, name, fact.day)]
                slot[0] += 1
                slot[1] += float(amount)
        if fact.kind == "event":
            self.categories[(units, fact.day, fact.category)] += 1

    def rows(self) -> tuple[dict[F.Key, list[float]], dict[tuple[str, date, str], int]]:
        rollup: dict[F.Key, list[float]] = defaultdict(lambda: [0, 0.0])
        for key, slot in self.amounts.items():
            rollup[key] = slot
        for (units, day, flags), n in self.counts.items():
            for name in F.counters_of(flags):
                for unit in units:
                    rollup[(unit, name, day)][0] += n
        categories: dict[tuple[str, date, str], int] = defaultdict(int)
        for (units, day, category), n in self.categories.items():
            for unit in units:
                categories[(unit, day, category)] += n
        return rollup, categories


async def has_events(db: Database) -> bool:
    """Whether the store holds any event."""
    async with db.engine.connect() as conn:
        return (await conn.execute(select(col(models.Event.event_id)).limit(1))).first() is not None


async def _start_number(db: Database) -> tuple[int, set[str]]:
    async with db.engine.connect() as conn:
        last = (await conn.execute(select(func.max(col(models.Event.event_id))).where(
            col(models.Event.event_id).like(f"{PREFIX}%")))).scalar_one_or_none()
        codes = set((await conn.execute(select(col(models.Event.receipt_code)))).scalars())
    number = int(last[len(PREFIX):]) + 1 if last and last[len(PREFIX):].isdigit() else 1
    return number, codes


async def seed_history(db: Database, org: OrgTree, *, events: int, months: int = 12, end: date | None = None,
                       seed: int = 1, progress: Progress | None = None, now: datetime | None = None) -> int:
    """Write ``events`` events of the ``months`` months up to ``end`` (default today, city time) with
    their tasks, warnings, timeline, facts and rollups; returns how many were written. ``now`` (default
    the end of ``end``, or now if sooner) is the moment the store stands at: later steps are cut off.
    ``progress(done, total)`` is called after every batch."""
    if events <= 0:
        return 0
    rng = random.Random(seed)
    today = datetime.now(CITY_TZ).date()
    end = end or today
    first = _months_back(end, months)
    end_moment = datetime.combine(end + timedelta(days=1), time(0), CITY_TZ).astimezone(UTC)
    now = min(now or utcnow(), end_moment)
    city = await _city(db, org, rng)
    clock = WorkClock(first - timedelta(days=7), end + timedelta(days=400))
    sim = _Simulator(city, clock, rng, now)
    lookup_cache: dict[str, F.UnitInfo | None] = {}
    base_lookup = assessment.lookup_of(org)

    def lookup(code: str) -> F.UnitInfo | None:
        if code not in lookup_cache:
            lookup_cache[code] = base_lookup(code)
        return lookup_cache[code]

    number, codes = await _start_number(db)
    moments = _report_moments(rng, first, end, events, now)
    stamp = utcnow()
    ev_tpl = _template(models.Event, event_id="x", receipt_code="x", source="api", category="x", description="x",
                       state="closed", stage="close", created_at=stamp, updated_at=stamp)
    task_tpl = _template(models.Task, task_id="x", event_id="x", kind="handle", unit="x", status="open",
                         created_at=stamp)
    tl_tpl = _template(models.TimelineEntry, event_id="x", seq=1, stage="x", action="x", actor="x",
                       actor_kind="x", at=stamp)
    tl_tpl.pop("id", None)
    warn_tpl = _template(models.SupervisionWarning, event_id="x", seq=1, kind="x", task_id="x", unit="x", at=stamp)
    warn_tpl.pop("id", None)
    rollups = _Rollups(city.city)
    written = 0
    for start in range(0, events, BATCH):
        ev_rows: list[dict[str, Any]] = []
        task_rows: list[dict[str, Any]] = []
        tl_rows: list[dict[str, Any]] = []
        warn_rows: list[dict[str, Any]] = []
        fact_rows: list[dict[str, Any]] = []
        for reported in moments[start:start + BATCH]:
            code = random_code()
            while code in codes:
                code = random_code()
            codes.add(code)
            life = sim.life(f"{PREFIX}{number:09d}", code, reported)
            number += 1
            event = {**ev_tpl, **life.event}
            ev_rows.append(event)
            ev_ns = SimpleNamespace(**event)
            tasks = []
            for task in life.tasks:
                row = {**task_tpl, **task, **models.inbox_fields(task["status"], task["due_at"], ev_ns)}
                task_rows.append(row)
                tasks.append(SimpleNamespace(**row))
            warnings = [SimpleNamespace(**w) for w in life.warnings]
            warn_rows += ({**warn_tpl, **w} for w in life.warnings)
            tl_rows += ({**tl_tpl, **e} for e in life.timeline)
            for fact in F.facts_of(cast(models.Event, ev_ns), cast(list[models.Task], tasks),
                                   cast(list[models.SupervisionWarning], warnings), lookup, make=assessment.fact_row):
                rollups.add(fact)
                fact_rows.append(vars(fact))
        async with db.engine.begin() as conn:
            await conn.execute(insert(models.Event), ev_rows)
            await conn.execute(insert(models.Task), task_rows)
            if tl_rows:
                await conn.execute(insert(models.TimelineEntry), tl_rows)
            if warn_rows:
                await conn.execute(insert(models.SupervisionWarning), warn_rows)
            await conn.execute(insert(models.AssessmentFact), fact_rows)
        written += len(ev_rows)
        if progress is not None:
            progress(written, events)
    rollup, categories = rollups.rows()
    async with db.transaction() as session:
        await assessment.add_rollups(session, db, rollup, categories)
        await session.commit()
    return written
