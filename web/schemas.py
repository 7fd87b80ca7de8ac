"""Validated input of the JSON API and the forms (one definition each)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows.types import RATINGS, SOURCES, EventReport, Location, Reporter

Rating = Literal["satisfied", "basically_satisfied", "dissatisfied"]
assert set(RATINGS) == {"satisfied", "basically_satisfied", "dissatisfied"}


class LocationIn(BaseModel):
    """Where: a grid code, coordinates (both), or an address."""

    model_config = ConfigDict(extra="forbid")

    grid: str | None = Field(default=None, max_length=32, pattern=r"^[A-Za-z0-9\-]+$")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _pairs(self) -> LocationIn:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self


class ReporterIn(BaseModel):
    """Who reports."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=50)
    phone: str = Field(default="", max_length=20, pattern=r"^[0-9+\- ]*$")


class EventIn(BaseModel):
    """Body of ``POST /api/events`` and the workflow input (same fields)."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(default="", max_length=32, description="category code; empty = let triage decide")
    description: str = Field(min_length=1, max_length=2000)
    location: LocationIn = Field(default_factory=LocationIn)
    reporter: ReporterIn = Field(default_factory=ReporterIn)
    source: str = Field(default="api")
    external_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[\w.:\-]+$")
    severity: int = Field(default=1, ge=1, le=6, description="level on the category's severity scale")
    needs_enforcement: bool = Field(default=False, description="law-enforcement power is needed")

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("description must not be blank")
        return value.strip()

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}")
        return value

    def to_report(self) -> EventReport:
        """The workflow input."""
        return EventReport(
            category=self.category.strip(),
            description=self.description,
            location=Location(**self.location.model_dump()),
            reporter=Reporter(**self.reporter.model_dump()),
            source=self.source,
            external_id=self.external_id,
            severity=self.severity,
            needs_enforcement=self.needs_enforcement,
        )


class LoginIn(BaseModel):
    """Body of ``POST /api/auth/login``."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class CompleteIn(BaseModel):
    """Body of ``POST /api/tasks/{id}/complete``."""

    model_config = ConfigDict(extra="forbid")

    result: str = Field(default="", max_length=2000)
    passed: bool | None = None
    photos: list[str] = Field(default_factory=list, max_length=10, description="ids from POST /api/photos")


class TriageIn(BaseModel):
    """Body of ``POST /api/tasks/{id}/triage``."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(min_length=1, max_length=32)
    unit: str = Field(min_length=1, max_length=32)
    note: str = Field(default="", max_length=500)


class RatingIn(BaseModel):
    """Body of ``POST /api/track/{code}/rating``."""

    model_config = ConfigDict(extra="forbid")

    rating: Rating
    comment: str = Field(default="", max_length=1000)


class TaskRequestIn(BaseModel):
    """Body of ``POST /api/tasks/{id}/return|escalate|extension|cohandling``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)
    hours: int = Field(default=0, ge=0, le=240, description="extension: working hours asked")
    units: list[str] = Field(default_factory=list, max_length=5, description="co-handling: unit codes")


class SuperviseIn(BaseModel):
    """Body of ``POST /api/events/{id}/supervise`` (and of bulk actions, with ``event_ids``)."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, max_length=32)
    reason: str = Field(default="", max_length=500)
    unit: str | None = Field(default=None, max_length=32)
    assignee: str | None = Field(default=None, max_length=64)
    hours: int | None = Field(default=None, ge=1, le=720)
    notice_id: str | None = Field(default=None, max_length=220)


class BulkIn(SuperviseIn):
    """Body of ``POST /api/console/bulk``: one action on many events."""

    event_ids: list[str] = Field(min_length=1, max_length=200)
