"""The web's operability: request metrics by route template at /metrics (internal only), liveness
(/healthz) and readiness (/readyz, 503 with the reason when the store or Temporal does not answer),
and JSON log lines that carry a command's event and actor."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from store.db import Database
from tests import webapp
from tests.platform import Platform
from tests.test_e2e_api import _task_of
from tests.test_worker_telemetry import json_log
from web.app import create_app
from web.context import AppContext
from wulian.settings import Settings

SECRET = "test-secret-operability-0123456789abcdef"


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def client_of(ctx: AppContext, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of an app on ``ctx``, connecting from ``address``."""
    transport = httpx.ASGITransport(app=create_app(ctx.settings, ctx), client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


Samples = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(http: httpx.AsyncClient, **headers: str) -> Samples:
    answer = await http.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())


@pytest.fixture
def app_ctx(org_db: Database, tmp_path: Path) -> AppContext:
    return webapp.context(org_db, tmp_path)


async def test_requests_are_counted_and_timed_by_route_template(app_ctx: AppContext) -> None:
    async with client_of(app_ctx) as http:
        before = await scrape(http)
        assert (await http.get("/track/NOPE1234")).status_code in (200, 404)
        status = str((await http.get("/track/ZZZZ9999")).status_code)
        assert (await http.get("/no/such/page/at/all")).status_code == 404
        after = await scrape(http)
    route = "/track/{code}"
    count = value(after, "wulian_http_requests_total", method="GET", route=route, status=status) - value(
        before, "wulian_http_requests_total", method="GET", route=route, status=status)
    assert count == 2  # both codes under one series: the template, not the path
    assert value(after, "wulian_http_request_duration_seconds_count", method="GET", route=route) - value(
        before, "wulian_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert value(after, "wulian_http_requests_total", route="(unmatched)", status="404") - value(
        before, "wulian_http_requests_total", route="(unmatched)", status="404") == 1
    every_label = {v for series in after.values() for labels, _ in series for v in labels.values()}
    assert not {"/track/NOPE1234", "/track/ZZZZ9999", "/no/such/page/at/all"} & every_label
    assert value(after, "process_resident_memory_bytes") > 0


async def test_server_errors_are_counted_by_route(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=SECRET)
    # A store nobody answers at: the categories' read fails, the app answers 500 (no trace shown).
    broken = AppContext(settings=settings,
                        db=Database(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/none"))
    async with client_of(broken) as http:
        before = await scrape(http)
        answer = await http.get("/api/categories")
        assert answer.status_code == 500 and "Traceback" not in answer.text
        after = await scrape(http)
    labels = {"method": "GET", "route": "/api/categories", "status": "500"}
    assert value(after, "wulian_http_errors_total", **labels) - value(before, "wulian_http_errors_total", **labels) == 1
    assert value(after, "wulian_http_requests_total", **labels) - value(
        before, "wulian_http_requests_total", **labels) == 1


async def test_metrics_are_refused_to_the_public_and_through_proxies(app_ctx: AppContext, tmp_path: Path) -> None:
    async with client_of(app_ctx, "203.0.113.9") as http:
        assert (await http.get("/metrics")).status_code == 404
    async with client_of(app_ctx) as http:  # loopback, but a proxy on this machine forwards for somebody
        assert (await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})).status_code == 404
        assert (await http.get("/metrics", headers={"Forwarded": "for=203.0.113.9"})).status_code == 404
    token = "scrape-" + "k" * 32
    with_token = AppContext(settings=Settings(data_dir=tmp_path, secret_key=SECRET, metrics_token=token),
                            db=app_ctx.db)
    async with client_of(with_token, "203.0.113.9") as http:
        assert (await http.get("/metrics")).status_code == 404
        assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 404
        assert "wulian_http_requests_total" in (
            await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text
    async with client_of(with_token) as http:  # with a token, loopback alone admits nobody
        assert (await http.get("/metrics")).status_code == 404


async def test_not_ready_while_the_store_does_not_answer(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=SECRET)
    ctx = AppContext(settings=settings, db=Database(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/none"))
    ctx.set_client(time_env.client)
    async with client_of(ctx) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unready", "store": False, "temporal": True,
                                "reason": "store does not answer"}
        assert (await http.get("/healthz")).status_code == 200  # alive all the same


async def test_not_ready_while_temporal_does_not_answer(org_db: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=SECRET, temporal_address=f"127.0.0.1:{closed_port()}",
                        readiness_timeout_seconds=1)
    async with client_of(AppContext(settings=settings, db=org_db)) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["store"] is True and ready.json()["temporal"] is False
        assert ready.json()["reason"] == "temporal does not answer"
        assert (await http.get("/healthz")).json() == {"status": "ok"}


async def test_ready_and_a_command_s_lines_name_its_event_and_actor(platform: Platform) -> None:
    ready = await platform.http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "store": True, "temporal": True}
    with json_log(process="web") as out:
        event_id = (await platform.report())["event_id"]
        gw = await platform.login("wg_hs01_g1")
        task = await _task_of(platform, gw, event_id, "handle")
        assert (await platform.http.post(f"/api/tasks/{task['task_id']}/claim", headers=gw)).status_code == 200
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    started = [line for line in lines if line["message"].startswith("event started")]
    assert started and started[0]["event_id"] == event_id == started[0]["workflow_id"]
    assert started[0]["route"] == "/api/events" and "actor" not in started[0]  # anonymous report
    done = [line for line in lines if line["message"] == "command done"]
    assert len(done) == 1, lines
    assert done[0] | {"timestamp": "-"} == {
        "message": "command done", "event_id": event_id, "workflow_id": event_id, "actor": "wg_hs01_g1",
        "method": "POST", "route": "/api/tasks/{task_id}/claim", "level": "info",
        "logger": "wulian.commands", "process": "web", "timestamp": "-"}
