"""Data passed into, out of and kept by the EventLifecycle workflow (one dataclass per message).

The workflow input :class:`EventReport` is the same JSON object as the body of
``POST /api/events``, so integrations can start a workflow with the Temporal CLI directly.
"""


import hashlib
from dataclasses import dataclass, field
from typing import Any

#: Names under which activities are registered; workflows call them by name (no imports of I/O code).
ACTIVITY_ROUTE = "route_event"
ACTIVITY_DUE = "compute_due"
ACTIVITY_PROJECT = "project_event"
ACTIVITY_MARKS = "supervision_marks"
ACTIVITY_DELIVER = "deliver_notice"
ACTIVITY_RECEIPT = "issue_receipt"

#: Custom search attributes the workflow keeps current (registered on the dev server at start).
SEARCH_ATTRIBUTES = {
    "WulianStage": "Keyword",
    "WulianUnit": "Keyword",
    "WulianCategory": "Keyword",
    "WulianReceipt": "Keyword",
}

#: The kinds of refusal (an ``ApplicationError``'s ``type``), which the web maps to 409/403/404/400.
CONFLICT = "Conflict"
FORBIDDEN = "Forbidden"
NOT_FOUND = "NotFound"
INVALID = "Invalid"

RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")
#: Where a report comes from; ``deliberation``: a community deliberation's decision (processes, issue 14).
SOURCES = ("portal", "hotline", "camera", "grid_patrol", "wechat", "api", "cli", "deliberation")

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def receipt_code_for(event_id: str) -> str:
    """The receipt code (回执码) that events started before random receipt codes had: 10 Crockford
    base-32 digits derived from the event id. Kept only so that those events replay unchanged;
    new events get a random code (``store.receipts``), never one derived from anything public.
    """
    number = int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:7], "big")
    chars = []
    for _ in range(10):
        number, digit = divmod(number, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(chars)


@dataclass
class Location:
    """Where the problem is: a grid code, coordinates, or a free-text address (any may be set)."""

    grid: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None


@dataclass
class Reporter:
    """Who reported it (a resident, a grid worker, an integration)."""

    name: str = ""
    phone: str = ""


@dataclass
class EventReport:
    """A report of a problem: the workflow input and the body of ``POST /api/events``."""

    category: str = ""
    description: str = ""
    location: Location = field(default_factory=Location)
    reporter: Reporter = field(default_factory=Reporter)
    source: str = "api"
    external_id: str | None = None
    severity: int = 1  # level on the category's severity scale (1 = the mildest)
    needs_enforcement: bool = False  # the reporter (e.g. a grid worker) asks for law-enforcement power
    # Set by the entrance that takes the report (the web); a start through the Temporal client leaves
    # them empty and the workflow draws them (activity ``issue_receipt``). Never derived from the
    # event id or the external id: the receipt code is random, the tracking key is shown once to the
    # reporter and only its hash travels (the nonce lets the delivery activity, which holds the
    # server secret, put the key into the reporter's notices without it being stored anywhere).
    receipt_code: str = ""
    tracking_key_hash: str = ""
    tracking_nonce: str = ""
    # Set by the web when the report came with an API key (``web/api_keys.py``): the integration's
    # name, kept on the event (``event.integration``) so it can read its own reports back (Open311).
    integration: str = ""
    # A link to a photo or other media of the report (Open311's ``media_url``), http(s) only.
    media_url: str = ""
    #: A camera alarm's camera (else the part of a camera's ``external_id`` before ``:``, as in
    #: ``CAM-0042:20260101T0800``): alarms of one camera and category within the window are one event
    #: (``workflows.inputs.camera_of``).
    camera_id: str | None = None


@dataclass
class Actor:
    """Who did something: a user, a rule, a timer or the system."""

    username: str
    display_name: str = ""
    unit: str = ""
    role: str = ""
    kind: str = "user"  # user | rule | timer | system | reporter


@dataclass
class RoutingRequest:
    """Facts handed to the routing activity."""

    event_id: str
    report: EventReport
    returned_count: int = 0
    escalated_count: int = 0
    list_version: str | None = None  # re-routing an event in flight keeps its version; None = active
    #: Units that returned (退回) the event: the list never places it there again (every one excluded: triage).
    exclude: list[str] = field(default_factory=list)


@dataclass
class Decision:
    """The routing decision for an event, explained: which rule of which list version, on which facts."""

    placed: bool
    tier: str
    unit: str
    department: str | None
    rule: str
    list_version: str
    reason: str
    grid: str | None = None
    community: str | None = None
    street: str | None = None
    category_name: str = ""
    co_departments: list[str] = field(default_factory=list)
    priority: int = 3
    deadline_hours: dict[str, int] = field(default_factory=dict)
    handling_due: str | None = None  # ISO timestamp, computed in working time by the activity
    facts: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None  # set when a supervisor placed the event by hand (triage)
    assignee: str | None = None  # a person (e.g. a stationed "1+X" cadre) whose inbox gets the task
    #: Units an overdue task climbs, lowest first (grid, community, street, city command centre).
    ladder: list[str] = field(default_factory=list)
    #: Why, as a code with parameters (rules/reasons.py); ``reason`` is its English text. Empty in
    #: decisions made before codes (and by a supervisor's triage): pages then show ``reason``.
    reason_code: str = ""
    reason_params: dict[str, Any] = field(default_factory=dict)
    #: Who may verify (核查), in order: the unit at the list's verification tier for the event's place,
    #: then the tiers above (computed by the routing activity from the list's policy).
    verification: list[str] = field(default_factory=list)
    #: Units excluded from this decision because they returned the event.
    excluded: list[str] = field(default_factory=list)

    def verifier(self, handling_unit: str) -> str | None:
        """The unit that verifies work done by ``handling_unit``: the first candidate that is not the
        handling unit itself (nobody verifies their own unit's work), None without candidates."""
        candidates = self.verification or self.ladder  # decisions from before the policy: the ladder
        others = [unit for unit in candidates if unit != handling_unit]
        if others:
            return others[0]
        return candidates[-1] if candidates else None


@dataclass
class DueRequest:
    """Ask for the time ``hours`` of working time after ``start`` (both ISO, UTC)."""

    start: str
    hours: int


@dataclass
class MarksRequest:
    """Ask for the supervision marks of a task: ``hours`` of working time from ``start``."""

    start: str
    hours: int
    grace_hours: int
    #: When set (a handling task), the end of its return window too: ``return_by``, this many working
    #: hours from ``start`` (patch ``marks-with-return-by``; before, a second activity).
    return_hours: int = 0


@dataclass
class Task:
    """A task in a unit's inbox: handle the event, verify it, triage it, or co-handle it."""

    task_id: str
    kind: str  # handle | verify | triage | cohandle
    unit: str
    status: str = "open"  # open | claimed | done | cancelled
    assignee: str | None = None  # only this user may claim it (None: anyone of the unit)
    hours: int = 0  # working hours allowed (extensions add to it)
    #: Supervision moments (ISO): remind_50, remind_80, due, escalate; and which have fired.
    marks: dict[str, str] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)
    extension_hours: int = 0  # requested, awaiting a supervisor
    reason: str = ""  # of a return, escalation, extension or co-handling request
    photos: list[str] = field(default_factory=list)
    parent: str | None = None  # the main task a co-handling task helps
    created_at: str = ""
    due_at: str | None = None
    claimed_by: str | None = None
    claimed_at: str | None = None
    completed_at: str | None = None
    result: str | None = None
    passed: bool | None = None
    # For assessment (issue 11); plain state, no commands, so histories from before replay unchanged.
    origin: str = ""  # handle tasks: dispatch (routing or a placement) | rework | escalation | reassign
    ended_at: str | None = None  # when a task was cancelled
    ended_by: str = ""  # why: returned | escalated | reassigned | voided | closed
    extended_hours: int = 0  # extensions approved by a supervisor (added to ``hours``)


@dataclass
class TimelineEntry:
    """One step of an event, with its actor, time and state change."""

    seq: int
    stage: str
    action: str
    actor: str
    actor_kind: str
    at: str
    from_state: str | None = None
    to_state: str | None = None
    note: str = ""
    actor_name: str = ""


@dataclass
class Notice:
    """A notification for the reporter (or a follower), written to the outbox and delivered by an activity."""

    notice_id: str
    kind: str  # dispatched | completed | rate_request | closed | voided
    recipient: str
    body: str
    created_at: str
    status: str = "pending"  # pending | delivered | skipped
    #: On the reporter's notices that carry the tracking link: the delivery adds the link with the key,
    #: derived from the nonce (never stored), to the event's tracking page.
    tracking_nonce: str = ""
    receipt_code: str = ""
    tracking_key_hash: str = ""  # the key the delivery derives must have this hash (else no link)


@dataclass
class Follower:
    """Someone who follows an open event ("me too"): counted once, told of its progress by phone."""

    key: str  # sha256 of the phone (or of the client address when no phone was left): the dedupe key
    phone: str = ""
    at: str = ""
    via: str = ""  # the duplicate merged into this event that brought them (an undo takes them away)


@dataclass
class Occurrence:
    """One more camera alarm of the same camera and category (signal ``add_occurrence``): counted once
    per ``alarm_id`` (the alarm's external id), so a repeated delivery counts nothing."""

    alarm_id: str
    at: str = ""


@dataclass
class MergeRecord:
    """A duplicate's merge into its primary (合并), kept on the duplicate while it is merged, so that an
    undo within ``undo_by`` returns it where it was: its state and the tasks the merge closed."""

    primary: str  # the primary's event id
    primary_receipt: str = ""
    at: str = ""
    by: str = ""  # the supervisor's username
    reason: str = ""
    undo_by: str = ""  # ISO: the end of the undo window
    from_state: str = ""
    #: The tasks the merge closed, by id, with the status each had (open or claimed).
    tasks: dict[str, str] = field(default_factory=dict)


@dataclass
class MergeCommand:
    """A supervisor merges this event (the duplicate) into ``primary``; the web checked the primary
    (in scope, open, another event) and passes its state; ``undo_hours`` is the undo window (setting)."""

    actor: Actor
    primary: str
    primary_state: str
    reason: str = ""
    undo_hours: int = 72
    primary_receipt: str = ""


@dataclass
class UnmergeCommand:
    """A supervisor undoes the merge of this event (within the window)."""

    actor: Actor
    reason: str = ""


@dataclass
class Absorbed:
    """Signal ``absorb`` to a primary: the merged duplicate's reporter and followers now follow it
    (``release_merged`` with the same duplicate id takes them away again after an undo)."""

    duplicate: str
    followers: list[Follower] = field(default_factory=list)
    actor: str = ""


@dataclass
class ReceiptRequest:
    """Ask the ``issue_receipt`` activity for the receipt code of a new event: the one the entrance
    proposes when it is well-formed and no other event has it, else a fresh random one (with a fresh
    tracking key unless the entrance gave one)."""

    event_id: str
    receipt_code: str = ""
    tracking_key_hash: str = ""
    tracking_nonce: str = ""


@dataclass
class ReceiptGrant:
    """What the intake needs when the entrance did not set it: a random receipt code, unique in the
    store, and a tracking key (its hash and the nonce it is derived from)."""

    receipt_code: str
    tracking_key_hash: str = ""
    tracking_nonce: str = ""


@dataclass
class Warning:
    """A supervision warning, kept for assessment: reminder, yellow (urging) or red (escalation)."""

    kind: str  # reminder | yellow | red
    task_id: str
    unit: str
    at: str
    note: str = ""


@dataclass
class EventSnapshot:
    """The whole live state of one event: returned by the query and projected into the store."""

    event_id: str
    receipt_code: str
    report: EventReport
    state: str
    stage: str
    created_at: str
    version: int = 0
    decision: Decision | None = None
    tasks: list[Task] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    rating: str | None = None
    rating_comment: str = ""
    closed_at: str | None = None
    warnings: list[Warning] = field(default_factory=list)
    paused: bool = False
    paused_at: str | None = None
    rating_due: str | None = None  # end of the rating window, once the reporter has been asked
    pending: str | None = None  # what waits for a supervisor: extension | return | review
    rework_count: int = 0
    returned_count: int = 0
    escalated_count: int = 0
    followers: list[Follower] = field(default_factory=list)
    returned_units: list[str] = field(default_factory=list)  # units whose return (退回) was approved
    #: Camera alarms this event stands for (the first report and each ``add_occurrence``), the latest
    #: one's time and the recent alarms' ids (a repeated delivery is counted once).
    occurrences: int = 1
    last_occurrence_at: str | None = None
    occurrence_ids: list[str] = field(default_factory=list)
    merge: MergeRecord | None = None  # set while this event is merged into another (a duplicate)
    merged: list[str] = field(default_factory=list)  # duplicates merged into this event (the primary)


@dataclass
class ClaimCommand:
    """Claim (签收) an open task of the actor's unit."""

    task_id: str
    actor: Actor


@dataclass
class CompleteCommand:
    """Complete a claimed task: a handling result, or a verification with ``passed``."""

    task_id: str
    actor: Actor
    result: str = ""
    passed: bool | None = None
    photos: list[str] = field(default_factory=list)


@dataclass
class TaskRequest:
    """A worker's request on a claimed task: return (退回), escalate (提级), extension (延期) or
    co-handling (协办)."""

    task_id: str
    actor: Actor
    action: str  # request_return | escalate | request_extension | request_cohandling
    reason: str
    hours: int = 0  # extension
    units: list[str] = field(default_factory=list)  # co-handling units


@dataclass
class SupervisorCommand:
    """A supervisor's override (approve/deny, reassign, escalate, deadline, void, close, reopen, ...)."""

    actor: Actor
    action: str
    reason: str = ""
    unit: str | None = None  # reassign
    assignee: str | None = None  # reassign to a person
    hours: int | None = None  # change_deadline: working hours allowed from the task's start
    notice_id: str | None = None  # retry_notice | skip_notice
    ladder: list[str] = field(default_factory=list)  # reassign: the new unit and the units above it
    #: reassign or approve_return with a unit: the unit's tier and department (from the organisation)
    tier: str | None = None
    department: str | None = None


@dataclass
class RateCommand:
    """The reporter's rating (评价) of the result; only the reporter holds the tracking key."""

    rating: str
    comment: str = ""
    tracking_key_hash: str = ""  # sha256 of the key the rater gave (the web checked it against the store)


@dataclass
class FollowCommand:
    """Follow an open event ("me too"): counted on the event, its notices go to ``phone`` too."""

    key: str
    phone: str = ""


@dataclass
class TriageCommand:
    """A supervisor places an event that no rule could place."""

    task_id: str
    actor: Actor
    category: str
    unit: str
    tier: str
    department: str | None = None
    note: str = ""


@dataclass
class TaskView:
    """The answer to a task action: the task and the event's new state."""

    task: Task
    event_state: str
    event_stage: str
