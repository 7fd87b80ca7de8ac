"""Working time: the moment that lies N working hours after a start, in the city's time zone.

Working days are Monday to Friday, 08:30–12:00 and 13:30–18:00 (8 hours), minus the Chinese
public holidays and plus the adjusted working weekends known to ``chinese_calendar`` when it is
installed (its data changes between versions, which is why callers keep the result, not the rule).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

CITY_TZ = ZoneInfo("Asia/Shanghai")
WORK_PERIODS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(13, 30), time(18, 0)))

try:  # optional data source for holidays and adjusted working days
    import chinese_calendar as _cc
except ImportError:  # pragma: no cover - fallback when the package is absent
    _cc = None


def is_working_day(day: date) -> bool:
    """Whether ``day`` is a working day in the city."""
    if _cc is not None:
        try:
            return bool(_cc.is_workday(day))
        except NotImplementedError:  # year outside the package's data: plain weekdays
            pass
    return day.weekday() < 5


def add_working_hours(start: datetime, hours: float) -> datetime:
    """The moment ``hours`` working hours after ``start`` (aware datetimes; the result is in UTC)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    remaining = timedelta(hours=hours)
    local = start.astimezone(CITY_TZ)
    day = local.date()
    cursor = local
    for _ in range(3660):  # at most ten years of days: a hard stop against bad input
        if is_working_day(day):
            for begin, end in WORK_PERIODS:
                period_start = datetime.combine(day, begin, CITY_TZ)
                period_end = datetime.combine(day, end, CITY_TZ)
                if cursor >= period_end:
                    continue
                frm = max(cursor, period_start)
                available = period_end - frm
                if remaining <= available:
                    return (frm + remaining).astimezone(ZoneInfo("UTC"))
                remaining -= available
                cursor = period_end
        day += timedelta(days=1)
        cursor = datetime.combine(day, time(0, 0), CITY_TZ)
    raise ValueError(f"{hours} working hours is out of range")


def working_hours_between(start: datetime, end: datetime) -> float:
    """The working hours from ``start`` to ``end`` (aware datetimes; 0 when ``end`` is not later): the
    inverse of :func:`add_working_hours`, for the assessment's time per stage."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        return 0.0
    local_start, local_end = start.astimezone(CITY_TZ), end.astimezone(CITY_TZ)
    total = timedelta()
    day = local_start.date()
    for _ in range(36600):  # at most a hundred years of days: a hard stop against bad input
        if day > local_end.date():
            break
        if is_working_day(day):
            for begin, finish in WORK_PERIODS:
                frm = max(local_start, datetime.combine(day, begin, CITY_TZ))
                to = min(local_end, datetime.combine(day, finish, CITY_TZ))
                if to > frm:
                    total += to - frm
        day += timedelta(days=1)
    return total.total_seconds() / 3600
