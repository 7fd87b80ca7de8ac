"""The worker's telemetry (wulian/telemetry.py): its Prometheus endpoint carries the activities'
counts, failures and durations by type beside the Temporal SDK's own metrics, and what an activity
logs is a JSON line with its event and workflow ids."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from store.db import Database
from tests.scenarios import start, wait_state
from worker import build_worker
from wulian import logs, telemetry
from wulian.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def metrics_runtime() -> tuple[Runtime, int]:
    """A runtime with a Prometheus endpoint, as the worker's, and its port (the runtime lives as
    long as the process: one per module)."""
    port = free_port()
    return telemetry.worker_runtime(Settings(worker_metrics_port=port)), port


@pytest.fixture
async def metrics_client(time_env: WorkflowEnvironment,
                         metrics_runtime: tuple[Runtime, int]) -> AsyncIterator[tuple[Client, str]]:
    """A client of the session's test server on the metrics runtime, and the endpoint's address."""
    runtime, port = metrics_runtime
    client = await Client.connect(time_env.client.service_client.config.target_host, namespace="default",
                                  runtime=runtime)
    yield client, f"http://127.0.0.1:{port}/metrics"


async def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The endpoint's samples: name → [(labels, value)]."""
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.get(url)
    assert answer.status_code == 200
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())


@contextmanager
def json_log(logger: str = "wulian", process: str = "worker") -> Iterator[io.StringIO]:
    """Lines logged under ``logger`` while inside, through the JSON formatter of ``process``
    (the web's tests use it too)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.formatter("json", process))
    target = logging.getLogger(logger)
    level = target.level
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    try:
        yield out
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


async def test_the_endpoint_counts_an_event_s_activities_and_its_lines_carry_its_ids(
    metrics_client: tuple[Client, str], org_db: Database, time_env: WorkflowEnvironment
) -> None:
    client, url = metrics_client
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    before = await scrape(url)
    with json_log() as out:
        async with build_worker(client, org_db, tq):
            handle = await start(time_env, tq)
            await wait_state(handle, "dispatched")
            for _ in range(100):  # the reporter's receipt notice is sent after the dispatch
                if '"deliver_notice"' in out.getvalue():
                    break
                await asyncio.sleep(0.05)
            await handle.terminate("test over")
    after = await scrape(url)
    routed = "route_event"
    assert value(after, "wulian_activity_executions_total", activity_type=routed, task_queue=tq,
                 outcome="completed") == 1
    assert value(after, "wulian_activity_duration_count", activity_type=routed, task_queue=tq) == 1
    assert value(after, "wulian_activity_executions_total", task_queue=tq, local="true") >= 1  # the projections
    assert value(after, "wulian_activity_failures_total", task_queue=tq) == 0
    assert not before.get("wulian_activity_executions_total") or value(
        before, "wulian_activity_executions_total", task_queue=tq) == 0
    # The SDK's own: workflow tasks and activities of this task queue.
    assert value(after, "temporal_workflow_task_execution_latency_count", task_queue=tq) >= 1
    assert value(after, "temporal_activity_execution_latency_count", task_queue=tq) >= 1  # the notice, at least
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    notices = [line for line in lines if line.get("activity") == "deliver_notice"]
    assert notices, lines
    assert all(line["event_id"] == handle.id == line["workflow_id"] and line["process"] == "worker"
               and line["level"] == "info" and line["message"] for line in notices)


@activity.defn(name="telemetry_ok")
async def ok_activity(text: str) -> str:
    return text


@activity.defn(name="telemetry_fails")
async def failing_activity(text: str) -> str:
    raise ApplicationError(f"refused: {text}", non_retryable=True)


@workflow.defn(name="TelemetryProbe")
class Probe:
    @workflow.run
    async def run(self, text: str) -> str:
        await workflow.execute_activity(ok_activity, text, start_to_close_timeout=timedelta(seconds=10))
        try:
            await workflow.execute_activity(failing_activity, text, start_to_close_timeout=timedelta(seconds=10),
                                            retry_policy=RetryPolicy(maximum_attempts=1))
        except Exception:  # noqa: BLE001 - the failure is what is counted
            return "failed as expected"
        return "no failure"


async def test_failures_are_counted_by_activity_type_and_error_class(metrics_client: tuple[Client, str]) -> None:
    client, url = metrics_client
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=tq, workflows=[Probe], activities=[ok_activity, failing_activity],
                      interceptors=telemetry.interceptors(), workflow_runner=UnsandboxedWorkflowRunner()):
        assert await client.execute_workflow(Probe.run, "x", id=f"probe-{tq}", task_queue=tq) == "failed as expected"
    samples = await scrape(url)
    assert value(samples, "wulian_activity_failures_total", task_queue=tq, activity_type="telemetry_fails",
                 error="ApplicationError") == 1
    assert value(samples, "wulian_activity_executions_total", task_queue=tq, activity_type="telemetry_fails",
                 outcome="failed") == 1
    assert value(samples, "wulian_activity_executions_total", task_queue=tq, activity_type="telemetry_ok",
                 outcome="completed") == 1
    assert value(samples, "wulian_activity_failures_total", task_queue=tq, activity_type="telemetry_ok") == 0


async def test_a_taken_port_leaves_the_worker_without_its_endpoint_not_without_work(
    time_env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runtime = telemetry.worker_runtime(Settings(worker_metrics_port=port))
        assert f"no metrics endpoint at 127.0.0.1:{port}" in caplog.text
        client = await Client.connect(time_env.client.service_client.config.target_host, runtime=runtime)
        tq = f"tq-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=tq, workflows=[Probe], activities=[ok_activity, failing_activity],
                          interceptors=telemetry.interceptors(), workflow_runner=UnsandboxedWorkflowRunner()):
            assert await client.execute_workflow(Probe.run, "y", id=f"probe-{tq}", task_queue=tq) == (
                "failed as expected")
