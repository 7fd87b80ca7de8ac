"""Overload: reports offered at twice the intake capacity for two minutes, then nothing; the store
must catch up, the worker's database connections return to idle and no notice stays pending.

    .venv/bin/python -m bench.overload_bench [--factor 2 | --rate R] [--burst 120] [--catch-up 300] [--keep]

Starts the platform as ``make run`` does (``python -m wulian.launcher``: Temporal dev server, worker,
web) on a temporary data directory and free ports, then:

1. warms up (a few reports one after the other) and notes the worker's idle connections;
2. measures the intake capacity: reports/s answered by ``POST /api/events`` at 8 concurrent
   (closed loop, ``--capacity`` seconds);
3. offers reports at ``--factor`` times that rate for ``--burst`` seconds (open loop: one request
   every 1/rate s whatever the answers do), then nothing;
4. within ``--catch-up`` seconds after the burst, every 5 s: are all accepted reports (201 and 202)
   in the store with a task, their "dispatched" notice row there and delivered, no notice pending
   with 0 attempts, the worker's open database connections back at their idle count?

The worker's connections are counted as its open file descriptors on ``wulian.db`` (and its
``-wal``/``-shm``), read from ``/proc/<pid>/fd``: that counts connections the pool has lost track
of too. Idle means at most what its whole pool costs when every connection is open (what one
SQLite connection costs in files is measured on the store by this process; the pool's size is the
code's ``worker_store_connections``, or 5 + 10 before that setting existed). Threads of the worker
are shown as well (aiosqlite runs one thread per connection). A
201 must mean the task is in the inbox: each 201 is followed at once by a read of the store.
Prints the figures; the exit code is 1 when a check fails. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 120.0
GRIDS = [f"{street}{c:02d}-G{g}" for street in ("HS", "ST") for c in range(1, 4) for g in range(1, 4)]
CATEGORIES = ["SR-01", "SR-03", "SR-04", "SR-06", "SR-07", "GG-01", "GG-04", "SR-05", "SG-05", "SR-02"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def report_body(run: str, i: int) -> dict[str, Any]:
    """A report as a resident's portal would send it, with a phone (so it gets notices)."""
    rnd = random.Random(i)
    return {
        "category": rnd.choice(CATEGORIES),
        "description": f"压测上报 {i}: 小区门口垃圾堆积",
        "location": {"grid": rnd.choice(GRIDS)},
        "reporter": {"name": "压测", "phone": f"139{i:08d}"},
        "source": "api",
        "external_id": f"{run}-{i}",
    }


# ---------------------------------------------------------------- the platform under test
class Platform:
    """``python -m wulian.launcher`` in a subprocess, on its own data directory and ports."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.web_port, temporal_port, ui_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.db_path = data_dir / "wulian.db"
        env = {
            **os.environ, "WULIAN_DATA_DIR": str(data_dir), "WULIAN_MODE": "demo",
            "WULIAN_WEB_PORT": str(self.web_port), "WULIAN_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
            "WULIAN_TEMPORAL_UI_PORT": str(ui_port), "WULIAN_TEMPORAL_UI_URL": f"http://127.0.0.1:{ui_port}",
            **(extra_env or {}),
        }
        self.env = env  # the platform's settings, for commands run against it (bench/hotline_import_bench.py)
        self.output = data_dir / "launcher.out"
        data_dir.mkdir(parents=True, exist_ok=True)
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wulian.launcher"], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )

    async def ready(self) -> None:
        """Wait until the web answers /healthz (the launcher starts it last)."""
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the launcher exited ({self.proc.returncode}):\n{self.output.read_text()}")
                try:
                    if (await http.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)
        raise SystemExit(f"the platform did not start within {READY_TIMEOUT:.0f} s:\n{self.output.read_text()}")

    def worker_pid(self) -> int | None:
        """The worker process the launcher runs now (it may have been restarted)."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (proc / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.proc.pid and b"worker.py" in cmdline:
                return int(proc.name)
        return None

    def worker_store(self) -> tuple[int, int]:
        """The worker's open file descriptors on the store's files, and its threads."""
        pid = self.worker_pid()
        if pid is None:
            return -1, -1
        fds = 0
        prefix = str(self.db_path)
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if os.readlink(fd).startswith(prefix):
                        fds += 1
                except OSError:
                    continue
            threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
        except OSError:
            return -1, -1
        return fds, threads

    def stop(self) -> None:
        """Ctrl-C the launcher (it stops web, worker and dev server in order)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------- the store, read directly
class Store:
    """Read-only looks at the SQLite store while the worker writes it (WAL lets readers in)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def has_task(self, event_id: str) -> bool:
        """Whether the event and at least one task of it are in the store."""
        conn = self._connect()
        try:
            return conn.execute("SELECT 1 FROM task WHERE event_id = ? LIMIT 1", (event_id,)).fetchone() is not None
        finally:
            conn.close()

    def state_of(self, event_ids: set[str]) -> dict[str, int]:
        """How many of ``event_ids`` are in the store with a task, and the notices' state."""
        conn = self._connect()
        try:
            events = {r[0] for r in conn.execute("SELECT event_id FROM event")}
            with_task = {r[0] for r in conn.execute("SELECT DISTINCT event_id FROM task")}
            notices = conn.execute("SELECT event_id, status, attempts FROM notice").fetchall()
        finally:
            conn.close()
        dispatched = {e for e, _, _ in notices}
        delivered = {e for e, s, _ in notices if s == "delivered"}
        return {
            "in_store": len(event_ids & events),
            "with_task": len(event_ids & with_task),
            "missing": len(event_ids - with_task),
            "notice_rows": len(event_ids & dispatched),
            "notices_delivered": len(event_ids & delivered),
            "pending": sum(1 for _, s, _ in notices if s == "pending"),
            "pending_0_attempts": sum(1 for _, s, a in notices if s == "pending" and a == 0),
        }


def fds_per_connection(path: Path) -> tuple[int, int]:
    """What SQLite connections in WAL mode cost in open files: (shared by all, per connection),
    measured on the store in this process."""
    def count() -> int:
        found = 0
        for fd in Path("/proc/self/fd").iterdir():
            try:
                found += os.readlink(fd).startswith(str(path))
            except OSError:  # the descriptor of the listing itself, closed meanwhile
                continue
        return found

    before = count()
    opened: list[sqlite3.Connection] = []
    sizes = []
    for _ in range(3):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.execute("SELECT count(*) FROM event").fetchone()
        opened.append(conn)
        sizes.append(count() - before)
    for conn in opened:
        conn.close()
    per = sizes[2] - sizes[1]
    return sizes[0] - per, per


def pool_size() -> int:
    """The worker's store connections in the code under test (before there was a setting: 5 + 10)."""
    try:
        from wulian.settings import Settings

        return int(getattr(Settings(), "worker_store_connections", 15))
    except Exception:  # noqa: BLE001 - a figure for the report, not the test
        return 15


# ---------------------------------------------------------------- load
@dataclass
class Results:
    """What the web answered."""

    statuses: Counter[str] = field(default_factory=Counter)
    accepted: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    created_without_task: int = 0  # 201 answers whose task the store did not have right after

    def line(self) -> str:
        """The counts by answer."""
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))


async def post_report(http: httpx.AsyncClient, store: Store, body: dict[str, Any], results: Results) -> None:
    """POST one report; note the answer; after a 201, look for its task in the store at once."""
    started = time.monotonic()
    try:
        response = await http.post("/api/events", json=body)
    except httpx.HTTPError as exc:
        results.statuses[type(exc).__name__] += 1
        return
    results.latencies.append(time.monotonic() - started)
    results.statuses[str(response.status_code)] += 1
    if response.status_code in (201, 202):
        event_id = response.json()["event_id"]
        results.accepted.add(event_id)
        if response.status_code == 201 and not await asyncio.to_thread(store.has_task, event_id):
            results.created_without_task += 1


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def closed_loop(http: httpx.AsyncClient, store: Store, run: str, start: int, seconds: float,
                      concurrency: int, results: Results) -> int:
    """``concurrency`` clients, each posting one report after the other for ``seconds``."""
    counter = iter(range(start, 10**9))
    deadline = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < deadline:
            await post_report(http, store, report_body(run, next(counter)), results)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return next(counter)


async def open_loop(http: httpx.AsyncClient, store: Store, run: str, start: int, rate: float, seconds: float,
                    results: Results) -> int:
    """One report every 1/rate s for ``seconds``, whatever the answers do; waits for every answer."""
    total = int(rate * seconds)
    began = time.monotonic()
    pending: set[asyncio.Task[None]] = set()
    for n in range(total):
        delay = began + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(post_report(http, store, report_body(run, start + n), results))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    return start + total


# ---------------------------------------------------------------- the run
async def bench(args: argparse.Namespace, data_dir: Path) -> bool:
    """Run the bench; True when every check passes."""
    platform = Platform(data_dir)
    store = Store(platform.db_path)
    run = f"ob{int(time.time())}"
    ok = True
    try:
        print(f"starting the platform in {data_dir} (web {platform.url}) ...", file=sys.stderr, flush=True)
        await platform.ready()
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=platform.url, timeout=args.timeout, limits=limits) as http:
            warm = Results()
            for i in range(5):
                await post_report(http, store, report_body(run, i), warm)
            await asyncio.sleep(5)
            fds_start, threads_start = platform.worker_store()

            print(f"capacity: 8 concurrent for {args.capacity:.0f} s ...", file=sys.stderr, flush=True)
            cap = Results()
            began = time.monotonic()
            nxt = await closed_loop(http, store, run, 100, args.capacity, 8, cap)
            elapsed = time.monotonic() - began
            answered = cap.statuses["201"] + cap.statuses["202"]
            capacity = answered / elapsed
            await asyncio.sleep(10)
            fds_idle, threads_idle = platform.worker_store()
            shared, per = fds_per_connection(platform.db_path)
            connections = pool_size()
            idle_bound = max(fds_idle, shared + per * connections)  # every pooled connection open, idle

            rate = args.rate or max(0.5, capacity * args.factor)
            print(f"burst: {rate:.1f} reports/s for {args.burst:.0f} s ...", file=sys.stderr, flush=True)
            burst = Results()
            peak = [fds_idle, threads_idle]
            sampling = True

            async def sample() -> None:
                while sampling:
                    fds, threads = platform.worker_store()
                    peak[0], peak[1] = max(peak[0], fds), max(peak[1], threads)
                    await asyncio.sleep(1)

            sampler = asyncio.create_task(sample())
            began = time.monotonic()
            await open_loop(http, store, run, nxt, rate, args.burst, burst)
            burst_end = time.monotonic()
            offered_for = burst_end - began

            accepted = warm.accepted | cap.accepted | burst.accepted
            print("catching up ...", file=sys.stderr, flush=True)
            caught_up_at: float | None = None
            state: dict[str, int] = {}
            fds_after = threads_after = -1
            while True:
                state = await asyncio.to_thread(store.state_of, accepted)
                fds_after, threads_after = platform.worker_store()
                since = time.monotonic() - burst_end
                print(f"  +{since:5.0f} s: {state['with_task']}/{len(accepted)} with task, "
                      f"{state['notices_delivered']} notices delivered, {state['pending']} pending "
                      f"({state['pending_0_attempts']} with 0 attempts); worker: {fds_after} store fds, "
                      f"{threads_after} threads", file=sys.stderr, flush=True)
                done = (state["missing"] == 0 and state["pending"] == 0
                        and state["notices_delivered"] == len(accepted) and 0 <= fds_after <= idle_bound)
                if done:
                    caught_up_at = since
                    break
                if since > args.catch_up:
                    break
                await asyncio.sleep(5)
            sampling = False
            await sampler

        print(f"Overload bench: {ROOT} (git {git_head()}), data {data_dir}")
        print(f"  load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
        print(f"  capacity (8 concurrent, {elapsed:.0f} s): {capacity:.2f} reports/s answered "
              f"({cap.line()}); p50 {percentile(cap.latencies, .5):.2f} s, p95 {percentile(cap.latencies, .95):.2f} s")
        print(f"  burst: {rate:.2f} reports/s offered for {offered_for:.0f} s "
              f"({len(burst.statuses) and sum(burst.statuses.values())} offered)")
        print(f"    answers: {burst.line()}")
        print(f"    latency p50 {percentile(burst.latencies, .5):.2f} s, p95 {percentile(burst.latencies, .95):.2f} s, "
              f"max {max(burst.latencies, default=0):.2f} s")
        created = cap.statuses["201"] + burst.statuses["201"]
        late = cap.created_without_task + burst.created_without_task
        print(f"    201 answers whose task was not in the store right after: {late} of {created}")
        print(f"  accepted in all (201 + 202, warm-up included): {len(accepted)}")
        print(f"  in the store with a task: {state['with_task']}; missing: {state['missing']}")
        print(f"  'dispatched' notice rows: {state['notice_rows']}, delivered: {state['notices_delivered']}; "
              f"notices pending: {state['pending']} (with 0 attempts: {state['pending_0_attempts']})")
        print(f"  worker store fds: start {fds_start}, idle before the burst {fds_idle}, peak {peak[0]}, "
              f"after {fds_after}; with all {connections} pooled connections open and idle: at most {idle_bound} "
              f"({shared} + {per} per connection)")
        print(f"  worker threads: start {threads_start}, idle {threads_idle}, peak {peak[1]}, after {threads_after}")
        if caught_up_at is None:
            print(f"  caught up: NO, not within {args.catch_up:.0f} s after the burst")
        else:
            print(f"  caught up: {caught_up_at:.0f} s after the burst")
        checks = [
            ("every accepted report in the store with its task", state["missing"] == 0),
            ("every 'dispatched' notice delivered, none pending", state["pending"] == 0
             and state["notices_delivered"] == len(accepted)),
            ("no notice pending with 0 attempts", state["pending_0_attempts"] == 0),
            ("worker connections back at idle", 0 <= fds_after <= idle_bound),
            ("every 201 had its task in the store", late == 0),
            (f"caught up within {args.catch_up:.0f} s", caught_up_at is not None),
        ]
        for name, passed in checks:
            print(f"  {'PASS' if passed else 'FAIL'} {name}")
            ok &= passed
    finally:
        platform.stop()
    return ok


def git_head() -> str:
    """The commit of the code under test."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=False)
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factor", type=float, default=2.0, help="offered rate / measured capacity")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offer this many reports/s instead (to compare runs at the same load)")
    parser.add_argument("--capacity", type=float, default=30.0, help="seconds of the capacity measurement")
    parser.add_argument("--burst", type=float, default=120.0, help="seconds of the burst")
    parser.add_argument("--catch-up", type=float, default=300.0, help="seconds allowed after the burst")
    parser.add_argument("--timeout", type=float, default=60.0, help="HTTP client timeout per request")
    parser.add_argument("--keep", action="store_true", help="keep the data directory (logs, store)")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="wulian-overload-"))
    ok = asyncio.run(bench(args, data_dir))
    print("PASS" if ok else "FAIL")
    if not args.keep:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
