"""The JSON API's answers, typed: each route declares the shape it answers (so the OpenAPI schema documents
every answer and mypy checks every dict the handlers build against it). Inputs live in ``web.schemas``.

``TypedDict`` rather than classes: the handlers and ``web.views`` build plain dicts that pages use too,
and the answer on the wire is exactly that dict.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class UserSummary(TypedDict):
    """Who a token belongs to."""

    username: str
    display_name: str
    unit: str
    role: str


class TokenAnswer(TypedDict):
    """``POST /api/auth/login``: a bearer token."""

    token: str
    token_type: str
    user: UserSummary


class CategoryAnswer(TypedDict):
    """One category of the active responsibility list."""

    code: str
    name_zh: str
    name_en: str
    group: str
    tier: str
    department: str | None
    deadlines: dict[str, Any]


class CategoriesAnswer(TypedDict):
    """``GET /api/categories``."""

    version: str
    groups: list[dict[str, Any]]
    categories: list[CategoryAnswer]


class SuggestionAnswer(TypedDict):
    """One suggested category, with its score and the words that matched."""

    code: str
    name_zh: str
    name_en: str
    score: float
    matched: list[str]


class SuggestionsAnswer(TypedDict):
    """``GET /api/categories/suggest``."""

    suggestions: list[SuggestionAnswer]


class UnitsAnswer(TypedDict):
    """``GET /api/units``: the organisation tree."""

    units: list[dict[str, Any]]


class TaskAnswer(TypedDict):
    """A task after a worker's action (claim, complete, release, a request)."""

    task_id: str
    status: str
    event_state: str
    claimed_by: NotRequired[str | None]
    event_stage: NotRequired[str]


class TriagedAnswer(TypedDict):
    """A triage task after the supervisor placed its event."""

    task_id: str
    event_state: str


class SupervisedAnswer(TypedDict):
    """An event after a supervisor's override."""

    event_id: str
    state: str
    pending: str | None
    paused: bool


class BulkResult(TypedDict):
    """One event of a bulk override: its new state, or the refusal's status and reason."""

    event_id: str
    ok: bool
    state: NotRequired[str | None]
    status: NotRequired[int]
    detail: NotRequired[str]


class BulkAnswer(TypedDict):
    """``POST /api/console/bulk``."""

    results: list[BulkResult]
    succeeded: int


class RatedAnswer(TypedDict):
    """A report after its reporter's rating."""

    receipt_code: str | None
    state: str
    rating: str | None


class FollowedAnswer(TypedDict):
    """An open report after one more person follows it."""

    event_id: str
    followers: int
    notified: bool


class MergedAnswer(TypedDict):
    """A duplicate after its merge (合并) or its undo: its state, the primary while merged and the end
    of the window within which the merge may be undone."""

    event_id: str
    state: str
    merged_into: str | None
    undo_by: str | None


class PersonAnswer(TypedDict):
    """A user as administrators see them."""

    username: str
    display_name: str
    unit: str
    role: str
    stationed_street: str | None
    active: bool


class UsersAnswer(TypedDict):
    """``GET /api/users``."""

    users: list[PersonAnswer]


class LockoutAnswer(TypedDict):
    """A current login lockout or delay."""

    kind: str
    username: str
    address: str
    failures: int
    until: str | None
    usernames: list[str]
    addresses: list[str]


class LockoutsAnswer(TypedDict):
    """``GET /api/lockouts``."""

    lockouts: list[LockoutAnswer]


class LiftedAnswer(TypedDict):
    """``POST /api/lockouts/lift``."""

    lifted: LockoutAnswer


class TaskViewAnswer(TypedDict):
    """A task (``web.views.task_view``)."""

    task_id: str
    event_id: str
    kind: str
    unit: str
    status: str
    claimed_by: str | None
    claimed_at: str | None
    completed_at: str | None
    due_at: str | None
    result: str | None
    passed: bool | None
    created_at: str | None


class InboxTaskAnswer(TaskViewAnswer):
    """A task in the inbox, with what the worker needs of its event."""

    category: str | None
    category_name: str | None
    description: str
    receipt_code: str | None
    event_state: str
    tier: str | None
    source: str
    priority: int


class InboxAnswer(TypedDict):
    """``GET /api/inbox``: one page of the user's inbox."""

    unit: str
    view: str
    tasks: list[InboxTaskAnswer]
    next_cursor: str | None
