"""The fault suite (issue 13, items 5 and 6): the platform under a load of reports and handling while
its processes are killed and its store is made unavailable; afterwards the invariant checker
(``wulian/invariants.py``, also ``wulian check``) proves that nothing was lost, duplicated or left
inconsistent.

What one run does:

1. starts a platform of its own with the launcher's pieces (``wulian/launcher.py``): the Temporal dev
   server on a SQLite file in a temporary directory, ``worker.py`` processes and uvicorn web processes,
   on free ports, against a store that is a SQLite file or a **private PostgreSQL** this script starts
   itself (``initdb`` in a temporary directory, its own port; never the machine's shared server);
2. sends reports through ``POST /api/events`` spread over the webs, each with its own
   ``Idempotency-Key`` that it keeps when it retries (a timeout, a refused connection, a 5xx, a 409
   "still running"), as a real client does, until it is answered 201 or 202, and writes each accepted
   report to a receipts file (JSON lines, what ``wulian check --receipts`` reads); grid workers claim
   and complete the tasks through the web API, through any web;
3. meanwhile, at random moments, ``kill -9`` of a worker, of the dev server (restarted on its same
   SQLite file) and of a web (each several times), then the store made unavailable: PostgreSQL
   stopped (``pg_ctl stop -m immediate``) or the SQLite file locked by another process
   (``BEGIN EXCLUSIVE``), for a while;
4. waits for the load to finish, then runs the checker with the receipts (``exclusive``: nobody else
   used this platform, so an event no receipt names is a duplicate), and prints: reports sent,
   accepted, lost, duplicated, inconsistent, and the recovery time after each fault (from the fault's
   end to the first report sent after it that is answered 201).

``tests/faults/`` runs a bounded form of it in ``make test``. The full form, by hand::

    .venv/bin/python -m bench.faults                  # 1,000 reports on each store, every fault
    .venv/bin/python -m bench.faults --reports 200 --store sqlite --outage 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from store.db import Database
from wulian.invariants import CheckReport, Receipt, check
from wulian.launcher import (
    Child,
    describe_exit,
    http_base,
    prepare_store,
    start_temporal,
    wait_until,
    web_answers,
    web_command,
    worker_command,
)
from wulian.settings import Settings

#: Where the PostgreSQL binaries are (Debian's layout); ``WULIAN_PG_BIN`` to point elsewhere.
PG_BIN = Path(os.environ.get("WULIAN_PG_BIN", "/usr/lib/postgresql/15/bin"))
#: Grid workers of the demo organisation who handle the reports of their grid.
HANDLERS = {"HS01-G1": "wg_hs01_g1", "HS01-G2": "wg_hs01_g2", "HS01-G3": "wg_hs01_g3"}
PASSWORD = "demo12345"  # noqa: S105 - the demo organisation's
#: Seconds a client waits for one answer (the web waits up to 10 s for the routing, 15 s for a key).
REQUEST_TIMEOUT = 25.0


def free_port() -> int:
    """A free TCP port below the kernel's ephemeral range (the dev server binds its internal
    services to ephemeral ports; one of them must not take a port chosen here)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


# ---------------------------------------------------------------------------------------- stores
class PrivatePostgres:
    """A PostgreSQL of this run only: its own data directory and port, stopped and started at will.

    PostgreSQL refuses to run as root: as root, its commands run as the ``postgres`` user
    (``runuser``), in a directory handed to that user."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="wulian-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.base, self.user)

    @property
    def url(self) -> str:
        """The store URL of its ``postgres`` database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.base)  # noqa: S603

    def init(self) -> None:
        """Make the cluster (trust authentication, no fsync: a test's data)."""
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8",
                  "--locale", "C")

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop it (``immediate``: as a crash, no shutdown checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stop it if it runs and delete its directory."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("fast")
        shutil.rmtree(self.base, ignore_errors=True)


class SqliteLock:
    """Another process holding the SQLite store's write lock (``BEGIN EXCLUSIVE``) for a while."""

    SCRIPT = ("import sqlite3, sys, time\n"
              "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=120)\n"
              "c.execute('BEGIN EXCLUSIVE')\n"
              "print('locked', flush=True)\n"
              "time.sleep(float(sys.argv[2]))\n"
              "c.execute('ROLLBACK')\n")

    def __init__(self, path: Path) -> None:
        self.path = path

    async def hold(self, seconds: float) -> float:
        """Hold the lock ``seconds`` from the moment it is taken; returns when it was taken (monotonic)."""
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", self.SCRIPT, str(self.path), str(seconds),
                                                    stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        await proc.stdout.readline()  # "locked"
        taken = time.monotonic()
        await proc.wait()
        return taken


# ---------------------------------------------------------------------------------------- platform
@dataclass
class Processes:
    """A platform of this run: one dev server, ``workers`` worker processes, ``webs`` web processes."""

    base: Path
    database_url: str
    workers: int = 1
    webs: int = 1
    settings: Settings = field(init=False)
    web_settings: list[Settings] = field(init=False)
    temporal: Child = field(init=False)
    worker_children: list[Child] = field(init=False)
    web_children: list[Child] = field(init=False)
    env: dict[str, str] = field(init=False)
    #: Children the faults hold down now (killed, not yet restarted): the watchdog leaves them be.
    held: set[str] = field(default_factory=set)
    #: Children that exited on their own and were restarted by the watchdog, by name.
    unplanned: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        common: dict[str, Any] = dict(
            data_dir=self.base, database_url=self.database_url, mode="demo", demo_history_events=0,
            temporal_address=f"127.0.0.1:{free_port()}", temporal_ui_port=free_port(),
            secret_key=uuid.uuid4().hex * 2)
        self.web_settings = [Settings(**common, web_port=free_port()) for _ in range(self.webs)]
        self.settings = self.web_settings[0]
        logs = self.base / "logs"
        self.temporal = Child("Temporal dev server", logs / "temporal.log")
        self.worker_children = [Child(f"worker {i + 1}", logs / f"worker{i + 1}.log") for i in range(self.workers)]
        self.web_children = [Child(f"web {i + 1}", logs / f"web{i + 1}.log") for i in range(self.webs)]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "WULIAN_DATA_DIR": str(self.base),
                    "WULIAN_DATABASE_URL": self.database_url, "WULIAN_MODE": "demo",
                    "WULIAN_DEMO_HISTORY_EVENTS": "0", "WULIAN_SECRET_KEY": self.settings.secret_key,
                    "WULIAN_TEMPORAL_ADDRESS": self.settings.temporal_address,
                    "WULIAN_TEMPORAL_UI_PORT": str(self.settings.temporal_ui_port)}

    @property
    def web_urls(self) -> list[str]:
        """The base address of each web."""
        return [http_base(s.web_host, s.web_port) for s in self.web_settings]

    async def start(self) -> None:
        """Prepare the store, start the dev server, the workers and the webs; return once all answer."""
        await prepare_store(self.settings)
        await start_temporal(self.settings, self.temporal)
        for child in self.worker_children:
            await self.start_worker(child)
        for i in range(self.webs):
            await self.start_web(i)

    async def start_worker(self, child: Child) -> None:
        """(Re)start one worker process."""
        await child.start(worker_command(), self.env)

    async def start_web(self, i: int) -> None:
        """(Re)start web ``i`` and wait until it answers."""
        child = self.web_children[i]
        settings = self.web_settings[i]
        await child.start(web_command(settings), {**self.env, "WULIAN_WEB_PORT": str(settings.web_port)})
        url = self.web_urls[i]
        await wait_until(child.name, lambda: web_answers(f"{url}/healthz"), [child])

    @contextlib.contextmanager
    def holding(self, child: Child) -> Iterator[None]:
        """While in the block, the watchdog leaves ``child`` down (a fault or a restart has it)."""
        self.held.add(child.name)
        try:
            yield
        finally:
            self.held.discard(child.name)

    async def watchdog(self, every: float = 0.5) -> None:
        """Restart a worker or web that exited on its own, as ``make run``'s launcher does (a worker
        restarted during a store outage may fail its start and exit: without this, the run would wait
        for it for ever). Each such restart is counted in ``unplanned``."""
        while True:
            await asyncio.sleep(every)
            for i, child in enumerate([*self.worker_children, *self.web_children]):
                if child.process is None or child.running or child.name in self.held:
                    continue
                child.note(f"{child.name} exited on its own ({describe_exit(child.process.returncode)}); restarting it")
                self.unplanned[child.name] = self.unplanned.get(child.name, 0) + 1
                with self.holding(child):
                    try:
                        if i < len(self.worker_children):
                            await self.start_worker(child)
                        else:
                            await self.start_web(i - len(self.worker_children))
                    except Exception as exc:  # noqa: BLE001 - killed meanwhile by a fault: looked at again next round
                        child.note(f"{child.name} did not come back ({exc}); trying again")

    async def restart_temporal(self) -> None:
        """Start the dev server again on its SQLite file."""
        await start_temporal(self.settings, self.temporal)

    async def stop(self) -> None:
        """Stop the webs, the workers, then the dev server."""
        for child in [*self.web_children, *self.worker_children, self.temporal]:
            await child.stop()


async def kill9(child: Child) -> None:
    """SIGKILL the child's process group and wait for it."""
    assert child.process is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.process.pid, signal.SIGKILL)
    await child.process.wait()


# ---------------------------------------------------------------------------------------- load
@dataclass
class Attempt:
    """One request of the load generator: when sent and answered (monotonic), and its status (0: none)."""

    kind: str  # report | claim | complete
    sent: float
    answered: float
    status: int


@dataclass
class Load:
    """Reports with ``Idempotency-Key`` retries, and grid workers claiming and completing them."""

    webs: list[str]
    receipts_path: Path
    total: int
    concurrency: int
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    handle_share: float = 1.0  # of the accepted reports, the share a grid worker claims and completes
    attempts: list[Attempt] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    sent: int = 0  # reports (each counted once, however often retried)
    handled: int = 0
    refusals: list[str] = field(default_factory=list)  # answers no retry can change (a bug if any)
    tokens: dict[str, str] = field(default_factory=dict)
    _queue: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)

    async def _call(self, http: httpx.AsyncClient, kind: str, n: int, method: str, path: str,
                    **kwargs: Any) -> httpx.Response | None:
        base = self.webs[n % len(self.webs)]
        sent = time.monotonic()
        try:
            response = await http.request(method, base + path, timeout=REQUEST_TIMEOUT, **kwargs)
        except httpx.HTTPError:
            self.attempts.append(Attempt(kind, sent, time.monotonic(), 0))
            return None
        self.attempts.append(Attempt(kind, sent, time.monotonic(), response.status_code))
        return response

    async def _token(self, http: httpx.AsyncClient, username: str, n: int) -> str:
        while username not in self.tokens:
            answer = await self._call(http, "login", n, "POST", "/api/auth/login",
                                      json={"username": username, "password": PASSWORD})
            if answer is not None and answer.status_code == 200:
                self.tokens[username] = answer.json()["token"]
            else:
                n += 1
                await asyncio.sleep(0.5)
        return self.tokens[username]

    async def report(self, http: httpx.AsyncClient, n: int, category: str = "SR-01",
                     handle: bool = True) -> Receipt | None:
        """Report number ``n`` until it is accepted, always with the same key; its receipt (None: refused).
        ``handle``: queue it for its grid worker."""
        grid = list(HANDLERS)[n % len(HANDLERS)]
        key = f"faults-{self.run_id}-{n}"
        self.sent += 1
        body = {"category": category, "description": f"故障演练 {self.run_id} 第 {n} 号: 小区门口垃圾堆积",
                "location": {"grid": grid}, "reporter": {"name": "张三", "phone": "13800000000"},
                "source": "api"}
        tries = 0
        while True:
            answer = await self._call(http, "report", n + tries, "POST", "/api/events", json=body,
                                      headers={"Idempotency-Key": key})
            tries += 1
            if answer is not None and answer.status_code in (201, 202):
                data = answer.json()
                receipt = Receipt(data["event_id"], data.get("receipt_code", ""), answer.status_code, key)
                self.receipts.append(receipt)
                with self.receipts_path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps({"event_id": receipt.event_id, "receipt_code": receipt.receipt_code,
                                          "status": receipt.status, "key": key}) + "\n")
                if handle and random.random() < self.handle_share:
                    self._queue.put_nowait((receipt.event_id, HANDLERS[grid]))
                return receipt
            if answer is not None and answer.status_code in (400, 401, 403, 404, 422):
                self.refusals.append(f"report {n}: {answer.status_code} {answer.text[:200]}")
                return None
            await asyncio.sleep(min(0.2 * tries, 2.0))

    async def handle(self, http: httpx.AsyncClient, event_id: str, username: str, n: int) -> None:
        """Claim and complete the event's handling task as ``username``, through any web, retrying."""
        task = f"{event_id}.T1"
        for step, path, body in (("claim", f"/api/tasks/{task}/claim", None),
                                 ("complete", f"/api/tasks/{task}/complete", {"result": "已清运处理"})):
            tries = 0
            while True:
                headers = {"Authorization": f"Bearer {await self._token(http, username, n)}"}
                answer = await self._call(http, step, n + tries, "POST", path, json=body, headers=headers)
                tries += 1
                if answer is not None and answer.status_code == 200:
                    break
                if answer is not None and answer.status_code == 409 and tries > 1:
                    break  # an earlier attempt did it (its answer was lost with a killed web)
                if answer is not None and answer.status_code == 401:
                    self.tokens.pop(username, None)
                if tries > 200:
                    self.refusals.append(f"{step} {task}: {answer.status_code if answer else 'no answer'} "
                                         f"{answer.text[:200] if answer else ''}")
                    return
                # 404: not in the store yet (a 202), 409 first time: the workflow's state lags; 5xx: down.
                await asyncio.sleep(min(0.3 * tries, 2.0))
        self.handled += 1

    async def run(self, until: asyncio.Event | None = None) -> None:
        """Send ``total`` reports, ``concurrency`` at a time, while the handlers work, and more until
        ``until`` is set (the faults are over); return when all is done."""
        numbers: itertools.count[int] = itertools.count()
        more = until or asyncio.Event()
        limits = httpx.Limits(max_connections=self.concurrency * 4)
        async with httpx.AsyncClient(limits=limits) as http:

            async def reporter() -> None:
                while (n := next(numbers)) < self.total or not more.is_set():
                    await self.report(http, n)

            async def handler(i: int) -> None:
                while True:
                    event_id, username = await self._queue.get()
                    try:
                        await self.handle(http, event_id, username, i)
                    finally:
                        self._queue.task_done()

            handlers = [asyncio.create_task(handler(i)) for i in range(max(1, self.concurrency // 2))]
            await asyncio.gather(*(reporter() for _ in range(self.concurrency)))
            await self._queue.join()
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)


# ---------------------------------------------------------------------------------------- faults
@dataclass
class Fault:
    """One fault: what, and when it ended (monotonic; recovery counts from there)."""

    kind: str
    started: float = 0.0
    ended: float = 0.0
    recovery: float | None = None  # seconds to the first report sent after the end and answered 201


@dataclass
class Plan:
    """What a run does to the platform."""

    reports: int
    concurrency: int = 8
    store: str = "sqlite"  # sqlite | postgresql (private)
    kills: dict[str, int] = field(default_factory=lambda: {"worker": 3, "temporal": 3, "web": 3})
    outage: float = 60.0  # seconds the store is unavailable (0: not at all)
    down: tuple[float, float] = (1.0, 4.0)  # seconds a killed process stays dead
    gap: tuple[float, float] = (3.0, 8.0)  # seconds between faults
    workers: int = 1
    webs: int = 1


@dataclass
class Outcome:
    """What a run measured."""

    plan: Plan
    sent: int
    accepted: int
    handled: int
    faults: list[Fault]
    report: CheckReport
    refusals: list[str]
    wall: float
    base: Path
    unplanned: dict[str, int] = field(default_factory=dict)  # restarts of children that exited on their own

    @property
    def ok(self) -> bool:
        """All invariants hold and nothing was refused."""
        return self.report.ok and not self.refusals and self.accepted == self.sent

    def lines(self) -> list[str]:
        """The figures, for people."""
        c = self.report.counts()
        out = [f"store {self.plan.store}: {self.plan.workers} worker(s), {self.plan.webs} web(s), "
               f"{self.wall:.0f} s wall",
               f"reports sent {self.sent}, accepted {self.accepted}, handled (claimed+completed) {self.handled}",
               f"lost {c['lost']}, duplicated {c['duplicated']}, inconsistent {c['inconsistent']}, "
               f"undelivered notices {c['undelivered']}, double claims {c['double_claims']}, "
               f"unreadable {c['unreadable']} (checked {c['checked']} of {c['listed']} workflows)"]
        for fault in self.faults:
            shown = f"{fault.recovery:.1f} s" if fault.recovery is not None else "no 201 after it"
            out.append(f"  {fault.kind:<18} for {fault.ended - fault.started:5.1f} s, recovery {shown}")
        out += [f"  {name} exited on its own and was restarted {n}×" for name, n in self.unplanned.items()]
        out += [f"  refused: {r}" for r in self.refusals[:10]]
        out += [f"  {p}" for p in self.report.problems(10)]
        return out


def recovery(attempts: list[Attempt], after: float) -> float | None:
    """Seconds from ``after`` to the answer of the first report sent after it that got a 201."""
    answered = [a.answered for a in attempts if a.kind == "report" and a.sent >= after and a.status == 201]
    return min(answered) - after if answered else None


async def inject(plan: Plan, procs: Processes, pg: PrivatePostgres | None) -> list[Fault]:
    """Apply the plan's faults in a random order at random moments while the load runs (the load goes
    on until they are over), then wait a gap more so that each fault has reports after it."""
    kinds = [kind for kind, times in plan.kills.items() for _ in range(times)]
    random.shuffle(kinds)
    if plan.outage > 0:  # the outage in the middle, kills before and after it
        kinds.insert(len(kinds) // 2, "postgres stopped" if plan.store == "postgresql" else "sqlite locked")
    faults: list[Fault] = []
    for kind in kinds:
        await asyncio.sleep(random.uniform(*plan.gap))
        fault = Fault(kind, started=time.monotonic())
        down = random.uniform(*plan.down)
        if kind == "worker":
            child = random.choice(procs.worker_children)
            with procs.holding(child):
                await kill9(child)
                await asyncio.sleep(down)
                await procs.start_worker(child)
        elif kind == "web":
            i = random.randrange(len(procs.web_children))
            with procs.holding(procs.web_children[i]):
                await kill9(procs.web_children[i])
                await asyncio.sleep(down)
                await procs.start_web(i)
        elif kind == "temporal":
            await kill9(procs.temporal)
            await asyncio.sleep(down)
            await procs.restart_temporal()
        elif kind == "postgres stopped":
            assert pg is not None
            await asyncio.to_thread(pg.stop)
            await asyncio.sleep(plan.outage)
            await asyncio.to_thread(pg.start)
        else:
            taken = await SqliteLock(procs.base / "wulian.db").hold(plan.outage)
            fault.started = taken
        fault.ended = time.monotonic()
        faults.append(fault)
    # Long enough for a worker restarted by the last fault to be answering again on a loaded machine
    # (a worker takes a few seconds to start): otherwise that fault has no 201 after it to time.
    await asyncio.sleep(max(plan.gap) + 10)
    return faults


@contextlib.asynccontextmanager
async def platform(plan: Plan, base: Path, database_url: str | None = None) -> AsyncIterator[
        tuple[Processes, PrivatePostgres | None]]:
    """A running platform for ``plan`` in ``base`` (its store: ``database_url``, else by ``plan.store``)."""
    pg: PrivatePostgres | None = None
    if database_url is None and plan.store == "postgresql":
        pg = PrivatePostgres()
        await asyncio.to_thread(pg.init)
        await asyncio.to_thread(pg.start)
        database_url = pg.url
    procs = Processes(base, database_url or f"sqlite+aiosqlite:///{base / 'wulian.db'}", plan.workers, plan.webs)
    try:
        await procs.start()
        yield procs, pg
    finally:
        await procs.stop()
        if pg is not None:
            await asyncio.to_thread(pg.destroy)


async def run_plan(plan: Plan, base: Path, *, database_url: str | None = None,
                   during: Callable[[Processes, Load], Coroutine[Any, Any, None]] | None = None) -> Outcome:
    """Run ``plan`` on a platform of its own in ``base``; ``during`` runs beside the load (races)."""
    started = time.monotonic()
    async with platform(plan, base, database_url) as (procs, pg):
        load = Load(procs.web_urls, base / "receipts.jsonl", plan.reports, plan.concurrency)
        watchdog = asyncio.create_task(procs.watchdog())
        injector = asyncio.create_task(inject(plan, procs, pg))
        over = asyncio.Event()
        injector.add_done_callback(lambda _: over.set())
        extra = asyncio.create_task(during(procs, load)) if during is not None else None
        try:
            await load.run(over)
            faults = await injector
            if extra is not None:
                await extra
        finally:  # before the platform stops its children, which the watchdog would start again
            watchdog.cancel()
        for fault in faults:
            fault.recovery = recovery(load.attempts, fault.ended)
        client = await Client.connect(procs.settings.temporal_address, namespace=procs.settings.temporal_namespace)
        db = Database(procs.database_url)
        try:
            report = await check(client, db, load.receipts, exclusive=True, settle_rounds=15)
        finally:
            await db.dispose()
    return Outcome(plan, load.sent, len(load.receipts), load.handled, faults, report, load.refusals,
                   time.monotonic() - started, base, dict(procs.unplanned))


def main() -> int:
    """Run the full form (or what the arguments say) and print the figures; exit 1 on any failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=1000, help="reports per store")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--kills", type=int, default=3, help="kills of each process kind")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the store is unavailable")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.seed is not None:
        random.seed(args.seed)
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    failed = False
    for store in stores:
        plan = Plan(reports=args.reports, concurrency=args.concurrency, store=store, outage=args.outage,
                    kills={"worker": args.kills, "temporal": args.kills, "web": args.kills}, gap=(8.0, 20.0))
        base = Path(tempfile.mkdtemp(prefix=f"wulian-faults-{store}-"))
        outcome = asyncio.run(run_plan(plan, base))
        print("\n".join(outcome.lines()), flush=True)
        print(f"  logs and receipts: {base}", flush=True)
        failed |= not outcome.ok
    print("FAILED" if failed else "OK: 0 lost, 0 duplicated, 0 inconsistent", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
