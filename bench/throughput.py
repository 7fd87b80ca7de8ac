"""Intake throughput beside bare Temporal on the same server, in the same run (issue 13).

    .venv/bin/python -m bench.throughput [--reports 300] [--rates 5,10] [--rate-seconds 30]
                                         [--loops 80] [--sustained 0] [--workers N] [--keep]

Starts the platform as ``make run`` does (``python -m wulian.launcher``: Temporal dev server,
worker(s), web) on a temporary data directory and free ports, and a baseline worker
(``bench/bare_workflow.py``: three trivial activities, default sandbox) in a process of its own on
the same dev server. Then, one after the other:

1. the baseline at 8 and at 32 concurrent clients (``--reports`` workflows each): workflows/s, p50/p95;
2. the platform's intake at 8 and 32 concurrent (``--reports`` reports each through
   ``POST /api/events``): accepted/s, answer p50/p95/p99, 201 vs 202, report → task-in-store latency;
3. offered rates (``--rates``, open loop for ``--rate-seconds`` each): the same figures;
4. whole loops (report, claim, complete, verify, rate through the API) at 8 concurrent: loops/s;
5. optionally ``--sustained N`` reports at 16 concurrent with the worker's RSS sampled every 1,000;
6. round trips of a sample of events, read from their histories: history events, workflow tasks,
   activities, local activities, timers (after intake, and after a whole loop).

CPU seconds and RSS of every process are read from ``/proc`` around each phase. The ratio printed is
intake accepted/s over baseline workflows/s at the same concurrency; the targets (issue 13): at least
0.8, and at an offered 10 reports/s a p95 answer under 1 s with no 202. The exit code is 1 when a
target is missed. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.bare_workflow import BareWorkflow
from bench.overload_bench import ROOT, Platform, Store, git_head, percentile, report_body

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- processes
def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(proc.name))
    return found


def _role(pid: int) -> str | None:
    try:
        cmd = (Path(f"/proc/{pid}/cmdline")).read_bytes()
    except OSError:
        return None
    if b"worker.py" in cmd:
        return "worker"
    if b"uvicorn" in cmd:
        return "web"
    if b"start-dev" in cmd:
        return "temporal"
    if b"bench.bare_workflow" in cmd:
        return "baseline worker"
    return None


def cpu_and_rss(pid: int) -> tuple[float, float]:
    """(CPU seconds so far, RSS in MB) of ``pid``; (0, 0) when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0.0, 0.0
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return cpu, int(statm[1]) * PAGE / 2**20


@dataclass
class Processes:
    """The processes measured: the launcher's children and the baseline worker."""

    launcher: int
    baseline: int

    def pids(self) -> dict[str, int]:
        """Role (numbered when there are several of one role) → pid."""
        out: dict[str, int] = {}
        counts: Counter[str] = Counter()
        for pid in sorted(_children(self.launcher)) + [self.baseline]:
            role = _role(pid)
            if role is None:
                continue
            counts[role] += 1
            out[f"{role} {counts[role]}" if role == "worker" else role] = pid
        return out

    def sample(self) -> dict[str, tuple[float, float]]:
        """Role → (CPU seconds, RSS MB) now."""
        return {role: cpu_and_rss(pid) for role, pid in self.pids().items()}


def usage_line(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]],
               seconds: float, count: int) -> str:
    """CPU share, CPU seconds per item and RSS of each process over a phase."""
    parts = []
    for role, (cpu1, rss) in after.items():
        cpu0 = before.get(role, (cpu1, rss))[0]
        used = cpu1 - cpu0
        parts.append(f"{role}: {100 * used / max(seconds, 1e-9):.0f}% of a core, "
                     f"{used / max(count, 1):.3f} core-s/item, RSS {rss:.0f} MB")
    return "; ".join(parts)


# ---------------------------------------------------------------- figures
@dataclass
class Phase:
    """What one phase measured."""

    name: str
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    to_task: list[float] = field(default_factory=list)  # report sent → its task seen in the store
    accepted: list[str] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    usage: str = ""

    @property
    def answered(self) -> int:
        """201 and 202 answers (or baseline results)."""
        return self.statuses["201"] + self.statuses["202"] + self.statuses["done"]

    @property
    def rate(self) -> float:
        """Accepted per second over the phase."""
        return self.answered / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """The phase's figures in one line."""
        lat = self.latencies
        text = (f"{self.name}: {self.answered} in {self.seconds:.1f} s = {self.rate:.2f}/s; answer p50 "
                f"{percentile(lat, .5):.2f} s, p95 {percentile(lat, .95):.2f} s, p99 {percentile(lat, .99):.2f} s")
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()) if k != "done")
        if codes:
            text += f"; {codes}"
        if self.to_task:
            text += (f"; report → task in store p50 {percentile(self.to_task, .5):.2f} s, "
                     f"p95 {percentile(self.to_task, .95):.2f} s, max {max(self.to_task):.2f} s")
        return text


class TaskWatcher:
    """Notes when each accepted report's first task appears in the store (polled every 100 ms)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.waiting: dict[str, tuple[float, Phase]] = {}
        self.running = True

    def expect(self, event_id: str, sent: float, phase: Phase) -> None:
        """Watch for ``event_id``'s task."""
        self.waiting[event_id] = (sent, phase)

    def _seen(self, ids: list[str]) -> set[str]:
        conn = self.store._connect()  # noqa: SLF001 - the bench's read-only connection
        try:
            marks = ",".join("?" * len(ids))
            return {r[0] for r in conn.execute(f"SELECT DISTINCT event_id FROM task WHERE event_id IN ({marks})",  # noqa: S608
                                               ids)}
        finally:
            conn.close()

    async def run(self) -> None:
        """Poll until stopped and nothing is left to see (or 120 s after the stop)."""
        stopped_at: float | None = None
        while True:
            if self.waiting:
                ids = list(self.waiting)[:500]
                seen = await asyncio.to_thread(self._seen, ids)
                now = time.monotonic()
                for event_id in seen:
                    sent, phase = self.waiting.pop(event_id)
                    phase.to_task.append(now - sent)
            if not self.running:
                stopped_at = stopped_at or time.monotonic()
                if not self.waiting or time.monotonic() - stopped_at > 120:
                    return
            await asyncio.sleep(0.1)


# ---------------------------------------------------------------- load
async def post(http: httpx.AsyncClient, body: dict[str, Any], phase: Phase,
               watcher: TaskWatcher) -> dict[str, Any] | None:
    """POST one report; note its answer and watch for its task."""
    sent = time.monotonic()
    try:
        response = await http.post("/api/events", json=body)
    except httpx.HTTPError as exc:
        phase.statuses[type(exc).__name__] += 1
        return None
    phase.latencies.append(time.monotonic() - sent)
    phase.statuses[str(response.status_code)] += 1
    if response.status_code not in (201, 202):
        return None
    answer = response.json()
    phase.accepted.append(answer["event_id"])
    watcher.expect(answer["event_id"], sent, phase)
    return answer  # type: ignore[no-any-return]


async def closed_loop(http: httpx.AsyncClient, run: str, start: int, count: int, concurrency: int,
                      phase: Phase, watcher: TaskWatcher) -> None:
    """``concurrency`` clients sending ``count`` reports in all, each one after the other."""
    numbers = iter(range(start, start + count))

    async def client() -> None:
        for n in numbers:
            await post(http, report_body(run, n), phase, watcher)

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    phase.seconds = time.monotonic() - began


async def open_loop(http: httpx.AsyncClient, run: str, start: int, rate: float, seconds: float,
                    phase: Phase, watcher: TaskWatcher) -> None:
    """One report every 1/rate s for ``seconds``, whatever the answers do."""
    total = int(rate * seconds)
    began = time.monotonic()
    tasks = []
    for n in range(total):
        delay = began + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(http, report_body(run, start + n), phase, watcher)))
    await asyncio.gather(*tasks)
    phase.seconds = max(seconds, time.monotonic() - began)


async def baseline(client: Client, task_queue: str, count: int, concurrency: int, phase: Phase) -> None:
    """``count`` bare workflows, ``concurrency`` at a time, each started and awaited."""
    numbers = iter(range(count))

    async def one() -> None:
        for n in numbers:
            sent = time.monotonic()
            await client.execute_workflow(BareWorkflow.run, n, id=f"bare-{uuid.uuid4().hex}", task_queue=task_queue)
            phase.latencies.append(time.monotonic() - sent)
            phase.statuses["done"] += 1

    began = time.monotonic()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    phase.seconds = time.monotonic() - began


class Loops:
    """Whole loops through the API: report (SR-01 at HS01-G4, a grid the other phases do not use,
    routed to it), the grid worker claims and completes, the community verifies, the reporter rates."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.headers: dict[str, dict[str, str]] = {}

    async def login(self) -> None:
        """One token each for the grid worker and the community (demo users)."""
        for user in ("wg_hs01_g4", "sq_hs01"):
            r = await self.http.post("/api/auth/login", json={"username": user, "password": "demo12345"})
            r.raise_for_status()
            self.headers[user] = {"Authorization": f"Bearer {r.json()['token']}"}

    async def _ok(self, url: str, user: str, body: dict[str, Any] | None = None) -> None:
        for _ in range(50):
            r = await self.http.post(url, headers=self.headers[user], json=body)
            if r.status_code == 200:
                return
            if r.status_code not in (404, 409):
                raise RuntimeError(f"{url}: {r.status_code} {r.text}")
            await asyncio.sleep(0.2)  # the task is not in the store yet
        raise RuntimeError(f"{url}: never accepted")

    async def one(self, run: str, n: int) -> str:
        """One loop; returns the event id."""
        # One reporter for every loop: repeats by other people would move the event up a tier.
        body = {**report_body(run, n), "category": "SR-01", "location": {"grid": "HS01-G4"},
                "reporter": {"name": "压测", "phone": "13900000001"}}
        r = await self.http.post("/api/events", json=body)
        answer = r.json()
        event_id = answer["event_id"]
        await self._ok(f"/api/tasks/{event_id}.T1/claim", "wg_hs01_g4")
        await self._ok(f"/api/tasks/{event_id}.T1/complete", "wg_hs01_g4", {"result": "已清理"})
        await self._ok(f"/api/tasks/{event_id}.T2/claim", "sq_hs01")
        await self._ok(f"/api/tasks/{event_id}.T2/complete", "sq_hs01", {"result": "现场已核实", "passed": True})
        receipt, key = answer["receipt_code"], answer["tracking_key"]
        for _ in range(50):
            r = await self.http.post(f"/api/track/{receipt}/rating", json={"rating": "satisfied", "tracking_key": key})
            if r.status_code == 200:
                return event_id  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)  # the reporter is told first
        raise RuntimeError(f"rating {event_id}: {r.status_code} {r.text}")

    async def run(self, run: str, start: int, count: int, concurrency: int, phase: Phase) -> None:
        """``count`` loops, ``concurrency`` at a time."""
        numbers = iter(range(start, start + count))

        async def client() -> None:
            for n in numbers:
                sent = time.monotonic()
                phase.accepted.append(await self.one(run, n))
                phase.latencies.append(time.monotonic() - sent)
                phase.statuses["done"] += 1

        began = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        phase.seconds = time.monotonic() - began


async def round_trips(client: Client, event_ids: list[str]) -> dict[str, float]:
    """Mean counts per event in the histories of ``event_ids``."""
    totals: Counter[str] = Counter()
    for event_id in event_ids:
        history = await client.get_workflow_handle(event_id).fetch_history()
        for event in history.events:
            kind = event.WhichOneof("attributes") or ""
            totals["history events"] += 1
            if kind == "workflow_task_completed_event_attributes":
                totals["workflow tasks"] += 1
            elif kind == "workflow_task_timed_out_event_attributes":
                totals["workflow task timeouts"] += 1
            elif kind == "activity_task_scheduled_event_attributes":
                totals["activities"] += 1
            elif kind == "marker_recorded_event_attributes":
                name = event.marker_recorded_event_attributes.marker_name
                totals["local activities" if "local_activity" in name else "patch markers"] += 1
            elif kind == "timer_started_event_attributes":
                totals["timers"] += 1
    n = max(len(event_ids), 1)
    return {k: v / n for k, v in totals.items()}


def trips_line(trips: dict[str, float]) -> str:
    """The round-trip counts in one line."""
    order = ["history events", "workflow tasks", "workflow task timeouts", "activities", "local activities", "timers",
             "patch markers"]
    return ", ".join(f"{k} {trips.get(k, 0):.1f}" for k in order)


# ---------------------------------------------------------------- the run
async def bench(args: argparse.Namespace, data_dir: Path) -> bool:
    """Run every phase and print the figures; True when the targets are met."""
    platform = Platform(data_dir, extra_env={"WULIAN_WORKER_PROCESSES": str(args.workers)} if args.workers else None)
    store = Store(platform.db_path)
    run = f"tp{int(time.time())}"
    address = platform.env["WULIAN_TEMPORAL_ADDRESS"]
    bare_queue = f"bare-{uuid.uuid4().hex[:8]}"
    baseline_proc: subprocess.Popen[bytes] | None = None
    lines: list[str] = []

    def say(text: str) -> None:
        lines.append(text)
        print(text, file=sys.stderr, flush=True)

    try:
        print(f"starting the platform in {data_dir} (web {platform.url}) ...", file=sys.stderr, flush=True)
        await platform.ready()
        baseline_proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurements
            [sys.executable, "-m", "bench.bare_workflow", "--address", address, "--task-queue", bare_queue],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        assert baseline_proc.stdout is not None
        await asyncio.to_thread(baseline_proc.stdout.readline)  # "ready"
        procs = Processes(platform.proc.pid, baseline_proc.pid)
        client = await Client.connect(address)
        watcher = TaskWatcher(store)
        watching = asyncio.create_task(watcher.run())
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=64)
        phases: list[Phase] = []
        async with httpx.AsyncClient(base_url=platform.url, timeout=args.timeout, limits=limits) as http:
            warm = Phase("warm-up")
            await closed_loop(http, run, 0, 20, 4, warm, watcher)
            await baseline(client, bare_queue, 20, 4, Phase("baseline warm-up"))
            counter = 100

            async def measured(phase: Phase, work: Any, count: int) -> Phase:
                before = procs.sample()
                await work
                phase.usage = usage_line(before, procs.sample(), phase.seconds, count or phase.answered)
                say(phase.line())
                say(f"    {phase.usage}")
                phases.append(phase)
                return phase

            results: dict[str, Phase] = {}
            for conc in (8, 32):
                p = Phase(f"baseline, {conc} concurrent")
                results[f"base{conc}"] = await measured(p, baseline(client, bare_queue, args.reports, conc, p), 0)
                p = Phase(f"intake, {conc} concurrent")
                results[f"intake{conc}"] = await measured(
                    p, closed_loop(http, run, counter, args.reports, conc, p, watcher), 0)
                counter += args.reports
                await asyncio.sleep(3)
            for rate in args.rates:
                p = Phase(f"intake, offered {rate:g}/s for {args.rate_seconds:g} s")
                results[f"rate{rate:g}"] = await measured(
                    p, open_loop(http, run, counter, rate, args.rate_seconds, p, watcher), 0)
                counter += int(rate * args.rate_seconds) + 1
                await asyncio.sleep(5)
            loops = Loops(http)
            if args.loops:
                await loops.login()
                p = Phase("whole loops, 8 concurrent")
                results["loops"] = await measured(p, loops.run(run, counter, args.loops, 8, p), 0)
                counter += args.loops
            if args.sustained:
                say(f"sustained: {args.sustained} reports at 16 concurrent, worker RSS every 1,000")
                done = 0
                while done < args.sustained:
                    batch = min(1000, args.sustained - done)
                    p = Phase(f"sustained {done + batch}")
                    await closed_loop(http, run, counter, batch, 16, p, watcher)
                    counter += batch
                    done += batch
                    rss = {role: f"{r:.0f} MB" for role, (_, r) in procs.sample().items() if role.startswith("worker")}
                    say(f"    after {done}: {p.rate:.2f}/s, {p.statuses}, RSS {rss}")
        watcher.running = False
        await watching
        await asyncio.sleep(5)  # the last deliveries
        sample = random.Random(1).sample(results["intake8"].accepted, min(20, len(results["intake8"].accepted)))
        intake_trips = await round_trips(client, sample)
        loop_trips = await round_trips(client, results["loops"].accepted[:20]) if args.loops else {}

        print(f"\nThroughput bench: {ROOT} (git {git_head()}), data {data_dir}")
        print(f"  {os.cpu_count()} CPUs; load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"worker processes: {len([r for r in procs.pids() if r.startswith('worker')])}")
        for line in lines:
            print(f"  {line}")
        ok = True
        for conc in (8, 32):
            base, intake = results[f"base{conc}"], results[f"intake{conc}"]
            ratio = intake.rate / base.rate if base.rate else 0.0
            ok &= ratio >= 0.8
            print(f"  ratio at {conc} concurrent: intake {intake.rate:.2f}/s / baseline {base.rate:.2f}/s = "
                  f"{ratio:.2f} (target ≥ 0.80)")
        ten = results.get("rate10")
        if ten is not None:
            p95 = percentile(ten.latencies, .95)
            met = p95 < 1.0 and ten.statuses["202"] == 0 and ten.answered == int(10 * args.rate_seconds)
            ok &= met
            print(f"  offered 10/s: p95 {p95:.2f} s, {ten.statuses['202']} answered 202 "
                  f"(target: p95 < 1 s, no 202): {'met' if met else 'MISSED'}")
        print(f"  round trips per report after intake (mean of {len(sample)}): {trips_line(intake_trips)}")
        if loop_trips:
            print(f"  round trips per whole loop (mean of {min(20, len(results['loops'].accepted))}): "
                  f"{trips_line(loop_trips)}")
        left = len(watcher.waiting)
        print(f"  accepted reports whose task never reached the store: {left}")
        ok &= left == 0
        return ok
    finally:
        if baseline_proc is not None:
            baseline_proc.terminate()
            baseline_proc.wait(10)
        platform.stop()


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=300,
                        help="reports (and baseline workflows) per closed-loop phase")
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",") if x], default=[5.0, 10.0])
    parser.add_argument("--rate-seconds", type=float, default=30.0)
    parser.add_argument("--loops", type=int, default=80, help="whole loops at 8 concurrent (0: none)")
    parser.add_argument("--sustained", type=int, default=0, help="reports for the memory phase (e.g. 10000)")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (default: the platform's setting)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="wulian-throughput-"))
    ok = asyncio.run(bench(args, data_dir))
    if not args.keep:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
