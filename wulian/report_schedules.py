"""The Temporal Schedules of the reports, created idempotently when the platform starts.

- ``wulian-report-monthly``: the 1st of every month at 02:00 Asia/Shanghai, a PeriodReport run for the
  month before;
- ``wulian-report-annual``: 1 January at 02:30 Asia/Shanghai, a run for the year before.

Both are created by the launcher once the dev server answers and by every worker at start
(``worker.py``), whichever comes first; a schedule that exists already is left as it is
(``ScheduleAlreadyRunningError``). A run missed while Temporal was down is caught up when it comes
back within the catch-up window; runs never overlap (a second one while the first runs is skipped).
The run's period comes from its nominal time, so a late run still reports the period it was meant for,
and a second run for a period that has a report stores nothing (``store/reports.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)

from workflows.period_report import MONTH, YEAR, PeriodReport, ReportRequest

log = logging.getLogger("wulian.schedules")

TIME_ZONE = "Asia/Shanghai"
#: The prefix of the schedules' ids (tests use their own, so that their schedules do not meet).
PREFIX = "wulian-report"


@dataclass(frozen=True)
class ReportSchedule:
    """One report schedule: its id's suffix, the kind of period, when it runs (Asia/Shanghai)."""

    suffix: str
    kind: str
    month: int | None  # None: every month
    hour: int
    minute: int
    catchup: timedelta
    note: str


SCHEDULES = (
    ReportSchedule("monthly", MONTH, None, 2, 0, timedelta(days=20),
                   "月度考核报告 / monthly report: the 1st at 02:00 Asia/Shanghai, for the month before"),
    ReportSchedule("annual", YEAR, 1, 2, 30, timedelta(days=60),
                   "年度考核报告 / annual report: 1 January at 02:30 Asia/Shanghai, for the year before"),
)


def schedule_id(item: ReportSchedule, prefix: str = PREFIX) -> str:
    """The schedule's id, e.g. ``wulian-report-monthly``."""
    return f"{prefix}-{item.suffix}"


def schedule_of(item: ReportSchedule, task_queue: str, prefix: str = PREFIX) -> Schedule:
    """The Temporal schedule for ``item``, starting PeriodReport on ``task_queue``."""
    months = [ScheduleRange(item.month)] if item.month else [ScheduleRange(1, 12)]
    calendar = ScheduleCalendarSpec(second=[ScheduleRange(0)], minute=[ScheduleRange(item.minute)],
                                    hour=[ScheduleRange(item.hour)], day_of_month=[ScheduleRange(1)], month=months,
                                    comment=item.note)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PeriodReport.run, ReportRequest(kind=item.kind), id=f"{schedule_id(item, prefix)}-run",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(calendars=[calendar], time_zone_name=TIME_ZONE),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=item.catchup),
        state=ScheduleState(note=item.note),
    )


async def ensure_report_schedules(client: Client, task_queue: str, prefix: str = PREFIX) -> list[str]:
    """Create the report schedules that do not exist yet; the ids of those created now."""
    created = []
    for item in SCHEDULES:
        sid = schedule_id(item, prefix)
        try:
            await client.create_schedule(sid, schedule_of(item, task_queue, prefix))
        except ScheduleAlreadyRunningError:
            continue
        log.info("created the schedule %s", sid)
        created.append(sid)
    return created
