"""The worker's telemetry: its Prometheus endpoint, the activities' metrics and their log scope.

One endpoint per worker process, ``http://<worker_metrics_host>:<worker_metrics_port>/metrics``,
served by the Temporal SDK's runtime (:func:`worker_runtime`). It carries the SDK's own metrics
(``temporal_workflow_task_execution_latency`` and ``temporal_workflow_task_execution_failed`` for
workflow tasks, ``temporal_activity_*``, ``temporal_sticky_cache_*``, pollers, slots ...) and the
platform's, recorded through the same runtime's meter by :class:`ActivityTelemetry`:

- ``wulian_activity_executions_total{activity_type, outcome}``: attempts, ``outcome`` one of
  ``completed``, ``failed``, ``cancelled``; local activities (the projections) included, labelled
  ``local="true"``;
- ``wulian_activity_failures_total{activity_type, error}``: failed attempts, ``error`` the
  exception's class (``ApplicationError``, ``OperationalError`` ...);
- ``wulian_activity_duration{activity_type}``: a histogram of attempt durations in seconds.

Every label is a code (activity type, namespace, task queue, outcome, class name): never an
event, a user or a value from a report. The same interceptor opens a log scope
(``wulian/logs.py``) so every line an activity logs carries its ``workflow_id``, ``event_id``,
``activity`` and ``attempt``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from temporalio import activity
from temporalio.common import MetricCounter, MetricHistogramFloat
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from wulian.logs import log_scope
from wulian.settings import Settings

log = logging.getLogger("wulian.telemetry")

#: The workflow whose id is an event's id (``web.commands.event_id_for``).
EVENT_WORKFLOW = "EventLifecycle"


def worker_runtime(settings: Settings) -> Runtime:
    """The worker's Temporal runtime: the SDK core's log lines forwarded to Python logging (so they
    are JSON lines like the rest), its metrics at the Prometheus address from ``settings``. Without
    the endpoint when ``worker_metrics_port`` is 0 or taken: metrics must not stop the worker."""
    if settings.worker_metrics_port:
        address = f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"
        try:
            return metrics_runtime(address)
        except ValueError as exc:  # the port is taken: the worker works on, without its endpoint
            log.warning("no metrics endpoint at %s: %s", address, exc)
    return Runtime(telemetry=TelemetryConfig(logging=_core_logs()))


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics at ``bind_address`` (``host:port``): counters
    with the ``_total`` suffix, durations in seconds, as Prometheus expects."""
    prometheus = PrometheusConfig(bind_address=bind_address, counters_total_suffix=True, durations_as_seconds=True)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus, logging=_core_logs()))


def _core_logs() -> LoggingConfig:
    # By default the SDK core writes its own format to the console; forwarded, its lines go through
    # the process's log handler like every other.
    return LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                         forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")))


@dataclass(frozen=True)
class _Instruments:
    executions: MetricCounter
    failures: MetricCounter
    duration: MetricHistogramFloat


class ActivityTelemetry(Interceptor):
    """Worker interceptor: counts and times every activity attempt and binds its log scope."""

    def __init__(self) -> None:
        # One set per activity type: the meter of an activity already carries its type, task queue
        # and namespace as attributes, and instruments are cheap to keep, not to make per attempt.
        self._instruments: dict[tuple[str, bool], _Instruments] = {}

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:  # noqa: A002
        """Wrap the activity inbound chain."""
        return _ActivityInbound(next, self)

    def instruments(self, info: activity.Info) -> _Instruments:
        """The instruments of the running activity's type (created on its first attempt)."""
        key = (info.activity_type, info.is_local)
        found = self._instruments.get(key)
        if found is None:
            meter = activity.metric_meter().with_additional_attributes({"local": str(info.is_local).lower()})
            found = _Instruments(
                executions=meter.create_counter("wulian_activity_executions", "Activity attempts by outcome"),
                failures=meter.create_counter("wulian_activity_failures", "Failed activity attempts by error class"),
                duration=meter.create_histogram_float("wulian_activity_duration", "Activity attempt duration", "s"),
            )
            self._instruments[key] = found
        return found


def event_of(info: activity.Info, args: tuple[Any, ...]) -> str | None:
    """The event an activity works for: its workflow's id for an event's workflow, else an
    ``event_id`` its first argument carries (a notice, a snapshot), else None."""
    if info.workflow_type == EVENT_WORKFLOW:
        return info.workflow_id
    found = getattr(args[0], "event_id", None) if args else None
    return found if isinstance(found, str) else None


class _ActivityInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, owner: ActivityTelemetry) -> None:  # noqa: A002
        super().__init__(next)
        self._owner = owner

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:  # noqa: A002
        info = activity.info()
        tools = self._owner.instruments(info)
        started = time.perf_counter()
        outcome = "completed"
        with log_scope(workflow_id=info.workflow_id, event_id=event_of(info, tuple(input.args)),
                       activity=info.activity_type, attempt=info.attempt):
            try:
                return await self.next.execute_activity(input)
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            except BaseException as exc:
                outcome = "failed"
                tools.failures.add(1, {"error": type(exc).__name__})
                raise
            finally:
                tools.executions.add(1, {"outcome": outcome})
                tools.duration.record(time.perf_counter() - started)


def interceptors() -> list[Interceptor]:
    """The worker's interceptors (``worker.build_worker``)."""
    return [ActivityTelemetry()]
