"""Validated input of the JSON API and the forms (one definition each)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows import inputs, policy
from workflows.types import RATINGS, EventReport, Location, Reporter

Rating = Literal["satisfied", "basically_satisfied", "dissatisfied"]
assert set(RATINGS) == {"satisfied", "basically_satisfied", "dissatisfied"}


class LocationIn(BaseModel):
    """Where: a grid code, coordinates (both), or an address."""

    model_config = ConfigDict(extra="forbid")

    grid: str | None = Field(default=None, max_length=inputs.MAX_GRID, pattern=inputs.CODE_PATTERN)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=inputs.MAX_ADDRESS)


class ReporterIn(BaseModel):
    """Who reports."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=inputs.MAX_REPORTER_NAME)
    phone: str = Field(default="", max_length=inputs.MAX_PHONE, pattern=inputs.PHONE_PATTERN,
                       description="a mainland China mobile or landline number (checked with libphonenumber)")


class EventIn(BaseModel):
    """Body of ``POST /api/events`` (the workflow input's fields that a reporter sets).

    The field limits are documented here for the OpenAPI; the rules themselves are
    ``workflows.inputs.report_problems``, the one definition every entrance applies."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(default="", max_length=inputs.MAX_CATEGORY,
                          description="category code; empty = let triage decide")
    description: str = Field(min_length=1, max_length=inputs.MAX_DESCRIPTION)
    location: LocationIn = Field(default_factory=LocationIn)
    reporter: ReporterIn = Field(default_factory=ReporterIn)
    source: str = Field(default="api", description="one of " + ", ".join(inputs.SOURCES))
    external_id: str | None = Field(default=None, min_length=1, max_length=inputs.MAX_EXTERNAL_ID,
                                    pattern=inputs.EXTERNAL_ID_PATTERN)
    severity: int = Field(default=1, ge=inputs.MIN_SEVERITY, le=inputs.MAX_SEVERITY,
                          description="level on the category's severity scale")
    needs_enforcement: bool = Field(default=False, description="law-enforcement power is needed")
    camera_id: str | None = Field(
        default=None, min_length=1, max_length=inputs.MAX_CAMERA_ID, pattern=inputs.CAMERA_ID_PATTERN,
        description="a camera alarm's camera (source camera only; else the part of external_id before ':'): "
                    "alarms of one camera and category within the window join its open event (200, joined)")

    @model_validator(mode="after")
    def _valid_report(self) -> EventIn:
        problems = inputs.report_problems(self.to_report())
        if problems:
            raise ValueError("; ".join(p.message for p in problems))
        return self

    def to_report(self) -> EventReport:
        """The workflow input (texts trimmed)."""
        return inputs.normalised(EventReport(
            category=self.category,
            description=self.description,
            location=Location(**self.location.model_dump()),
            reporter=Reporter(**self.reporter.model_dump()),
            source=self.source,
            external_id=self.external_id,
            severity=self.severity,
            needs_enforcement=self.needs_enforcement,
            camera_id=self.camera_id,
        ))


class LoginIn(BaseModel):
    """Body of ``POST /api/auth/login``."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class CompleteIn(BaseModel):
    """Body of ``POST /api/tasks/{id}/complete``."""

    model_config = ConfigDict(extra="forbid")

    result: str = Field(default="", max_length=policy.MAX_RESULT)
    passed: bool | None = None
    photos: list[str] = Field(default_factory=list, max_length=policy.MAX_COMPLETE_PHOTOS,
                              description="ids from POST /api/photos")
    public_photos: list[str] = Field(default_factory=list, max_length=policy.MAX_COMPLETE_PHOTOS,
                                     description="of photos, those the reporter and anyone with the receipt "
                                                 "code may see on the tracking page (handling tasks only)")


class TriageIn(BaseModel):
    """Body of ``POST /api/tasks/{id}/triage``."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(min_length=1, max_length=32)
    unit: str = Field(min_length=1, max_length=32)
    note: str = Field(default="", max_length=policy.MAX_REASON)


class RatingIn(BaseModel):
    """Body of ``POST /api/track/{code}/rating``: only the reporter, who holds the tracking key, rates."""

    model_config = ConfigDict(extra="forbid")

    rating: Rating
    comment: str = Field(default="", max_length=policy.MAX_RATING_COMMENT)
    tracking_key: str = Field(default="", max_length=64,
                              description="the key given once when reporting (required; 403 without it)")

    @field_validator("comment")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        problem = inputs.text_problem("comment", value, max_len=policy.MAX_RATING_COMMENT)
        if problem is not None:
            raise ValueError(problem.message)
        return value


class FollowIn(BaseModel):
    """Body of ``POST /api/events/{id}/follow``: "me too", with a phone to be told of its progress."""

    model_config = ConfigDict(extra="forbid")

    phone: str = Field(default="", max_length=inputs.MAX_PHONE, pattern=inputs.PHONE_PATTERN)

    @field_validator("phone")
    @classmethod
    def _mainland_number(cls, value: str) -> str:
        problem = inputs.phone_problem("phone", value.strip())
        if problem is not None:
            raise ValueError(problem.message)
        return value.strip()


class TaskRequestIn(BaseModel):
    """Body of ``POST /api/tasks/{id}/return|escalate|extension|cohandling``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=policy.MAX_REASON)
    hours: int = Field(default=0, ge=0, le=policy.MAX_EXTENSION_HOURS, description="extension: working hours asked")
    units: list[str] = Field(default_factory=list, max_length=policy.MAX_COHANDLING_UNITS,
                             description="co-handling: unit codes")


class SuperviseIn(BaseModel):
    """Body of ``POST /api/events/{id}/supervise`` (and of bulk actions, with ``event_ids``)."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, max_length=32)
    reason: str = Field(default="", max_length=policy.MAX_REASON)
    unit: str | None = Field(default=None, max_length=32)
    assignee: str | None = Field(default=None, max_length=64)
    hours: int | None = Field(default=None, ge=policy.MIN_DEADLINE_HOURS, le=policy.MAX_DEADLINE_HOURS)
    notice_id: str | None = Field(default=None, max_length=220)


class BulkIn(SuperviseIn):
    """Body of ``POST /api/console/bulk``: one action on many events."""

    event_ids: list[str] = Field(min_length=1, max_length=200)


class MergeIn(BaseModel):
    """Body of ``POST /api/events/{id}/merge``: the primary (its receipt code or event id) and why."""

    model_config = ConfigDict(extra="forbid")

    primary: str = Field(min_length=1, max_length=200, description="the primary's receipt code or event id")
    reason: str = Field(min_length=1, max_length=policy.MAX_REASON)


class UnmergeIn(BaseModel):
    """Body of ``POST /api/events/{id}/unmerge``: why the merge is undone (optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=policy.MAX_REASON)
