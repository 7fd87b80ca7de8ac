"""Starting a process instance (issue 14): the one way every entrance does it — the pages, the API,
the typed client (``WulianClient.start_process``) and the CLI.

The start form is checked by the definition's own form (:func:`processes.forms.form_problems`)
before anything is started; the instance is pinned to the kind's active definition, whose content
and catalogues travel in the start input; the instance id is derived from the kind and the external
id when there is one (the same again is the same instance, never a second one); the requester gets
an access key (shown once; only its hash travels and is stored) to confirm and rate on the portal.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from processes.definition import ProcessDefinition
from processes.forms import form_problems, offered_values
from processes.instance import Requester
from workflows.inputs import InvalidInput, Problem
from workflows.process_instance import ProcessInstanceWorkflow, ProcessStart
from wulian.process_admin import catalogues_of


class InvalidProcessStart(InvalidInput):
    """A start refused before anything was started; ``problems`` lists every reason."""


@dataclass(frozen=True)
class StartedProcess:
    """The instance a start made (with the requester's access key, shown once), or the existing one
    with the same kind and external id (``duplicate``: no key)."""

    instance_id: str
    access_key: str | None = None
    duplicate: bool = False


def instance_id_for(kind: str, external_id: str | None) -> str:
    """The workflow id of a new instance: derived from kind and external id, else fresh."""
    if external_id:
        digest = hashlib.sha256(f"{kind}\x00{external_id}".encode()).hexdigest()
        return f"PI-X{digest[:20].upper()}"
    return f"PI-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(5).upper()}"


def access_hash(key: str) -> str:
    """What is kept of a requester's access key."""
    return hashlib.sha256(key.encode()).hexdigest()


def holds_access(stored_hash: str, key: str | None) -> bool:
    """Whether ``key`` is the access key whose hash is ``stored_hash`` (constant time)."""
    return bool(stored_hash and key) and hmac.compare_digest(stored_hash, access_hash(key or ""))


def start_problems(d: ProcessDefinition, values: dict[str, Any]) -> list[Problem]:
    """Every problem of a start form's ``values`` (empty: valid)."""
    return form_problems(d.input, values, offered_values(d.input, d.input, values, catalogues_of(d)))


async def start_process(client: Client, task_queue: str, d: ProcessDefinition, requester: Requester,
                        values: dict[str, Any], actor: str, *, external_id: str | None = None) -> StartedProcess:
    """Start an instance of ``d`` (checked first: :class:`InvalidProcessStart`, nothing started)."""
    problems = start_problems(d, values)
    if problems:
        raise InvalidProcessStart(problems)
    instance_id = instance_id_for(d.kind, external_id)
    key = secrets.token_urlsafe(18)
    begin = ProcessStart(instance_id, d.model_dump(mode="json"), requester, values, actor,
                         catalogues=catalogues_of(d), external_id=external_id, access_hash=access_hash(key))
    try:
        await client.start_workflow(ProcessInstanceWorkflow.run, begin, id=instance_id, task_queue=task_queue,
                                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
    except WorkflowAlreadyStartedError:
        return StartedProcess(instance_id, duplicate=True)
    return StartedProcess(instance_id, key)
