"""The activities the EventLifecycle workflow calls by name (see ``workflows.types.ACTIVITY_*``)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from temporalio import activity

from activities.delivery import Adapter, LoggingAdapter
from rules.engine import cadre_fact
from rules.worktime import add_working_hours
from store import notices, queries, receipts, repeats
from store.db import Database
from store.org import OrgTree
from store.projection import apply_snapshot
from workflows import policy
from workflows.types import (
    ACTIVITY_DELIVER,
    ACTIVITY_DUE,
    ACTIVITY_MARKS,
    ACTIVITY_PROJECT,
    ACTIVITY_RECEIPT,
    ACTIVITY_ROUTE,
    Decision,
    DueRequest,
    EventSnapshot,
    MarksRequest,
    Notice,
    ReceiptGrant,
    ReceiptRequest,
    RoutingRequest,
)
from wulian.rule_registry import EngineRegistry
from wulian.settings import get_settings

log = logging.getLogger("wulian.activities")

#: Seconds the organisation tree is cached by a worker before it is read again.
ORG_CACHE_SECONDS = 30.0
#: A grid code the cached tree does not know makes it read again, at most this often.
ORG_MISS_RELOAD_SECONDS = 2.0


class LifecycleActivities:
    """Activities bound to one store and one routing engine."""

    def __init__(self, db: Database, engines: EngineRegistry | None = None, delivery: Adapter | None = None,
                 *, secret: str | None = None, public_url: str | None = None,
                 on_changes: Callable[[set[int]], None] | None = None) -> None:
        self.db = db
        # Told the webhook subscriptions a committed projection queued changes for (activities/webhooks.py).
        self.on_changes = on_changes
        self.engines = engines or EngineRegistry(db)
        self.delivery = delivery or LoggingAdapter()
        # The server secret derives reporters' tracking keys (store.receipts); the web must use the same.
        self._secret = secret
        self._public_url = public_url
        self._org: OrgTree | None = None
        self._org_loaded = 0.0

    @property
    def secret(self) -> str:
        """The server secret (the configured one unless given)."""
        if self._secret is None:
            self._secret = get_settings().secret()
        return self._secret

    @property
    def public_url(self) -> str:
        """Where residents open the web (links in notices)."""
        if self._public_url is None:
            self._public_url = get_settings().public_base_url
        return self._public_url

    async def org(self, grid: str | None = None) -> OrgTree:
        """The organisation tree, cached briefly (units change rarely; routing runs often).

        Administrators add units in the web process (``/admin/org``), which cannot tell the workers.
        A report naming a grid this copy does not know is most likely for a grid just added, and
        placing it by coordinates or keywords instead would route it wrongly; so such a miss reads
        the tree again at once, at most every ``ORG_MISS_RELOAD_SECONDS`` so that reports with
        made-up grid codes do not cost a query each. Other edits (names, coordinates, keywords, a
        grid found by coordinates) are seen within ``ORG_CACHE_SECONDS``.
        """
        now = time.monotonic()
        org, age = self._org, now - self._org_loaded
        missing = bool(grid and org is not None and grid.strip().upper() not in org.units)
        if org is None or age > ORG_CACHE_SECONDS or (missing and age > ORG_MISS_RELOAD_SECONDS):
            org = self._org = await OrgTree.load(self.db)
            self._org_loaded = time.monotonic()
        return org

    @activity.defn(name=ACTIVITY_ROUTE)
    async def route_event(self, request: RoutingRequest) -> Decision:
        """Gather the event's facts and let the responsibility list decide who handles it."""
        report = request.report
        engine = await (self.engines.version(request.list_version) if request.list_version else self.engines.active())
        loc = report.location
        org = await self.org(loc.grid)
        placement = org.locate(loc.grid, loc.lat, loc.lon, loc.address)
        category = (report.category or "").strip()
        now = datetime.now(UTC)
        repeat = 0
        if placement.grid and category:
            since = now - timedelta(days=engine.policies.repeat_window_days)
            # Other people who reported it, not copies of this report (store/repeats.py).
            who = report.reporter
            repeat = await repeats.other_reporters(
                self.db, category=category, grid=placement.grid, since=since, exclude=request.event_id,
                reporter=repeats.reporter_key(who.phone, report.source, report.external_id, report.description),
            )
        facts: dict[str, object] = {
            "category": category,
            "grid": placement.grid,
            "community": placement.community,
            "street": placement.street,
            "located_by": placement.how,
            "source": report.source,
            "severity": report.severity,
            "needs_enforcement": report.needs_enforcement,
            "repeat": repeat,
            "returned": request.returned_count,
            "escalated": request.escalated_count,
        }
        if placement.street:
            for department, username in (await queries.cadres_at(self.db, placement.street)).items():
                facts[cadre_fact(department)] = username
        city_centre = org.city_centre()
        raw = engine.decide(facts, exclude=request.exclude, city_centre=city_centre)
        handling_hours = raw["deadline_hours"].get("handling", 8)
        return Decision(
            placed=raw["placed"],
            tier=raw["tier"],
            unit=raw["unit"],
            department=raw["department"],
            rule=raw["rule"],
            list_version=raw["list_version"],
            reason=raw["reason"],
            reason_code=raw.get("reason_code", ""),
            reason_params=raw.get("reason_params", {}),
            grid=placement.grid,
            community=placement.community,
            street=placement.street,
            category_name=raw["category_name"],
            co_departments=raw["co_departments"],
            priority=raw["priority"],
            deadline_hours=raw["deadline_hours"],
            handling_due=add_working_hours(now, handling_hours).isoformat() if raw["placed"] else None,
            facts=raw["facts"],
            assignee=raw.get("assignee"),
            ladder=policy.ladder([(placement.grid or "", "grid"), (placement.community or "", "community"),
                                  (placement.street or "", "street")], city_centre),
            verification=raw["verification"],
            excluded=raw.get("excluded", []),
        )

    @activity.defn(name=ACTIVITY_DUE)
    async def compute_due(self, request: DueRequest) -> str:
        """The moment ``hours`` working hours after ``start`` (kept by the workflow, never recomputed)."""
        return add_working_hours(datetime.fromisoformat(request.start), request.hours).isoformat()

    @activity.defn(name=ACTIVITY_MARKS)
    async def supervision_marks(self, request: MarksRequest) -> dict[str, str]:
        """Reminders at 50% and 80% of the working time, the deadline, and the end of the grace period."""
        start = datetime.fromisoformat(request.start)
        hours = request.hours
        marks = {
            "remind_50": add_working_hours(start, hours * 0.5).isoformat(),
            "remind_80": add_working_hours(start, hours * 0.8).isoformat(),
            "due": add_working_hours(start, hours).isoformat(),
            "escalate": add_working_hours(start, hours + request.grace_hours).isoformat(),
        }
        if request.return_hours:
            marks["return_by"] = add_working_hours(start, request.return_hours).isoformat()
        return marks

    @activity.defn(name=ACTIVITY_RECEIPT)
    async def issue_receipt(self, request: ReceiptRequest) -> ReceiptGrant:
        """The receipt code of a new event: the proposed one (the web draws it at random) when it is
        well-formed and no other event has it; else a random one unique in the store, with a tracking
        key unless one was given (the reporter gets the key in the notices' tracking link)."""
        proposed = request.receipt_code
        if proposed and receipts.is_receipt_code(proposed):
            holder = await queries.event_by_receipt(self.db, proposed)
            if holder is None or holder.event_id == request.event_id:
                return ReceiptGrant(proposed, request.tracking_key_hash, request.tracking_nonce)
        grant = (await receipts.new_grant(self.db, self.secret)).for_workflow()
        if request.tracking_key_hash:  # keep the key its reporter was given
            grant.tracking_key_hash, grant.tracking_nonce = request.tracking_key_hash, request.tracking_nonce
        return grant

    def outgoing(self, notice: Notice) -> Notice:
        """The notice as sent: a reporter's notice gets the tracking link with the key, which is
        derived here from its nonce and never stored (the outbox row keeps the body without it)."""
        if not notice.tracking_nonce or not notice.receipt_code:
            return notice
        key = receipts.tracking_key(self.secret, notice.tracking_nonce)
        if notice.tracking_key_hash and receipts.key_hash(key) != notice.tracking_key_hash:
            # The secret changed since the report (or web and worker do not share it): a wrong key in
            # a link would only be refused. The reporter still holds the key shown when reporting.
            log.warning("notice %s: the tracking key no longer derives from the server secret; sent "
                        "without the tracking link (is WULIAN_SECRET_KEY the same for web and worker?)",
                        notice.notice_id)
            return notice
        link = f"{self.public_url.rstrip('/')}/track/{notice.receipt_code}?key={key}"
        return dataclasses.replace(notice, body=f"{notice.body} 查看与评价 / track and rate: {link}")

    @activity.defn(name=ACTIVITY_DELIVER)
    async def deliver_notice(self, notice: Notice) -> None:
        """Deliver a notice to the reporter through the configured adapter; each attempt is recorded."""
        info = activity.info()
        await notices.record_attempt(self.db, notice, info.attempt)
        try:
            await self.delivery.send(self.outgoing(notice))
        except Exception as exc:
            await notices.record_failure(self.db, notice, f"{type(exc).__name__}: {exc}")
            raise
        await notices.mark_delivered(self.db, notice, self.delivery.channel)

    @activity.defn(name=ACTIVITY_PROJECT)
    async def project_event(self, snapshot: EventSnapshot) -> bool:
        """Upsert the event's read model; a stale or repeated snapshot changes nothing."""
        woken: set[int] = set()
        applied = await apply_snapshot(self.db, snapshot, woken)
        if woken and self.on_changes is not None:
            self.on_changes(woken)
        return applied

    def all(self) -> list[object]:
        """The activity callables, for a Worker."""
        return [self.route_event, self.compute_due, self.supervision_marks, self.deliver_notice, self.project_event,
                self.issue_receipt]
