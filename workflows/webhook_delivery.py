"""WebhookDelivery: one long-running workflow per webhook subscription, sending its queued changes one
by one, in the order they were queued (so an event's changes arrive in order).

The projection queues a change (a ``webhookdelivery`` row) in the event's own transaction and then
wakes this workflow with a signal-with-start (``activities/webhooks.py``), so it runs only while a
subscription has something to send, and a lost wake-up costs at most ``webhook_poll_seconds``: the
workflow also looks by itself, and every worker wakes all active subscriptions when it starts.

Each round asks the activity ``next_webhook_delivery`` for the oldest pending delivery and sends it
with ``send_webhook`` under a retry policy with exponential back-off (the parameters come from the
settings through the first activity's answer, so this code reads no settings). The activity itself
gives a change up once it is older than ``webhook_give_up_hours`` (dead-lettered, answer ``dead``):
the next change goes only after the one before it was delivered or given up. A crash of a worker
mid-attempt is an activity timeout: the attempt is retried elsewhere with the same change id, body
and secret. The workflow continues as new every :data:`ROUNDS` rounds to keep its history short.

Deterministic: no I/O, clocks or randomness; activities are called by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.common import RetryPolicy

if TYPE_CHECKING:
    from temporalio.client import Client

ACTIVITY_NEXT = "next_webhook_delivery"
ACTIVITY_SEND = "send_webhook"
#: The workflow id of a subscription's delivery workflow: with the task queue, so that two stores whose
#: workers share a namespace (tests, a staging copy) never signal each other's workflows.
WORKFLOW_ID = "webhook-delivery-{}-{}"
#: Rounds (a delivery sent, or a wait) before the workflow continues as new.
ROUNDS = 200
_STORE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


def workflow_id(task_queue: str, subscription_id: int) -> str:
    """The id of ``subscription_id``'s delivery workflow (one at a time: it is the order's keeper)."""
    return WORKFLOW_ID.format(task_queue, subscription_id)


@dataclass
class DeliveryRun:
    """The workflow's input: which subscription it serves."""

    subscription_id: int


@dataclass
class NextDelivery:
    """The answer of ``next_webhook_delivery``: stop when the subscription is inactive (or gone), else
    send ``delivery_id`` (None: nothing pending, wait up to ``poll_seconds``) with this retry policy."""

    inactive: bool
    delivery_id: int | None
    retry_initial_seconds: float
    retry_max_seconds: float
    attempt_timeout_seconds: float
    poll_seconds: float


@workflow.defn(name="WebhookDelivery")
class WebhookDelivery:
    """A subscription's sender (see the module's docstring)."""

    def __init__(self) -> None:
        self._woken = False

    @workflow.signal
    def wake(self) -> None:
        """Something was queued: look at once."""
        self._woken = True

    @workflow.run
    async def run(self, job: DeliveryRun) -> str:
        """Send the subscription's pending changes in order; ``"inactive"`` once it is deactivated."""
        for _ in range(ROUNDS):
            self._woken = False
            nxt: NextDelivery = await workflow.execute_activity(
                ACTIVITY_NEXT, job.subscription_id, result_type=NextDelivery,
                start_to_close_timeout=timedelta(seconds=30), retry_policy=_STORE_RETRY)
            if nxt.inactive:
                return "inactive"
            if nxt.delivery_id is None:
                try:
                    await workflow.wait_condition(lambda: self._woken, timeout=timedelta(seconds=nxt.poll_seconds))
                except TimeoutError:
                    pass
                continue
            await workflow.execute_activity(
                ACTIVITY_SEND, nxt.delivery_id, result_type=str,
                start_to_close_timeout=timedelta(seconds=nxt.attempt_timeout_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=nxt.retry_initial_seconds), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=max(nxt.retry_initial_seconds, nxt.retry_max_seconds)),
                    maximum_attempts=0))  # until delivered or given up by the activity (its age)
        workflow.continue_as_new(job)


async def wake(client: Client, task_queue: str, subscription_id: int) -> None:
    """Signal a subscription's delivery workflow, starting it when none runs (signal-with-start).
    Called from outside workflows: the projection's activity, the worker's start, the admin page."""
    await client.start_workflow(WebhookDelivery.run, DeliveryRun(subscription_id),
                                id=workflow_id(task_queue, subscription_id), task_queue=task_queue, start_signal="wake")
