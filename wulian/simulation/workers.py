"""The simulation's workers in processes of their own (``wulian simulate --workers N``).

In one process the simulated people, the web's commands and the worker share one interpreter lock, and
the run is bound to one core (bench/README.md, "where the city-year's time goes"). With ``--workers``,
the platform's worker (``worker.build_worker``: the same workflows, activities and store limits as
``make run``) runs in N child processes beside the simulation, on the same time-skipping server and the
same store, as the production shape does (ARCHITECTURE.md, "Production shape").

A child is started with ``python -m wulian.simulation.workers`` and its settings in ``WULIAN_*``
variables; it prints one line, ``ready``, once its worker polls, and stops on SIGTERM (or when the
simulation dies: Linux sends it SIGTERM then).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from wulian.launcher import die_with_parent
from wulian.settings import Settings

#: Seconds a child may take to import the platform and connect.
START_TIMEOUT = 120.0
READY = b"ready"


def child_environment(settings: Settings, database_url: str, address: str) -> dict[str, str]:
    """The variables that give a child the simulation's settings: its store, server, task queue and secret."""
    return {
        **os.environ,
        "WULIAN_DATA_DIR": str(settings.data_dir),
        "WULIAN_DATABASE_URL": database_url,
        "WULIAN_TEMPORAL_ADDRESS": address,
        "WULIAN_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "WULIAN_SECRET_KEY": settings.secret(),
        "WULIAN_WORKER_METRICS_PORT": "0",  # N children must not race for one metrics port
    }


@asynccontextmanager
async def worker_processes(count: int, settings: Settings, database_url: str, address: str,
                           logs: Path) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """``count`` worker children, each polling once this is entered; stopped (SIGTERM, then SIGKILL after
    30 s) when it is left. A child's stderr goes to ``logs/worker-<n>.log``."""
    env = child_environment(settings, database_url, address)
    children: list[asyncio.subprocess.Process] = []
    try:
        for n in range(1, count + 1):
            log = (logs / f"worker-{n}.log").open("ab")  # noqa: ASYNC230 (opening a log file does not block)
            try:
                children.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "wulian.simulation.workers", env=env, stdout=asyncio.subprocess.PIPE,
                    stderr=log, preexec_fn=die_with_parent))  # only calls prctl(2)
            finally:
                log.close()  # the child holds its own descriptor
        for n, child in enumerate(children, start=1):
            assert child.stdout is not None
            try:
                line = await asyncio.wait_for(child.stdout.readline(), START_TIMEOUT)
            except TimeoutError:
                line = b""
            if line.strip() != READY:
                raise RuntimeError(f"simulation worker {n} did not start: see {logs / f'worker-{n}.log'}")
        yield children
    finally:
        for child in children:
            if child.returncode is None:
                child.terminate()
        for child in children:
            try:
                await asyncio.wait_for(child.wait(), 30)
            except TimeoutError:
                child.kill()
                await child.wait()


async def serve(settings: Settings) -> None:
    """One child: the platform's worker on the simulation's server, task queue and store, until SIGTERM."""
    from temporalio.client import Client

    from store.db import Database
    from worker import build_worker

    db = Database(settings.db_url, connections=settings.worker_store_connections)
    client = await Client.connect(settings.temporal_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with build_worker(client, db, settings.temporal_task_queue, settings=settings):
            sys.stdout.write(READY.decode() + "\n")
            sys.stdout.flush()
            await stop.wait()
    finally:
        await db.dispose()


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(Settings()))
