"""SQLModel tables. Event, task, timeline and notice rows are written only by the projection."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Unit(SQLModel, table=True):
    """A unit of the organisation: city, command centre, street, community, grid or department."""

    code: str = Field(primary_key=True, max_length=32)
    kind: str = Field(max_length=20, index=True)  # city|command_centre|street|community|grid|department
    tier: str = Field(max_length=20)
    parent: str | None = Field(default=None, max_length=32, index=True)
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=200)
    lat: float | None = None
    lon: float | None = None
    address_keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    stationed: bool = False  # "1+X" department with cadres stationed at streets


class User(SQLModel, table=True):
    """A person who logs in; scoped to one unit."""

    username: str = Field(primary_key=True, max_length=64)
    display_name: str = Field(max_length=100)
    unit: str = Field(max_length=32, index=True, foreign_key="unit.code")
    role: str = Field(max_length=32)
    password_hash: str = Field(max_length=255)
    stationed_street: str | None = Field(default=None, max_length=32)
    active: bool = True
    party_member: bool = False  # 党员: scored with the pioneer index (先锋指数)
    # Tokens issued before this moment (whole seconds, as tokens carry them) are refused: a password
    # reset or a deactivation ends every session of the user (their ``LoginSession`` rows go too).
    sessions_valid_after: datetime | None = None


class LoginSession(SQLModel, table=True):
    """An issued login token, by its id (the token's ``jti``). A token is honoured only while its row
    exists: logout deletes it, a password reset or a deactivation deletes all of the user's, and rows
    past their expiry are pruned when new tokens are issued (``store/sessions.py``)."""

    jti: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=64, index=True, foreign_key="user.username")
    issued_at: datetime
    expires_at: datetime = Field(index=True)
    via: str = Field(default="web", max_length=8)  # web (cookie) | api (bearer)


class Event(SQLModel, table=True):
    """Projection of one event (the workflow is the source of truth)."""

    __table_args__ = (
        # Repeats (routing) and related reports (the event page): same grid and category, by time.
        Index("ix_event_grid_category_created", "grid", "category", "created_at"),
        # The supervisors' event search (store/event_search.py) reads newest first, one range of one
        # of these, stopped by the page's LIMIT: the whole city, a street (its scope), a handling
        # unit, a category, a state.
        Index("ix_event_created", "created_at", "event_id"),
        Index("ix_event_street_created", "street", "created_at", "event_id"),
        Index("ix_event_unit_created", "unit", "created_at", "event_id"),
        Index("ix_event_category_created", "category", "created_at", "event_id"),
        Index("ix_event_state_created", "state", "created_at", "event_id"),
        # An integration reads its own reports back (Open311 GET requests), newest first.
        Index("ix_event_integration_created", "integration", "created_at", "event_id"),
    )

    event_id: str = Field(primary_key=True, max_length=200)
    receipt_code: str = Field(max_length=16, unique=True)
    version: int = 0
    external_id: str | None = Field(default=None, max_length=200)
    source: str = Field(max_length=32)
    category: str = Field(max_length=32)
    category_name: str = Field(default="", max_length=100)
    description: str = Field(sa_column=Column(Text, nullable=False))
    address: str | None = Field(default=None, max_length=300)
    lat: float | None = None
    lon: float | None = None
    grid: str | None = Field(default=None, max_length=32, index=True)
    community: str | None = Field(default=None, max_length=32)
    street: str | None = Field(default=None, max_length=32)
    reporter_name: str = Field(default="", max_length=100)
    reporter_phone: str = Field(default="", max_length=40)
    state: str = Field(max_length=20)
    stage: str = Field(max_length=20)
    tier: str | None = Field(default=None, max_length=20)
    unit: str | None = Field(default=None, max_length=32)
    department: str | None = Field(default=None, max_length=32)
    priority: int = 3
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    paused: bool = False
    pending: str | None = Field(default=None, max_length=16, index=True)  # extension | return | review
    rework_count: int = 0
    returned_count: int = 0
    escalated_count: int = 0
    rating: str | None = Field(default=None, max_length=32)
    rating_comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    # sha256 of the reporter's tracking key (only the reporter may rate); empty for events reported
    # before tracking keys existed, which then nobody can rate (the window accepts by default).
    tracking_key_hash: str = Field(default="", max_length=64)
    follower_count: int = 0  # people who follow it ("me too") from the nearby list
    # The move that closed it (rate, accept_by_default, close): a rating accepted by default when the
    # window ran out is counted apart from the ratings given (assessment).
    close_action: str = Field(default="", max_length=20)
    # Description and address lower-cased (``search_text``), for the event search's text filter.
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The integration whose API key made the report (store/api_keys.py); None for anyone else.
    integration: str | None = Field(default=None, max_length=64)
    # A media link given with the report (Open311 ``media_url``).
    media_url: str | None = Field(default=None, max_length=500)
    # Camera alarms it stands for (the first report and each repeat within the window; revision 0021).
    occurrences: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    # While merged into another event (a duplicate, 合并): the primary and the end of the undo window.
    merged_into: str | None = Field(default=None, max_length=200)
    merge_undo_by: datetime | None = None
    # Duplicates merged into this event (the primary), as its workflow keeps them.
    merged_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


#: Task statuses that put a task in an inbox.
ACTIVE_TASK_STATUSES = ("open", "claimed")
#: The sort key of a task without a deadline: after every real deadline, on every database.
NO_DUE = datetime(9999, 12, 31, tzinfo=UTC)


class EventFields(Protocol):
    """What a task copies from its event (an ``Event`` row, or anything with these attributes)."""

    priority: int
    category: str
    tier: str | None
    source: str
    description: str
    address: str | None


def inbox_fields(status: str, due_at: datetime | None, event: EventFields) -> dict[str, Any]:
    """The denormalised inbox columns of a task with ``status`` and ``due_at`` of ``event``."""
    return {
        "active": status in ACTIVE_TASK_STATUSES, "due_key": due_at or NO_DUE, "priority": event.priority,
        "category": event.category, "tier": event.tier, "source": event.source,
        "search_text": search_text(event.description, event.address),
    }


def search_text(description: str, address: str | None) -> str:
    """What the inbox's text search looks in: description and address, lower-cased once here so
    the query needs no function on the column."""
    return f"{description}\n{address or ''}".lower()


class Task(SQLModel, table=True):
    """Projection of a task in a unit's inbox."""

    # Each inbox view is one range of one of these indexes, read in order up to the page's LIMIT,
    # so the first and the hundredth page cost the same with a million tasks (bench/inbox_bench.py).
    __table_args__ = (
        Index("ix_task_inbox_due", "unit", "active", "due_key", "task_id"),
        Index("ix_task_inbox_priority", "unit", "active", "priority", "due_key", "task_id"),
        Index("ix_task_inbox_category", "unit", "active", "category", "due_key", "task_id"),
        Index("ix_task_unit_status_completed", "unit", "status", "completed_at", "task_id"),
        Index("ix_task_claimed_by_active_due", "claimed_by", "active", "due_key", "task_id"),
        Index("ix_task_assignee_active_due", "assignee", "active", "due_key", "task_id"),
        # The console: open tasks of a kind by deadline across many units, and the counts per unit
        # (read from this index alone).
        Index("ix_task_console", "active", "kind", "due_key", "unit"),
    )

    task_id: str = Field(primary_key=True, max_length=220)
    event_id: str = Field(max_length=200, index=True, foreign_key="event.event_id")
    version: int = 0
    kind: str = Field(max_length=16)
    unit: str = Field(max_length=32)
    assignee: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=16)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = None
    completed_at: datetime | None = None
    result: str | None = Field(default=None, sa_column=Column(Text))
    passed: bool | None = None
    due_at: datetime | None = None
    return_by: datetime | None = None  # the end of the return window (the workflow's mark), for the offers
    created_at: datetime
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    extension_hours: int = 0
    photos: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    parent: str | None = Field(default=None, max_length=220)
    overdue_level: str | None = Field(default=None, max_length=8)  # yellow | red (warnings fired)
    # For assessment (the workflow's task fields): how a handling task came and how it ended.
    origin: str = Field(default="", max_length=16)  # dispatch | rework | escalation | reassign
    ended_at: datetime | None = None  # cancelled at
    ended_by: str = Field(default="", max_length=16)  # returned | escalated | reassigned | voided | closed
    extended_hours: int = 0  # approved extensions
    # Denormalised for the inbox (set through ``inbox_fields`` by the projection): filters and sorts
    # on the task row alone, with no NULLs in sort keys, so no join or sort runs before the LIMIT.
    active: bool = False  # status is open or claimed
    due_key: datetime = NO_DUE  # due_at, or NO_DUE for a task without a deadline (sorts last)
    priority: int = 3  # the event's
    category: str = Field(default="", max_length=32)  # the event's
    tier: str | None = Field(default=None, max_length=20)  # the event's
    source: str = Field(default="", max_length=32)  # the event's
    # The event's description and address (``search_text``): searched on the task row, within the
    # unit's index range, instead of joining every candidate event (a substring search has no index
    # that helps with two-character Chinese words).
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class TimelineEntry(SQLModel, table=True):
    """One step of an event, with actor, time and state change (the event's audit trail)."""

    __table_args__ = (UniqueConstraint("event_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=200, index=True, foreign_key="event.event_id")
    seq: int
    stage: str = Field(max_length=20)
    action: str = Field(max_length=40)
    actor: str = Field(max_length=200)
    actor_kind: str = Field(max_length=16)
    actor_name: str = Field(default="", max_length=100)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str | None = Field(default=None, max_length=20)
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    at: datetime


class Notice(SQLModel, table=True):
    """Outbox of notifications for reporters; delivery adapters read it (later)."""

    notice_id: str = Field(primary_key=True, max_length=220)
    event_id: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=20)
    channel: str = Field(default="sms", max_length=20)
    recipient: str = Field(max_length=100)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16, index=True)  # pending | delivered | skipped
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime
    delivered_at: datetime | None = None


class AuditEntry(SQLModel, table=True):
    """Actions outside an event's timeline (logins, administration), with their actor."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=40)
    target: str = Field(default="", max_length=200)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class LoginFailure(SQLModel, table=True):
    """A failed login as counted by one of the login limits (web/ratelimit.py): ``kind`` is ``pair``
    (the username from the address), ``address`` (any username from the address) or ``user`` (the
    username from any address); each failure writes one row of each kind, so each limit is reset or
    lifted on its own."""

    __table_args__ = (
        Index("ix_loginfailure_kind_username", "kind", "username", "address", "at"),
        Index("ix_loginfailure_kind_address", "kind", "address", "at"),
        Index("ix_loginfailure_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=8)
    username: str = Field(max_length=64)  # lower-cased as typed (it need not exist)
    address: str = Field(max_length=64)  # web/client_address.py
    at: datetime


class RuleListVersion(SQLModel, table=True):
    """A version of the responsibility list as uploaded; exactly one is active."""

    version: str = Field(primary_key=True, max_length=40)
    content: str = Field(sa_column=Column(Text, nullable=False))  # the JSON file as uploaded
    categories: int = 0
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime
    active: bool = Field(default=False, index=True)
    activated_at: datetime | None = None
    activated_by: str | None = Field(default=None, max_length=64)


class SupervisionWarning(SQLModel, table=True):
    """A reminder, yellow (urging) or red (escalation) warning, kept for assessment."""

    __table_args__ = (UniqueConstraint("event_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=200, index=True)
    seq: int
    kind: str = Field(max_length=16, index=True)
    task_id: str = Field(max_length=220)
    unit: str = Field(max_length=32, index=True)
    at: datetime
    note: str = Field(default="", max_length=300)


class SavedFilter(SQLModel, table=True):
    """A named inbox filter (the query string of the inbox page) kept per user."""

    __table_args__ = (Index("ix_savedfilter_username_created", "username", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)
    name: str = Field(max_length=60)
    query: str = Field(max_length=1000)
    created_at: datetime


class ReportPhoto(SQLModel, table=True):
    """A photo a resident attached to a report (the workflow input has no photos; the web keeps them)."""

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=200, index=True)
    photo_id: str = Field(max_length=64)


class RateWindow(SQLModel, table=True):
    """Requests counted per key (e.g. ``track:<address>``) and fixed window, by the public rate limits
    (``web/request_limits.py``): one upsert per request, shared by every web process."""

    key: str = Field(primary_key=True, max_length=120)
    window_start: datetime = Field(primary_key=True)
    count: int = 0


class Photo(SQLModel, table=True):
    """A stored photo (``data_dir/photos/<photo_id>``, re-encoded without metadata): who uploaded it,
    from where, when, its size, and the event (and task) it is attached to once attached.

    Unattached photos expire (web/photos.py); who may fetch a photo follows from this row.
    """

    __table_args__ = (
        # Anonymous uploads per client address within the last hour.
        Index("ix_photo_client_ip_uploaded_at", "client_ip", "uploaded_at"),
        # Unattached photos (event_id IS NULL) by age, for expiry and the cap on their total size.
        Index("ix_photo_event_id_uploaded_at", "event_id", "uploaded_at"),
    )

    photo_id: str = Field(primary_key=True, max_length=64)
    uploaded_by: str | None = Field(default=None, max_length=64)  # staff username; None: anonymous (resident)
    client_ip: str = Field(default="", max_length=64)
    uploaded_at: datetime
    size: int = 0  # bytes of the stored (re-encoded) file
    media_type: str = Field(default="", max_length=20)
    event_id: str | None = Field(default=None, max_length=200)
    task_id: str | None = Field(default=None, max_length=220)
    attached_at: datetime | None = None
    #: Shown to anyone with the receipt code on the tracking page: set by the handler who completes the
    #: handling task with it (``public_photos``); every other photo stays within the event's scope.
    public: bool = False


class IdempotencyKey(SQLModel, table=True):
    """A report submitted with a one-time key (the report form's hidden key, or the API's
    ``Idempotency-Key`` header): claimed before its workflow starts, so that the same key again within
    24 hours gets the same answer and never a second event (``store/idempotency.py``).

    The key itself is not stored: ``key_hash`` is an HMAC of the caller's scope and key with the server
    secret. Nor is the reporter's tracking key: the answer (``body``) is kept without it, and it is
    derived again from ``tracking_nonce`` (``store/receipts.py``) when the answer is given again.
    """

    key_hash: str = Field(primary_key=True, max_length=64)
    request_hash: str = Field(max_length=64)  # sha256 of the request: the same key with another body is refused
    created_at: datetime = Field(index=True)  # rows older than 24 hours are deleted by the next claim
    claimed_at: datetime  # when the request now running took it (a stale claim is taken over)
    event_id: str = Field(max_length=200)  # drawn before the start, so that a take-over starts the same event
    receipt_code: str = Field(default="", max_length=16)
    tracking_nonce: str = Field(default="", max_length=64)
    tracking_key_hash: str = Field(default="", max_length=64)
    status: int | None = None  # the answer's HTTP status; None while the first request runs
    body: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


# ---- issue 11: assessment facts and rollups (store/assessment.py, kept by the projection)


class AssessmentFact(SQLModel, table=True):
    """What one event, handling task, warning or late task counts for in the assessment (facts are
    computed by ``assessment.facts`` and written by the projection in the event's transaction).

    ``flags`` holds the counters the subject counts in (a bit each, ``assessment.facts.COUNTERS``);
    ``amounts`` the working hours of its stages. The unit columns are the units it counts for below the
    city (the city counts everything): a task its unit's grid, community, street, department or command
    centre; an event its place, else its handling unit's. Drill-down lists read one range of these
    indexes, so the list behind a number is the rows that made it; the late tasks' ``due_at`` and
    ``ended_at`` close each index, so the count of tasks open past their deadline at the end of a
    period reads the index alone (about 100,000 late tasks a year at a million events).
    """

    __table_args__ = (
        Index("ix_fact_kind_day", "kind", "day", "subject", "due_at", "ended_at"),
        Index("ix_fact_kind_grid_day", "kind", "grid", "day", "subject", "due_at", "ended_at"),
        Index("ix_fact_kind_community_day", "kind", "community", "day", "subject", "due_at", "ended_at"),
        Index("ix_fact_kind_street_day", "kind", "street", "day", "subject", "due_at", "ended_at"),
        Index("ix_fact_kind_department_day", "kind", "department", "day", "subject", "due_at", "ended_at"),
        Index("ix_fact_kind_centre_day", "kind", "centre", "day", "subject", "due_at", "ended_at"),
    )

    subject: str = Field(primary_key=True, max_length=240)  # event id, task id, <event>#W<seq>, <task>#late
    event_id: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=8)  # event | task | warning | late
    day: date  # the cohort day, Asia/Shanghai: reported (event), created (task), warned (warning)
    category: str = Field(default="", max_length=32)
    grid: str | None = Field(default=None, max_length=32)
    community: str | None = Field(default=None, max_length=32)
    street: str | None = Field(default=None, max_length=32)
    department: str | None = Field(default=None, max_length=32)
    centre: str | None = Field(default=None, max_length=32)
    flags: int = 0
    amounts: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    due_at: datetime | None = None  # late tasks: the deadline
    ended_at: datetime | None = None  # late tasks: completed or cancelled (None: still open)


class IndicatorRollup(SQLModel, table=True):
    """Per unit, counter and day: how many subjects count (``n``) and the sum of their amounts
    (``total``, for averages). Every unit a fact counts for has its own rows, so a unit's indicators
    over a period are one range of the primary key, never a scan of events."""

    unit: str = Field(primary_key=True, max_length=32)
    counter: str = Field(primary_key=True, max_length=32)
    day: date = Field(primary_key=True)
    n: int = 0
    total: float = 0.0


class CategoryRollup(SQLModel, table=True):
    """Events per unit, day and category (the dashboard's hotspots)."""

    unit: str = Field(primary_key=True, max_length=32)
    day: date = Field(primary_key=True)
    category: str = Field(primary_key=True, max_length=32)
    n: int = 0


# ---- issue 11: assessment schemes, inspection entries, cadre ratings (store/schemes.py)


class SchemeVersion(SQLModel, table=True):
    """A stored assessment scheme (``assessment/schemes.py``), by version; one is active."""

    version: str = Field(primary_key=True, max_length=40)
    content: str = Field(sa_column=Column(Text, nullable=False))
    title: str = Field(default="", max_length=100)
    active: bool = False
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime
    activated_by: str | None = Field(default=None, max_length=64)
    activated_at: datetime | None = None


class InspectionEntry(SQLModel, table=True):
    """A supervisor's inspection entry (督查记录): a grid duty checked on a day, the finding and the
    score (0–100) it earned, with an evidence photo (an uploaded photo's id) and the inspector."""

    __table_args__ = (Index("ix_inspection_grid_day", "grid", "day"), Index("ix_inspection_day", "day", "grid"))

    id: int | None = Field(default=None, primary_key=True)
    grid: str = Field(max_length=32, foreign_key="unit.code")
    duty: str = Field(max_length=16)
    day: date  # the day inspected (Asia/Shanghai)
    finding: str = Field(sa_column=Column(Text, nullable=False))
    score: float
    photo_id: str | None = Field(default=None, max_length=64)
    scheme_version: str = Field(max_length=40)  # the duty's scheme, active when entered
    inspector: str = Field(max_length=64)
    inspector_unit: str = Field(max_length=32)
    created_at: datetime


class CadreRating(SQLModel, table=True):
    """The rating (0–100) a street or a home department gave a dispatched cadre for a year."""

    __table_args__ = (UniqueConstraint("username", "year", "side"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, foreign_key="user.username")
    year: int
    side: str = Field(max_length=12)  # street | department
    unit: str = Field(max_length=32)  # the street or department that rated
    score: float
    comment: str = Field(default="", max_length=500)
    rated_by: str = Field(max_length=64)
    rated_at: datetime


# ---- issue 11: reports


class ReportSnapshot(SQLModel, table=True):
    """One revision of a period's report (月度/年度考核报告): every unit's indicators (and the scores of
    the active scheme, when there is one) as computed once, never changed afterwards. Revision 1 is
    written by the Schedule's run (or the first explicit computation); a recompute adds the next
    revision, audited (``store/reports.py``). ``request_id`` is the workflow run that wrote it, so a
    retried activity finds its own revision instead of adding another."""

    __table_args__ = (UniqueConstraint("period", "revision"),)

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=7, index=True)  # "2026-11" or "2026"
    kind: str = Field(max_length=5)  # "month" or "year"
    revision: int
    day_from: date
    day_to: date
    scheme_version: str | None = Field(default=None, max_length=40)
    computed_at: datetime
    computed_by: str = Field(max_length=64)
    trigger: str = Field(max_length=16)  # "schedule" or "recompute"
    reason: str = Field(default="", max_length=500)
    request_id: str = Field(max_length=200, unique=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class WebhookSubscription(SQLModel, table=True):
    """An integration's subscription to the changes of events (outbound webhooks, ``store/webhooks.py``).

    ``integration`` names the system subscribed (a plain name; not tied to an API key). The signing
    secret is never stored: it is derived from the server secret and ``secret_nonce`` when a delivery
    is signed, and only its sha256 is kept (``secret_hash``) to notice a secret that no longer derives.
    ``kinds`` is the list of change kinds wanted (``store.webhooks.CHANGE_KINDS``)."""

    id: int | None = Field(default=None, primary_key=True)
    integration: str = Field(max_length=64, index=True)
    url: str = Field(max_length=500)
    kinds: list[str] = Field(sa_column=Column(JSON, nullable=False))
    secret_nonce: str = Field(max_length=64)
    secret_hash: str = Field(max_length=64)
    active: bool = True
    created_at: datetime
    created_by: str = Field(max_length=64)
    deactivated_at: datetime | None = None


class WebhookDelivery(SQLModel, table=True):
    """One change of an event for one subscription (the webhook outbox): written by the projection in
    the event's own transaction, sent by the ``WebhookDelivery`` workflow one by one in ``id`` order.

    ``change_id`` (event id and timeline seq) is the same on every attempt and replay; ``body`` is the
    JSON sent, frozen when the change was projected. ``status``: pending, delivered or dead (given up
    after ``webhook_give_up_hours`` counted from ``queued_at``, which a replay sets anew)."""

    __table_args__ = (
        UniqueConstraint("subscription_id", "change_id"),
        Index("ix_webhookdelivery_queue", "subscription_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="webhooksubscription.id")
    change_id: str = Field(max_length=220)
    event_id: str = Field(max_length=200, index=True)
    seq: int
    kind: str = Field(max_length=20)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)  # pending | delivered | dead
    attempts: int = 0
    last_status: int | None = None  # the receiver's HTTP status of the last attempt (None: no answer)
    last_latency_ms: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime
    queued_at: datetime
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    replays: int = 0
class ApiKey(SQLModel, table=True):
    """An integration's API key (store/api_keys.py): named, scoped, stored only as its sha256.

    ``prefix`` is the key's public part (``wl_<prefix>_<secret>``) to find the row; the whole key is
    compared with ``key_hash`` in constant time. A revoked key keeps its row (the audit names it)."""

    name: str = Field(primary_key=True, max_length=64)
    prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64)
    scopes: str = Field(max_length=100)  # comma list: report, read, subscribe
    created_by: str = Field(max_length=64)
    created_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=64)
    last_used_at: datetime | None = None


class Open311Token(SQLModel, table=True):
    """A token answered by Open311's POST requests while its event was not yet routed: resolved by
    ``tokens/{token}`` to the event's receipt code once the event is in the store."""

    token: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(max_length=200)
    integration: str = Field(max_length=64)
    created_at: datetime
class CameraClaim(SQLModel, table=True):
    """The open event of one camera and category (revision 0021): camera alarms within the window join
    it (``store/camera_alarms.py``). The event id is derived from camera, category and ``generation``,
    so every alarm that reads the row starts or signals the same workflow; a new generation (a new
    event) is claimed with a compare-and-set on ``generation`` once the window has passed or the
    event has ended."""

    camera: str = Field(primary_key=True, max_length=64)
    category: str = Field(primary_key=True, max_length=32)
    generation: int = 0
    event_id: str = Field(max_length=200)
    first_at: datetime
    last_at: datetime


class ProcessVersion(SQLModel, table=True):
    """A stored process definition (``processes/definition.py``, issue 14), by kind and version; one
    version of each kind is active (new instances start on it; running ones keep theirs)."""

    kind: str = Field(primary_key=True, max_length=40)
    version: str = Field(primary_key=True, max_length=40)
    content: str = Field(sa_column=Column(Text, nullable=False))
    title: str = Field(default="", max_length=100)
    active: bool = False
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime
    activated_by: str | None = Field(default=None, max_length=64)
    activated_at: datetime | None = None


class ProcessInstanceRow(SQLModel, table=True):
    """A process instance as its workflow last projected it (``store/process_projection.py``): what
    lists and the console read; ``data`` is the whole instance (tasks, sign-ups, credits, timeline)
    for its page. ``seq`` is the timeline's length when written: an older projection never
    overwrites a newer one."""

    __tablename__ = "processinstance"
    __table_args__ = (Index("ix_processinstance_kind_created", "kind", "created_at"),)

    instance_id: str = Field(primary_key=True, max_length=200)
    kind: str = Field(max_length=40)
    version: str = Field(max_length=40)
    title: str = Field(default="", max_length=200)
    state: str = Field(max_length=40)
    requester: str = Field(default="", max_length=100)
    grid: str = Field(default="", max_length=32)
    community: str = Field(default="", max_length=32, index=True)
    street: str = Field(default="", max_length=32)
    started_by: str = Field(default="", max_length=64)
    external_id: str | None = Field(default=None, max_length=200)
    access_hash: str = Field(default="", max_length=64)
    created_at: datetime
    ended_at: datetime | None = None
    seq: int = 0
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ProcessTaskRow(SQLModel, table=True):
    """One task of a process instance, for the inbox and the console's queues (projected)."""

    __tablename__ = "processtask"
    __table_args__ = (Index("ix_processtask_unit_status", "unit", "status"),
                      Index("ix_processtask_status_due", "status", "due_at"))

    task_id: str = Field(primary_key=True, max_length=220)
    instance_id: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=40)  # the process's kind
    task_kind: str = Field(max_length=40)
    title: str = Field(default="", max_length=200)
    state: str = Field(max_length=40)
    unit: str = Field(default="", max_length=32)
    person: str = Field(default="", max_length=64, index=True)
    status: str = Field(max_length=16)  # open | claimed | done | cancelled
    claimed_by: str | None = Field(default=None, max_length=64)
    created_at: datetime
    due_at: datetime | None = None
    completed_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=40)
    signed_up: int = 0
    capacity: int | None = None
    late: bool = False  # its deadline passed while it was open


class ProcessCredit(SQLModel, table=True):
    """What one completed task of a process earned one person (hours, adoptions, services), for the
    pioneer and fortress indices and the dashboard."""

    __tablename__ = "processcredit"

    task_id: str = Field(primary_key=True, max_length=220)
    subject: str = Field(primary_key=True, max_length=64)
    credit: str = Field(primary_key=True, max_length=40)
    instance_id: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=40)
    amount: float = 0.0
    team: str = Field(default="", max_length=40)
    community: str = Field(default="", max_length=32)
    street: str = Field(default="", max_length=32)
    credited_at: datetime
