"""What the ProcessInstance workflow sends its activities (pure: it is imported inside the sandbox):
the activities' names, the projection of an instance, and a problem event a task asks for."""

from __future__ import annotations

from dataclasses import dataclass, field

from processes.instance import Instance, Requester

ACTIVITY_PROJECT_PROCESS = "project_process"
ACTIVITY_PROCESS_EVENT = "start_process_event"


@dataclass
class ProcessProjection:
    """What an instance's workflow projects (``store/process_projection.py``): the instance, the
    titles of its tasks' kinds (from its definition), who started it, the hash of the requester's
    access key, its external id, the tasks whose deadline passed with no move, and the projection's
    number (each one of an instance counts one up: an older one never overwrites a newer one)."""

    instance: Instance
    version: int = 0
    titles: dict[str, str] = field(default_factory=dict)
    started_by: str = ""
    access_hash: str = ""
    external_id: str | None = None
    late: list[str] = field(default_factory=list)


@dataclass
class ProcessEventRequest:
    """A problem event an instance's task asks for: the instance and task (its external id: asked
    twice, it is one event), the category (empty or unknown: triage decides), the description, and
    the requester (where it is, who raised it)."""

    instance_id: str
    task_id: str
    category: str
    description: str
    requester: Requester
