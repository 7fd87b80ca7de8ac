"""End to end: ``python -m wulian.launcher`` starts everything, stops cleanly on Ctrl-C, and a
second start on the same data directory resumes (store not re-seeded, Temporal history kept)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus

from store.seed import DEMO_ORGANISATION
from workflows.types import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
IDLE_QUEUE = "launcher-test-idle"  # nobody polls it: a workflow started there stays running
PROBE_ID = "launcher-test-resume-probe"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


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
        """Wait until the web's /healthz answers 200 and the Temporal UI answers HTTP."""
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                assert self.proc.poll() is None, f"launcher exited early\n{self.diagnostics()}"
                try:
                    health = await http.get(f"http://127.0.0.1:{self.web_port}/healthz")
                    ui = await http.get(f"http://127.0.0.1:{self.ui_port}/")
                    if health.status_code == 200 and ui.status_code < 500:
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


def count_users(data_dir: Path) -> int:
    """Users in the launcher's SQLite store."""
    with sqlite3.connect(data_dir / "wulian.db") as conn:
        return int(conn.execute("SELECT count(*) FROM user").fetchone()[0])


async def test_launcher_starts_stops_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    web_port, temporal_port, ui_port = free_port(), free_port(), free_port()
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
    )
    address = f"127.0.0.1:{temporal_port}"
    demo_users = len(json.loads(DEMO_ORGANISATION.read_text(encoding="utf-8"))["users"])

    # First run: fresh data directory, demo organisation loaded.
    first = Launcher(data_dir, env, web_port, ui_port)
    try:
        await first.wait_ready()
        client = await Client.connect(address)
        await client.start_workflow("LauncherResumeProbe", id=PROBE_ID, task_queue=IDLE_QUEUE)
        assert await first.interrupt() == 0, first.diagnostics()
    finally:
        first.kill()
    assert "stopped" in first.output.read_text(), first.diagnostics()
    assert not accepts(temporal_port), "the Temporal dev server is still listening"
    assert not accepts(web_port), "the web is still listening"
    assert processes_mentioning(str(data_dir)) == [], "children outlived the launcher"
    assert count_users(data_dir) == demo_users

    # Second run on the same data directory: resumes, nothing loaded twice.
    second = Launcher(data_dir, env, web_port, ui_port)
    try:
        await second.wait_ready()
        client = await Client.connect(address)
        probe = await client.get_workflow_handle(PROBE_ID).describe()
        assert probe.status == WorkflowExecutionStatus.RUNNING
        attributes = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        assert set(SEARCH_ATTRIBUTES) <= set(attributes.custom_attributes)
        assert count_users(data_dir) == demo_users
        assert await second.interrupt() == 0, second.diagnostics()
    finally:
        second.kill()
    assert "demo organisation loaded" not in second.output.read_text(), "re-seeded"
    assert not accepts(temporal_port)
    assert processes_mentioning(str(data_dir)) == [], "children outlived the launcher"
