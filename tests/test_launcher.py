"""End to end: ``python -m wulian.launcher`` starts everything, restarts a worker or a web that was
killed (the web answering throughout a worker's death), stops cleanly on Ctrl-C, and a second
start on the same data directory resumes (store not re-seeded, Temporal history kept); the report
schedules exist after each start."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, ScheduleActionStartWorkflow, WorkflowExecutionStatus

from store.seed import DEMO_ORGANISATION
from workflows.types import SEARCH_ATTRIBUTES
from wulian.launcher import Child, LaunchError, RestartPolicy, supervise
from wulian.report_schedules import SCHEDULES, schedule_id

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
RESTART_TIMEOUT = 30.0  # a killed child is back (1 s back-off, then its own start-up)
IDLE_QUEUE = "launcher-test-idle"  # nobody polls it: a workflow started there stays running
PROBE_ID = "launcher-test-resume-probe"
T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now, below the kernel's ephemeral range: the dev server
    binds its internal services to ephemeral ports, and one of them once took the web's port (the
    restarted web could not bind)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def child_pids(data_dir: Path, marker: str) -> list[int]:
    """Pids of the launcher's children for ``data_dir`` whose command line contains ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and str(data_dir).encode() in environ and state != "Z":
            found.append(int(proc.name))
    return found


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes whose command line or environment contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if text.encode() in cmdline or text.encode() in environ:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


class Launcher:
    """One run of the launcher as a subprocess, with its output in a file."""

    def __init__(self, data_dir: Path, env: dict[str, str], web_port: int, ui_port: int) -> None:
        self.data_dir = data_dir
        self.web_port = web_port
        self.ui_port = ui_port
        self.output = data_dir.parent / f"launcher-{time.monotonic_ns()}.out"
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wulian.launcher"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def diagnostics(self) -> str:
        """The launcher's output and the tails of the child logs, for failure messages."""
        parts = [f"--- launcher output:\n{self.output.read_text(errors='replace')}"]
        for log in sorted((self.data_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace")[-3000:]
            parts.append(f"--- {log.name} (tail):\n{tail}")
        return "\n".join(parts)

    async def wait_ready(self) -> None:
        """Wait until the web's /readyz answers 200, the Temporal UI answers HTTP and the launcher
        printed its banner (from then on it supervises: before, a child's death is a failed start)."""
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                assert self.proc.poll() is None, f"launcher exited early\n{self.diagnostics()}"
                try:
                    health = await http.get(f"http://127.0.0.1:{self.web_port}/readyz")
                    ui = await http.get(f"http://127.0.0.1:{self.ui_port}/")
                    if health.status_code == 200 and ui.status_code < 500 and "Ctrl-C to stop" in (
                        self.output.read_text(errors="replace")
                    ):
                        return
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"not ready in time\n{self.diagnostics()}"
                await asyncio.sleep(0.5)

    async def interrupt(self) -> int:
        """Send SIGINT (Ctrl-C) and wait for the exit status."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return await asyncio.to_thread(self.proc.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no exit within {STOP_TIMEOUT} s\n{self.diagnostics()}") from None

    def kill(self) -> None:
        """Last resort after a failed test (its children get SIGTERM from the kernel)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def wait_for(what: str, check: Callable[[], T], launcher: Launcher) -> T:
    """Poll ``check()`` until it returns something true (within ``RESTART_TIMEOUT``); that value."""
    deadline = time.monotonic() + RESTART_TIMEOUT
    while True:
        value = check()
        if value:
            return value
        assert launcher.proc.poll() is None, f"launcher exited while waiting for {what}\n{launcher.diagnostics()}"
        assert time.monotonic() < deadline, f"{what}: not within {RESTART_TIMEOUT:.0f} s\n{launcher.diagnostics()}"
        await asyncio.sleep(0.2)


def dispatched(data_dir: Path, event_id: str) -> bool:
    """Whether the store has the event routed to a unit, with its task."""
    with sqlite3.connect(data_dir / "wulian.db") as conn:
        row = conn.execute("SELECT state, unit FROM event WHERE event_id = ?", (event_id,)).fetchone()
        tasks = conn.execute("SELECT count(*) FROM task WHERE event_id = ?", (event_id,)).fetchone()[0]
    return row is not None and row[0] != "intake" and row[1] is not None and tasks > 0


async def kill_worker_then_web(launcher: Launcher) -> None:
    """SIGKILL the worker: the web answers throughout, a new worker dispatches a report made after
    the kill. Then SIGKILL the web: a new one answers. The launcher says what it restarted."""
    data_dir, base = launcher.data_dir, f"http://127.0.0.1:{launcher.web_port}"
    [worker_pid] = child_pids(data_dir, "worker.py")
    [web_pid] = child_pids(data_dir, "uvicorn")
    health: list[int | str] = []
    stop_polling = asyncio.Event()

    async def poll_health(http: httpx.AsyncClient) -> None:
        while not stop_polling.is_set():
            try:
                health.append((await http.get(f"{base}/readyz")).status_code)
            except httpx.HTTPError as exc:
                health.append(repr(exc))
            await asyncio.sleep(0.2)

    async with httpx.AsyncClient(timeout=20) as http:
        poller = asyncio.create_task(poll_health(http))
        os.kill(worker_pid, signal.SIGKILL)
        report = await http.post(f"{base}/api/events", json={
            "category": "SR-01", "description": "工人重启后的报告", "location": {"grid": "HS01-G1"},
            "reporter": {"name": "张三", "phone": "13800000000"}, "source": "portal",
        })
        assert report.status_code in (201, 202), report.text
        event_id = report.json()["event_id"]
        new_workers = await wait_for("a new worker", lambda: [p for p in child_pids(data_dir, "worker.py")
                                                              if p != worker_pid], launcher)
        await wait_for("the report dispatched", lambda: dispatched(data_dir, event_id), launcher)
        stop_polling.set()
        await poller
    assert health and all(code == 200 for code in health), (health, launcher.diagnostics())

    os.kill(web_pid, signal.SIGKILL)

    async def web_back() -> bool:
        async with httpx.AsyncClient(timeout=2) as http:
            try:
                return (await http.get(f"{base}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

    deadline = time.monotonic() + RESTART_TIMEOUT
    while not await web_back():
        assert time.monotonic() < deadline, f"the web did not come back\n{launcher.diagnostics()}"
        await asyncio.sleep(0.2)
    assert [p for p in child_pids(data_dir, "uvicorn") if p != web_pid]

    # The launcher says so once its own poll has seen the web answer (a moment after the test did).
    def output_after_web_restart() -> str:
        output = launcher.output.read_text()
        return output if "web 已重启" in output else ""

    output = await wait_for("the web's restart line", output_after_web_restart, launcher)
    assert f"worker 意外退出 / exited unexpectedly (pid {worker_pid}, killed by SIGKILL" in output, output
    assert f"worker 已重启 / restarted (pid {new_workers[0]})" in output, output
    assert f"web 意外退出 / exited unexpectedly (pid {web_pid}, killed by SIGKILL" in output, output
    assert "web 已重启 / restarted" in output, output
    assert "restarting in 1 s" in output, output
    worker_log = (data_dir / "logs" / "worker.log").read_text()
    assert f"worker 意外退出 / exited unexpectedly (pid {worker_pid}" in worker_log


async def assert_metrics(web_port: int, metrics_port: int) -> None:
    """The web's /metrics answers this machine; the worker's endpoint carries the SDK's metrics of its
    task queue (its pollers and slots: no workflow task of that queue need have run yet)."""
    async with httpx.AsyncClient(timeout=5) as http:
        web = await http.get(f"http://127.0.0.1:{web_port}/metrics")
        assert web.status_code == 200 and 'route="/readyz"' in web.text, web.text[:2000]
        worker = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert worker.status_code == 200, worker.text[:2000]
        assert 'temporal_worker_task_slots_available{' in worker.text and 'task_queue="wulian-events"' in worker.text


def assert_json_lines(log: Path, process: str) -> None:
    """Every line of a child's log is a JSON object (the launcher's notes included), and the
    child's own lines say which process wrote them."""
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert all(isinstance(line, dict) and "message" in line for line in lines)
    assert any(line["process"] == process for line in lines), lines[:20]
    assert any(line["process"] == "launcher" for line in lines)


async def assert_report_schedules(client: Client) -> None:
    """The report schedules exist (the launcher makes them before it prints its banner): monthly on the
    1st at 02:00 and annual on 1 January at 02:30, Asia/Shanghai, starting PeriodReport on the task queue."""
    for item in SCHEDULES:
        described = await client.get_schedule_handle(schedule_id(item)).describe()
        spec, action = described.schedule.spec, described.schedule.action
        assert spec.time_zone_name == "Asia/Shanghai"
        [calendar] = spec.calendars
        assert [r.start for r in calendar.hour] == [item.hour] and [r.start for r in calendar.minute] == [item.minute]
        assert [r.start for r in calendar.day_of_month] == [1]
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "PeriodReport" and action.task_queue == "wulian-events"


def count_users(data_dir: Path) -> int:
    """Users in the launcher's SQLite store."""
    with sqlite3.connect(data_dir / "wulian.db") as conn:
        return int(conn.execute("SELECT count(*) FROM user").fetchone()[0])


async def test_launcher_starts_restarts_stops_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    web_port, temporal_port, ui_port, metrics_port = free_port(), free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WULIAN_")}
    env.update(
        WULIAN_MODE="demo",
        WULIAN_DATABASE_URL="",
        WULIAN_DATA_DIR=str(data_dir),
        WULIAN_WEB_HOST="127.0.0.1",
        WULIAN_WEB_PORT=str(web_port),
        WULIAN_TEMPORAL_ADDRESS=f"127.0.0.1:{temporal_port}",
        WULIAN_TEMPORAL_UI_PORT=str(ui_port),
        WULIAN_TEMPORAL_UI_URL=f"http://127.0.0.1:{ui_port}",
        WULIAN_WORKER_METRICS_PORT=str(metrics_port),
    )
    address = f"127.0.0.1:{temporal_port}"
    demo_users = len(json.loads(DEMO_ORGANISATION.read_text(encoding="utf-8"))["users"])

    # First run: fresh data directory, demo organisation loaded.
    first = Launcher(data_dir, env, web_port, ui_port)
    try:
        await first.wait_ready()
        client = await Client.connect(address)
        await assert_report_schedules(client)
        await client.start_workflow("LauncherResumeProbe", id=PROBE_ID, task_queue=IDLE_QUEUE)
        await assert_metrics(web_port, metrics_port)
        await kill_worker_then_web(first)
        assert await first.interrupt() == 0, first.diagnostics()
    finally:
        first.kill()
    assert "stopped" in first.output.read_text(), first.diagnostics()
    assert not accepts(temporal_port), "the Temporal dev server is still listening"
    assert not accepts(web_port), "the web is still listening"
    assert processes_mentioning(str(data_dir)) == [], "children outlived the launcher"
    assert count_users(data_dir) == demo_users
    assert_json_lines(data_dir / "logs" / "worker.log", "worker")
    assert_json_lines(data_dir / "logs" / "web.log", "web")

    # Second run on the same data directory: resumes, nothing loaded twice.
    second = Launcher(data_dir, env, web_port, ui_port)
    try:
        await second.wait_ready()
        # A dev server that dies is started again on the same database file: the probe is still there.
        [temporal_pid] = child_pids(data_dir, "start-dev")
        os.kill(temporal_pid, signal.SIGKILL)
        await wait_for("the dev server's restart", lambda: "Temporal dev server 已重启" in second.output.read_text(),
                       second)
        client = await Client.connect(address)
        probe = await client.get_workflow_handle(PROBE_ID).describe()
        assert probe.status == WorkflowExecutionStatus.RUNNING
        attributes = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        assert set(SEARCH_ATTRIBUTES) <= set(attributes.custom_attributes)
        await assert_report_schedules(client)  # still there, made once (the second start found them)
        assert count_users(data_dir) == demo_users
        assert await second.interrupt() == 0, second.diagnostics()
    finally:
        second.kill()
    assert "demo organisation loaded" not in second.output.read_text(), "re-seeded"
    assert not accepts(temporal_port)
    assert processes_mentioning(str(data_dir)) == [], "children outlived the launcher"


def test_restart_delays_double_up_to_the_cap() -> None:
    policy = RestartPolicy(first_delay=1, max_delay=30)
    assert [policy.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


async def test_supervise_gives_up_after_max_restarts_in_a_row(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """What the launcher does with a dev server that cannot be brought back: restart it a bounded
    number of times (a start that fails counts too), then raise, which stops everything (exit 1)."""
    child = Child("fake server", tmp_path / "logs" / "fake.log")
    starts = 0

    async def start() -> None:
        nonlocal starts
        starts += 1
        if starts == 2:  # the second restart starts, but never answers
            await child.start(["sleep", "30"], dict(os.environ))
            raise LaunchError("did not answer")
        await child.start(["sh", "-c", "exit 3"], dict(os.environ))

    await start()
    policy = RestartPolicy(first_delay=0.01, max_delay=0.02, healthy_after=60, max_restarts=3)
    with pytest.raises(LaunchError, match="could not be brought back after 3 restarts"):
        await asyncio.wait_for(supervise(child, start, policy), 10)
    out = capsys.readouterr().out
    assert out.count("exited unexpectedly") == 3 and starts == 4
    assert "(pid " in out and "exit status 3, after 0 s); 0.01 秒后重启 / restarting in 0.01 s" in out
    assert "restart failed: did not answer" in out and "killed by SIGTERM" in out  # stopped, then counted
    assert "restarting in 0.02 s" in out  # doubled, then capped
    assert "still failing after 3 restarts in a row: giving up" in out
    assert not child.running
    assert "restart failed: did not answer" in child.log.read_text()  # the child's log says it too


async def test_supervise_starts_the_back_off_over_after_a_healthy_run(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    child = Child("flaky", tmp_path / "flaky.log")

    async def start() -> None:
        await child.start(["sh", "-c", "sleep 0.15; exit 1"], dict(os.environ))

    await start()
    policy = RestartPolicy(first_delay=0.01, max_delay=1, healthy_after=0.1, max_restarts=1)
    with pytest.raises(TimeoutError):  # it never gives up: each run counts as healthy
        await asyncio.wait_for(supervise(child, start, policy), 0.8)
    await child.stop()
    out = capsys.readouterr().out
    assert out.count("restarting in 0.01 s") >= 3 and "restarting in 0.02 s" not in out
    assert "giving up" not in out
