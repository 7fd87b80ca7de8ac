"""The PeriodReport workflow's activity: compute a period's report and store it as a snapshot.

Idempotent (``store.reports.store_snapshot``): a period that has a snapshot is not computed again
unless the run is a recompute, and a recompute's retry finds the revision it stored.

The data of a snapshot (JSON, kept as computed)::

    {"period": "2026-11", "kind": "month", "from": "2026-11-01", "to": "2026-11-30",
     "indicators": ["handled_rate", ...],                      # the codes, in the catalogue's order
     "units": [{"code", "name_zh", "name_en", "kind", "tier", "parent", "street",
                "values": {"<code>": {"value", "numerator", "denominator"}}}, ...],
     "scheme_version": "2026.1" | null,
     "scores": {"<table>": [{"subject", "name_zh", "name_en", "score", "grade", "parts", "flags"}]}}
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from temporalio import activity

from store import reports
from store.db import Database
from store.org import OrgTree
from store.reports import NewSnapshot
from workflows.period_report import ACTIVITY_REPORT, YEAR, ReportJob, ReportResult

log = logging.getLogger("wulian.reports")


def _value(value: Any) -> dict[str, float | None]:
    """An indicator's ``Value`` as JSON."""
    return {"value": value.value, "numerator": value.numerator, "denominator": value.denominator}


async def scores_for(db: Database, org: OrgTree, day_from: date, day_to: date,
                     annual: bool) -> tuple[str | None, dict[str, list[dict[str, Any]]]]:
    """The scores of the active assessment scheme for the period (``assessment.scores.period_scores``;
    the shipped scheme when none was activated): its version and its tables of rows. The one place the
    report asks for scores."""
    from assessment.scores import period_scores
    from store.schemes import active_scheme

    scheme = await active_scheme(db)
    sheet = await period_scores(db, org, scheme, day_from, day_to, annual=annual)
    return str(sheet.scheme_version), dict(sheet.as_json()["tables"])


async def _every_unit(db: Database, org: OrgTree, first: date, last: date) -> dict[str, dict[str, Any]]:
    """The indicators of the roots and, a parent at a time (``child_values``: one read of the rollups
    for all children of a unit), of every unit below them."""
    from store.assessment import child_values, indicator_values

    found: dict[str, dict[str, Any]] = {}
    parents = sorted(code for code, unit in org.units.items() if unit.parent is None or unit.parent not in org.units)
    for root in parents:
        found[root] = await indicator_values(db, org, root, first, last)
    while parents:
        below: list[str] = []
        for parent in parents:
            if not org.children.get(parent):
                continue
            for code, values in await child_values(db, org, parent, first, last):
                if code not in found:
                    found[code] = values
                    below.append(code)
            if activity.in_activity():
                activity.heartbeat(parent)
        parents = below
    return found


async def compute(db: Database, job: ReportJob) -> tuple[dict[str, Any], str | None]:
    """Every unit's indicators for the job's period, and the scores: the snapshot's data."""
    from assessment.indicators import INDICATORS
    from store.assessment import indicator_values

    org = await OrgTree.load(db)
    first, last = date.fromisoformat(job.day_from), date.fromisoformat(job.day_to)
    every = await _every_unit(db, org, first, last)
    units = []
    for code in sorted(org.units):
        unit = org.units[code]
        values = every.get(code)
        if values is None:  # a unit no parent's children reach
            values = await indicator_values(db, org, code, first, last)
        units.append({
            "code": code, "name_zh": unit.name_zh, "name_en": unit.name_en, "kind": unit.kind,
            "tier": unit.tier, "parent": unit.parent, "street": org.street_of(code),
            "values": {c: _value(v) for c, v in values.items()},
        })
    version, scores = await scores_for(db, org, first, last, annual=job.kind == YEAR)
    data = {"period": job.period, "kind": job.kind, "from": job.day_from, "to": job.day_to,
            "indicators": [d.code for d in INDICATORS], "units": units, "scheme_version": version,
            "scores": scores}
    return data, version


def _new(job: ReportJob) -> NewSnapshot:
    return NewSnapshot(period=job.period, kind=job.kind, day_from=date.fromisoformat(job.day_from),
                       day_to=date.fromisoformat(job.day_to), request_id=job.request_id, recompute=job.recompute,
                       actor=job.actor, reason=job.reason, trigger=job.trigger)


async def publish(db: Database, job: ReportJob) -> ReportResult:
    """Compute and store the job's snapshot, unless it is stored already (then nothing is computed)."""
    new = _new(job)
    found = await reports.already_stored(db, new)
    if found is not None:
        log.info("report %s: revision %s stored already; nothing to do", job.period, found.revision)
        return ReportResult(period=found.period, revision=found.revision, created=False,
                            units=len(found.data.get("units", [])), scheme_version=found.scheme_version)
    data, version = await compute(db, job)
    row, created = await reports.store_snapshot(db, new, data, version)
    log.info("report %s: revision %s %s", job.period, row.revision, "stored" if created else "found")
    return ReportResult(period=row.period, revision=row.revision, created=created,
                        units=len(row.data.get("units", [])), scheme_version=row.scheme_version)


class ReportActivities:
    """The report activity, bound to one store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name=ACTIVITY_REPORT)
    async def compute_period_report(self, job: ReportJob) -> ReportResult:
        """Compute and store the period's snapshot (idempotent: see :func:`publish`)."""
        return await publish(self.db, job)

    def all(self) -> list[object]:
        """The activity callables, for a Worker."""
        return [self.compute_period_report]
