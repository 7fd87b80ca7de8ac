"""PeriodReport: the monthly and annual reports (月度、年度考核报告), one workflow run per trigger.

A Temporal Schedule (``wulian/report_schedules.py``) starts it on the 1st of each month at 02:00
(Asia/Shanghai) for the month before, and on 1 January at 02:30 for the year before; a supervisor
(page ``/reports``) or the CLI (``wulian reports recompute PERIOD``) starts it for a named period with
``recompute`` set.

Deterministic: no I/O, clocks or randomness here. The period comes from the schedule's nominal time
(the search attribute ``TemporalScheduledStartTime``, so that a run caught up late still reports the
period it was meant for), else from ``workflow.now()``; the work is the idempotent activity
``compute_period_report`` (``activities/reports.py``), called by name, which stores an immutable
snapshot: a second trigger for a period that has one stores nothing; a recompute stores the next
revision, audited, exactly once (the run's id is the request's key).

The period rules (:func:`parse_period`, :func:`period_before`, :func:`previous_period`) are pure and
shared by the web and the CLI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ApplicationError

#: The activity's registered name (the workflow calls it by name; no import of I/O code).
ACTIVITY_REPORT = "compute_period_report"
MONTH, YEAR = "month", "year"
KINDS = (MONTH, YEAR)
#: Asia/Shanghai is UTC+8 all year (no daylight saving since 1991): a fixed offset, so the workflow
#: needs no time-zone database (which the sandbox would have to read from disk).
CITY_OFFSET = timezone(timedelta(hours=8))
#: Set by the Schedule on every run it starts: the run's nominal time.
SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
#: The first year a report can be asked for.
FIRST_YEAR = 2000
REPORT_TIMEOUT = timedelta(minutes=30)
_REPORT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5))
_PERIOD = re.compile(r"^(\d{4})(?:-(\d{2}))?$")
#: Who a run started by the Schedule is recorded as.
SCHEDULE_ACTOR = "schedule"


class BadPeriod(ValueError):
    """A period that is not ``YYYY-MM`` or ``YYYY`` (``code``: the catalogue key's last part)."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{text!r}: {code}")
        self.code = code


@dataclass(frozen=True)
class Period:
    """A report period: a calendar month (``"2026-11"``) or year (``"2026"``), days inclusive."""

    code: str
    kind: str
    first: date
    last: date


def parse_period(text: str) -> Period:
    """``"2026-11"`` (a month) or ``"2026"`` (a year); :class:`BadPeriod` otherwise."""
    found = _PERIOD.match(text.strip()) if isinstance(text, str) else None
    if not found:
        raise BadPeriod("format", str(text))
    year = int(found.group(1))
    if year < FIRST_YEAR or year > 9998:
        raise BadPeriod("year", text)
    if found.group(2) is None:
        return Period(f"{year:04d}", YEAR, date(year, 1, 1), date(year, 12, 31))
    month = int(found.group(2))
    if not 1 <= month <= 12:
        raise BadPeriod("month", text)
    first = date(year, month, 1)
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Period(f"{year:04d}-{month:02d}", MONTH, first, following - timedelta(days=1))


def city_day(moment: datetime) -> date:
    """The day in Asia/Shanghai of ``moment`` (naive moments are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CITY_OFFSET).date()


def period_before(moment: datetime, kind: str) -> Period:
    """The month (or year) before the one ``moment`` falls in, in Asia/Shanghai."""
    today = city_day(moment)
    if kind == YEAR:
        return parse_period(f"{today.year - 1:04d}")
    last = today.replace(day=1) - timedelta(days=1)
    return parse_period(f"{last.year:04d}-{last.month:02d}")


def previous_period(period: Period) -> Period:
    """The period of the same kind just before ``period`` (the comparison of a report)."""
    return period_before(datetime.combine(period.first, datetime.min.time(), CITY_OFFSET), period.kind)


def has_ended(period: Period, moment: datetime) -> bool:
    """Whether the period's last day is over at ``moment`` (Asia/Shanghai): only then is it reported."""
    return period.last < city_day(moment)


@dataclass
class ReportRequest:
    """The input of a run. The Schedule names only ``kind`` (the period before its time); a
    recompute names the ``period`` and who asks, with their reason."""

    kind: str = MONTH
    period: str | None = None
    recompute: bool = False
    actor: str = SCHEDULE_ACTOR
    reason: str = ""


@dataclass
class ReportJob:
    """What the activity computes and stores."""

    period: str
    kind: str
    day_from: str  # ISO dates, both ends inclusive, Asia/Shanghai
    day_to: str
    request_id: str  # the run's workflow id: a retried activity finds the revision it already stored
    recompute: bool
    actor: str
    reason: str
    trigger: str  # "schedule" or "recompute"


@dataclass
class ReportResult:
    """What the run stored (``created``) or found: the period's revision, the units in it."""

    period: str
    revision: int
    created: bool
    units: int
    scheme_version: str | None = None


def job_of(period: Period, request_id: str, *, recompute: bool = False, actor: str = SCHEDULE_ACTOR,
           reason: str = "") -> ReportJob:
    """The activity's job for ``period``, asked by the run ``request_id``."""
    return ReportJob(period=period.code, kind=period.kind, day_from=period.first.isoformat(),
                     day_to=period.last.isoformat(), request_id=request_id, recompute=recompute,
                     actor=actor or SCHEDULE_ACTOR, reason=reason, trigger="recompute" if recompute else "schedule")


def _invalid(message: str, code: str) -> ApplicationError:
    details = [{"code": code, "params": {}}]
    return ApplicationError(message, *details, type="Invalid", non_retryable=True)


@workflow.defn(name="PeriodReport")
class PeriodReport:
    """Compute and store one period's report (indicators of every unit, scores when a scheme is active)."""

    @workflow.run
    async def run(self, request: ReportRequest) -> ReportResult:
        """Find the period, refuse one that has not ended, then let the activity store the snapshot."""
        now = workflow.now()
        if request.period:
            try:
                period = parse_period(request.period)
            except BadPeriod as exc:
                raise _invalid(f"bad period {request.period!r}", f"period_{exc.code}") from None
        else:
            if request.kind not in KINDS:
                raise _invalid(f"unknown report kind {request.kind!r}", "period_kind")
            nominal = workflow.info().typed_search_attributes.get(SCHEDULED_START) or now
            period = period_before(nominal, request.kind)
        if not has_ended(period, now):
            raise _invalid(f"period {period.code} has not ended", "period_open")
        job = job_of(period, workflow.info().workflow_id, recompute=request.recompute, actor=request.actor,
                     reason=request.reason)
        return await workflow.execute_activity(
            ACTIVITY_REPORT, job, result_type=ReportResult,
            start_to_close_timeout=REPORT_TIMEOUT, retry_policy=_REPORT_RETRY,
        )
