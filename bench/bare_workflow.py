"""The baseline of ``bench/throughput.py``: a bare workflow of three trivial activities, on the same
Temporal server as the platform, with a worker in a process of its own (as the platform's is).

    python -m bench.bare_workflow --address 127.0.0.1:7233 --task-queue bare-XYZ

runs the worker until SIGTERM. The workflow does what an engine costs at the least for a report:
a start, three activity round trips, a result. The worker uses Temporal's default sandbox with no
passthrough modules beyond the SDK's, so it is what any Python service on Temporal pays.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


@activity.defn
async def bare_step(n: int) -> int:
    """A trivial activity."""
    return n + 1


@workflow.defn
class BareWorkflow:
    """Three activities one after the other."""

    @workflow.run
    async def run(self, n: int) -> int:
        """The result is ``n + 3``."""
        for _ in range(3):
            n = await workflow.execute_activity(bare_step, n, start_to_close_timeout=timedelta(seconds=30))
        return n


async def serve(address: str, task_queue: str) -> None:
    """Run the baseline worker until SIGTERM or SIGINT."""
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[BareWorkflow], activities=[bare_step]):
        print("ready", flush=True)
        await stop.wait()


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
