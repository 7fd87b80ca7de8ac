"""The simulated year, drawn from a seed: which reports come in when, where and of what, and what every
actor will do with them (pure: the same seed gives the same plan, whatever the order the events are
later played in, because each event draws from its own generator).

Proportions: categories by the list's tiers (a few grassroots hotspots take a large share, the
departments' and the city's categories about 2% of the reports, so that about 97% is settled at the
grassroots as in Jiangshan 2018) and grids skewed (a few busy grids); reports mostly on working days
and in the day's two peaks. The handling model's shares are those of ``store.demo_history`` (dispatch
accuracy about 96%, a few extensions, reworks and late tasks).
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate

from rules.responsibility_list import Category, ResponsibilityList
from rules.worktime import CITY_TZ, is_working_day
from store.demo_history import HOUR_WEIGHTS, PHRASES, RATINGS, SOURCES, SURNAMES, category_weights, skewed
from store.org import OrgTree

#: Shares of the handling model (per event, drawn once).
RETURN_SHARE = 0.035  # the first handling unit asks to return it (not ours)
ESCALATE_SHARE = 0.02  # the first handling unit escalates it (beyond the tier's power)
EXTENSION_SHARE = 0.03  # the handler asks for an extension before the deadline
EXTENSION_APPROVED = 0.85  # of those, the supervisor approves
LATE_SHARE = 0.05  # handled after the deadline, within the grace period (yellow warning)
STUCK_SHARE = 0.01  # not handled before the grace period ends (red warning: the task climbs the ladder)
VERIFY_FAIL_SHARE = 0.025  # the first verification fails (rework)
GRASSROOTS = ("grid", "community", "street")
#: Mainland mobile number prefixes in use (numbers under them pass the report's phone check,
#: ``workflows.inputs``); "1" and any digit would draw unassigned ranges (154, 174, 179, ...), whose
#: reports every entrance refuses.
MOBILE_PREFIXES = (*(str(p) for p in range(130, 140)), "150", "151", "152", "153", "155", "156", "157",
                   "158", "159", "166", "173", "175", "176", "177", "178",
                   *(str(p) for p in range(180, 190)), "198", "199")


@dataclass(frozen=True)
class Draws:
    """One event's actors' decisions, drawn before it starts (times in working hours)."""

    claim_hours: float  # from a task's dispatch to its claim
    work_share: float  # of the task's working time, spent handling it when on time
    action: str  # "" | return | escalate | extension
    extension_approved: bool
    late_hours: float  # > 0: handled this long after the deadline
    stuck: bool  # never handled by the first unit: the red warning moves it up
    verify_hours: float
    verify_fail: bool
    rating: str  # satisfied | basically_satisfied | dissatisfied | default (no rating: accepted)
    rate_hours: float
    pick: float  # which person of a unit acts (a uniform draw, the same for every unit)


@dataclass(frozen=True)
class PlannedEvent:
    """One report of the plan and its actors' decisions."""

    index: int
    at: datetime  # UTC
    category: str
    grid: str
    source: str
    description: str
    reporter_name: str
    reporter_phone: str
    draws: Draws


@dataclass(frozen=True)
class City:
    """What the plan draws from: the grids and categories with their weights."""

    grids: tuple[str, ...]
    grid_weights: tuple[float, ...]
    categories: tuple[Category, ...]
    category_weights: tuple[float, ...]
    grid_names: dict[str, str]

    @classmethod
    def of(cls, org: OrgTree, lst: ResponsibilityList, seed: int) -> City:
        """The city of ``org`` reporting the categories of ``lst`` (weights drawn from ``seed``)."""
        rng = random.Random(f"city/{seed}")
        grids = sorted(c for c, u in org.units.items() if u.kind == "grid" and u.parent)
        if not grids:
            raise ValueError("the organisation has no grids: load it first (store.seed.load_organisation)")
        cats = sorted(lst.categories, key=lambda c: c.code)
        weights = category_weights([c.tier for c in cats], rng)
        return cls(tuple(grids), tuple(skewed(len(grids), rng, 5, 5.0)), tuple(cats), tuple(weights),
                   {g: org.units[g].name_zh for g in grids})


def _moments(rng: random.Random, first: date, days: int, n: int) -> list[datetime]:
    """``n`` report moments over ``days`` days from ``first``, in order: working days weigh three times
    a day off, the day's hours by ``HOUR_WEIGHTS``."""
    span = [first + timedelta(days=i) for i in range(days)]
    day_cum = list(accumulate(1.0 if is_working_day(d) else 0.35 for d in span))
    hour_cum = list(accumulate(HOUR_WEIGHTS))
    out = []
    for _ in range(n):
        day = span[bisect.bisect_left(day_cum, rng.random() * day_cum[-1])]
        hour = bisect.bisect_left(hour_cum, rng.random() * hour_cum[-1])
        local = datetime.combine(day, time(hour), CITY_TZ) + timedelta(seconds=rng.randrange(3600))
        out.append(local.astimezone(UTC))
    return sorted(out)


def draws(rng: random.Random) -> Draws:
    """One event's decisions (always the same number of draws, in the same order)."""
    u_action, u_late = rng.random(), rng.random()
    action = ("return" if u_action < RETURN_SHARE else "escalate" if u_action < RETURN_SHARE + ESCALATE_SHARE
              else "extension" if u_action < RETURN_SHARE + ESCALATE_SHARE + EXTENSION_SHARE else "")
    late = u_late < LATE_SHARE + STUCK_SHARE
    return Draws(
        claim_hours=min(8.0, 0.4 * math.exp(rng.gauss(0, 0.8))),
        work_share=min(0.9, 0.35 * math.exp(rng.gauss(0, 0.5))),
        action=action,
        extension_approved=rng.random() < EXTENSION_APPROVED,
        late_hours=(0.5 + rng.random() * 6.0) if late else 0.0,
        stuck=u_late < STUCK_SHARE,
        verify_hours=min(4.0, 0.8 * math.exp(rng.gauss(0, 0.6))),
        verify_fail=rng.random() < VERIFY_FAIL_SHARE,
        rating=rng.choices([r for r, _ in RATINGS], [w for _, w in RATINGS])[0],
        rate_hours=0.5 + rng.random() * 6.0,
        pick=rng.random(),
    )


def plan(city: City, seed: int, events: int, first: date, days: int) -> list[PlannedEvent]:
    """The reports of ``events`` over ``days`` days from ``first``, with their actors' decisions."""
    rng = random.Random(f"plan/{seed}")
    moments = _moments(rng, first, days, events)
    sources, source_w = [s for s, _ in SOURCES], [w for _, w in SOURCES]
    out = []
    for index, at in enumerate(moments):
        own = random.Random(f"event/{seed}/{index}")
        grid = own.choices(city.grids, city.grid_weights)[0]
        cat = own.choices(city.categories, city.category_weights)[0]
        source = own.choices(sources, source_w)[0]
        if source == "camera":  # camera alarms join their camera's open event: not one report each
            source = "grid_patrol"
        name = f"{own.choice(SURNAMES)}{own.choice(('先生', '女士'))}"
        phone = f"{own.choice(MOBILE_PREFIXES)}{own.randint(0, 99_999_999):08d}"
        description = f"{city.grid_names[grid]}{own.randint(1, 200)}号附近{cat.name_zh}，{own.choice(PHRASES)}"
        out.append(PlannedEvent(index, at, cat.code, grid, source, description, name, phone, draws(own)))
    return out
