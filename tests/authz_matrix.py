"""The authorization matrix, as data: who gets which status on every route that reads or acts on an
event, photo, task, saved filter, user, console (and the other administration routes).

The world it runs in (tests/test_authz_matrix.py builds it once): events in grid HS01-G1 of community
HS01 of street HS — ``{event}`` (reported through the page with a photo ``{photo}``, its handling task
``{task}`` claimed by the grid worker), ``{open_event}`` with the open task ``{open_task}``, and
``{triage_event}``, which no rule placed (task ``{triage_task}`` in the street centre CC-HS's triage), and the report of
November 2026;
``{receipt}`` is the receipt code of ``{event}``; ``{filter}`` a saved filter of the grid worker made
afresh for each cell. Actions by those allowed are sent in a form that passes the check of who may
act and is then refused for what it asks (e.g. approving an extension nobody requested: 409), so that
no cell changes what the next one sees.

Columns (one user each):

====== ============ =======================================================
grid   wg_hs01_g1   the grid's worker (the task's unit)
grid2  wg_hs01_g2   another grid's worker, same community
comm   sq_hs01      the community
comm2  sq_hs02      another community, same street
dept   bm_zf        a department (综合执法)
cadre  pz_zf_hs     a "1+X" cadre stationed at the street
street zx_hs        the street's supervisor (command centre CC-HS)
street2 zx_st       another street's supervisor
city   zx_city      the city supervisor
admin  admin        the administrator
anon   (none)       no token, no session
====== ============ =======================================================

Statuses: the HTTP status of the answer, redirects not followed (pages send an anonymous visitor to
``/login`` with 302 on GET and 303 on POST; a page form refused for what it asks answers 303 back to
the page with the reason, 400 when the form comes back filled in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("grid", "grid2", "comm", "comm2", "dept", "cadre", "street", "street2", "city", "admin", "anon")
#: A valid 1×1 PNG (photos are decoded and re-encoded).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63fccfc0500f000485018084a98c210000000049454e44ae426082"
)
USERS = {
    "grid": "wg_hs01_g1", "grid2": "wg_hs01_g2", "comm": "sq_hs01", "comm2": "sq_hs02", "dept": "bm_zf",
    "cadre": "pz_zf_hs", "street": "zx_hs", "street2": "zx_st", "city": "zx_city", "admin": "admin",
}


@dataclass(frozen=True)
class Row:
    """One route, how to call it, and the status each role gets."""

    method: str
    route: str  # the route's path as the app declares it (checked against app.routes)
    url: str  # the URL, with {event}, {task}, ... filled in from the world
    statuses: tuple[int, ...]  # one per role, in ROLES order
    page: bool = False  # a page: session cookie and CSRF token (else the JSON API with a bearer token)
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    prepare: str | None = None  # a world method, given the role, that makes what the cell consumes
    note: str = field(default="", compare=False)

    def expected(self, role: str) -> int:
        """The status ``role`` must get."""
        return self.statuses[ROLES.index(role)]


def _row(method: str, route: str, url: str, statuses: str, **kw: Any) -> Row:
    codes = tuple(int(c) for c in statuses.split())
    assert len(codes) == len(ROLES), (route, statuses)
    return Row(method, route, url, codes, **kw)


EXT = {"action": "approve_extension"}  # a supervisor action that has nothing to approve: 409 for those allowed
SELF_MERGE = {"primary": "{receipt}", "reason": "矩阵"}  # a merge of an event into itself: refused (400)

# Each row: method, route, URL, then the statuses in ROLES order:
#   grid grid2 comm comm2 dept cadre street street2 city admin anon
MATRIX: list[Row] = [
    # --- the JSON API -------------------------------------------------------------------------------------------------
    _row("GET", "/api/events/{event_id:str}", "/api/events/{event}",
         "200 403 200 403 403 403 200 403 200 200 401"),
    _row("GET", "/api/events/{event_id:str}/timeline.csv", "/api/events/{event}/timeline.csv",
         "200 403 200 403 403 403 200 403 200 200 401"),
    _row("POST", "/api/events/{event_id:str}/supervise", "/api/events/{event}/supervise",
         "403 403 403 403 403 403 409 403 409 409 401", json=EXT),
    _row("POST", "/api/events/{event_id:str}/merge", "/api/events/{event}/merge",
         "403 403 403 403 403 403 400 403 400 400 401", json=SELF_MERGE,
         note="into itself: refused by the workflow for those allowed"),
    _row("POST", "/api/events/{event_id:str}/unmerge", "/api/events/{event}/unmerge",
         "403 403 403 403 403 403 409 403 409 409 401", json={}, note="not merged: 409 for those allowed"),
    _row("POST", "/api/events/{event_id:str}/follow", "/api/events/{event}/follow",
         "200 200 200 200 200 200 200 200 200 200 200", json={}, note="public: me too"),
    _row("GET", "/api/events/nearby", "/api/events/nearby?category=SR-01&grid=HS01-G1",
         "200 200 200 200 200 200 200 200 200 200 200", note="public, no receipt codes"),
    _row("POST", "/api/events", "/api/events",
         "201 201 201 201 201 201 201 201 201 201 201",
         json={"category": "SR-01", "description": "矩阵测试", "location": {"grid": "HS02-G1"}},
         note="public: anyone may report"),
    _row("POST", "/api/console/bulk", "/api/console/bulk",
         "403 403 403 403 403 403 200 200 200 200 401", json={"event_ids": ["{event}"], "action": "resume"},
         note="a supervisor gets a result per event (409: not paused; 403 inside it for another street's)"),
    _row("GET", "/api/console", "/api/console",
         "403 403 403 403 403 403 200 200 200 200 401"),
    _row("GET", "/api/inbox", "/api/inbox",
         "200 200 200 200 200 200 200 200 200 200 401", note="each sees only their unit's tasks"),
    _row("POST", "/api/tasks/{task_id:str}/claim", "/api/tasks/{task}/claim",
         "409 403 403 403 403 403 403 403 403 403 401", note="already claimed by the grid worker"),
    _row("POST", "/api/tasks/{task_id:str}/complete", "/api/tasks/{open_task}/complete",
         "409 403 403 403 403 403 403 403 403 403 401", json={"result": "x"}, note="not claimed yet"),
    _row("POST", "/api/tasks/{task_id:str}/release", "/api/tasks/{open_task}/release",
         "409 403 403 403 403 403 403 403 403 403 401"),
    _row("POST", "/api/tasks/{task_id:str}/triage", "/api/tasks/{triage_task}/triage",
         "403 403 403 403 403 403 400 403 403 403 401", json={"category": "NOPE-1", "unit": "HS01-G1"},
         note="the street centre's triage task; an unknown category"),
    _row("POST", "/api/tasks/{task_id:str}/{kind:str}", "/api/tasks/{task}/extension",
         "400 403 403 403 403 403 403 403 403 403 401", json={"reason": "r", "hours": 0}),
    _row("POST", "/api/photos", "/api/photos",
         "201 201 201 201 201 201 201 201 201 201 401", files={"data": ("p.png", PNG, "image/png")}),
    _row("GET", "/photos/{photo_id:str}", "/photos/{photo}",
         "200 403 200 403 403 403 200 403 200 200 403", note="the event's scope"),
    _row("GET", "/track/{code:str}/photos/{photo_id:str}", "/track/{receipt}/photos/{photo}",
         "403 403 403 403 403 403 403 403 403 403 403", note="a reporter's photo: only with the tracking key"),
    _row("GET", "/track/{code:str}/public/{photo_id:str}", "/track/{receipt}/public/{photo}",
         "404 404 404 404 404 404 404 404 404 404 404",
         note="only photos a handler marked public (the reporter's own photo is not one), to anyone with the code"),
    _row("GET", "/api/grids/nearest", "/api/grids/nearest?lat=28.7552&lon=118.629",
         "200 200 200 200 200 200 200 200 200 200 200", note="public: the report form's 'use my location'"),
    _row("GET", "/api/track/{receipt_code:str}", "/api/track/{receipt}",
         "200 200 200 200 200 200 200 200 200 200 200", note="public: the receipt code reads"),
    _row("POST", "/api/track/{receipt_code:str}/rating", "/api/track/{receipt}/rating",
         "403 403 403 403 403 403 403 403 403 403 403", json={"rating": "satisfied"},
         note="nobody without the tracking key"),
    _row("POST", "/api/auth/logout", "/api/auth/logout",
         "204 204 204 204 204 204 204 204 204 204 401", prepare="fresh_login",
         note="revokes the caller's own token (a fresh one)"),
    _row("GET", "/api/lockouts", "/api/lockouts",
         "403 403 403 403 403 403 200 200 200 200 401", note="each supervisor sees those within their scope"),
    _row("POST", "/api/lockouts/lift", "/api/lockouts/lift",
         "403 403 403 403 403 403 404 404 404 404 401",
         json={"kind": "pair", "username": "nobody", "address": "192.0.2.1"}, note="no such lockout"),
    _row("GET", "/api/units/{code:str}/users", "/api/units/HS01-G1/users",
         "403 403 403 403 403 403 200 403 200 200 401", note="the reassign picker: a supervisor's scope"),
    _row("GET", "/api/events", "/api/events?q={receipt}",
         "403 403 403 403 403 403 200 200 200 200 401", note="the search: another street's supervisor finds nothing"),
    _row("GET", "/api/events/export.csv", "/api/events/export.csv?q={receipt}",
         "403 403 403 403 403 403 200 200 200 200 401", note="within the supervisor's scope"),
    _row("GET", "/api/events/export.xlsx", "/api/events/export.xlsx?q={receipt}",
         "403 403 403 403 403 403 200 200 200 200 401", note="within the supervisor's scope"),
    _row("GET", "/api/users", "/api/users",
         "403 403 403 403 403 403 403 403 403 200 401"),
    _row("GET", "/api/indicators", "/api/indicators",
         "200 200 200 200 200 200 200 200 200 200 401", note="everybody's own unit (the default)"),
    _row("GET", "/api/indicators", "/api/indicators?unit=HS",
         "403 403 403 403 403 403 200 403 200 200 401", note="a street: its supervisor and the city's"),
    _row("GET", "/api/indicators/drill", "/api/indicators/drill?unit=HS01-G1&counter=events",
         "200 403 403 403 403 403 200 403 200 200 401", note="a grid: its own staff, the supervisors above"),
    _row("GET", "/api/dashboard", "/api/dashboard",
         "403 403 403 403 403 403 200 200 200 200 401", note="supervisors: the top of their own scope"),
    _row("GET", "/api/dashboard", "/api/dashboard?unit=HS",
         "403 403 403 403 403 403 200 403 200 200 401", note="street HS: not another street's supervisor"),
    # --- pages --------------------------------------------------------------------------------------------------------
    _row("GET", "/events/{event_id:str}", "/events/{event}",
         "200 403 200 403 403 403 200 403 200 200 302", page=True),
    _row("GET", "/events/{event_id:str}/timeline.csv", "/events/{event}/timeline.csv",
         "200 403 200 403 403 403 200 403 200 200 302", page=True),
    _row("POST", "/events/{event_id:str}/supervise", "/events/{event}/supervise",
         "403 403 403 403 403 403 303 403 303 303 303", page=True, form=EXT),
    _row("POST", "/events/{event_id:str}/merge", "/events/{event}/merge",
         "403 403 403 403 403 403 303 403 303 303 303", page=True,
         form={**SELF_MERGE, "confirm": "yes"}),
    _row("POST", "/events/{event_id:str}/unmerge", "/events/{event}/unmerge",
         "403 403 403 403 403 403 303 403 303 303 303", page=True, form={}),
    _row("POST", "/tasks/{task_id:str}/{action:str}", "/tasks/{task}/claim",
         "303 403 403 403 403 403 403 403 403 403 303", page=True, form={}),
    _row("GET", "/console", "/console",
         "403 403 403 403 403 403 200 200 200 200 302", page=True),
    _row("GET", "/stats", "/stats?unit=HS",
         "403 403 403 403 403 403 200 403 200 200 302", page=True, note="indicators of a street"),
    _row("GET", "/stats/drill", "/stats/drill?unit=HS01&counter=tasks",
         "403 403 200 403 403 403 200 403 200 200 302", page=True, note="the community's own staff too"),
    _row("GET", "/search", "/search?q={receipt}",
         "403 403 403 403 403 403 200 200 200 200 302", page=True, note="supervisors' event search"),
    _row("GET", "/search/export.csv", "/search/export.csv?q={receipt}",
         "403 403 403 403 403 403 200 200 200 200 302", page=True),
    _row("GET", "/search/export.xlsx", "/search/export.xlsx?q={receipt}",
         "403 403 403 403 403 403 200 200 200 200 302", page=True),
    _row("GET", "/dashboard", "/dashboard",
         "403 403 403 403 403 403 200 200 200 200 302", page=True, note="supervisors: their own scope"),
    _row("GET", "/dashboard", "/dashboard?unit=HS01-G1",
         "403 403 403 403 403 403 200 403 200 200 302", page=True, note="a grid of street HS"),
    _row("GET", "/dashboard/screen", "/dashboard/screen?unit=HS",
         "403 403 403 403 403 403 200 403 200 200 302", page=True, note="the 大屏 of street HS"),
    _row("GET", "/reports", "/reports",
         "403 403 403 403 403 403 200 200 200 200 302", page=True, note="the periods with a report"),
    _row("GET", "/reports/{period:str}", "/reports/2026-11",
         "403 403 403 403 403 403 200 200 200 200 302", page=True, note="each supervisor ranks their scope's units"),
    _row("GET", "/reports/{period:str}/export.csv", "/reports/2026-11/export.csv",
         "403 403 403 403 403 403 200 200 200 200 302", page=True),
    _row("GET", "/reports/{period:str}/export.xlsx", "/reports/2026-11/export.xlsx",
         "403 403 403 403 403 403 200 200 200 200 302", page=True),
    _row("POST", "/reports/recompute", "/reports/recompute",
         "403 403 403 403 403 403 403 403 400 400 303", page=True, form={"period": "2026-13", "reason": "x"},
         note="the city's report: city supervisors and admins; a month that does not exist"),
    _row("GET", "/console/lockouts", "/console/lockouts",
         "403 403 403 403 403 403 200 200 200 200 302", page=True),
    _row("POST", "/console/lockouts/lift", "/console/lockouts/lift",
         "403 403 403 403 403 403 303 303 303 303 303", page=True,
         form={"kind": "pair", "username": "nobody", "address": "192.0.2.1"}, note="no such lockout: back"),
    _row("POST", "/console/bulk", "/console/bulk",
         "403 403 403 403 403 403 303 303 303 303 303", page=True, form={"event_ids": "{event}", "action": "resume"}),
    _row("GET", "/inbox", "/inbox",
         "200 200 200 200 200 200 200 200 200 200 302", page=True),
    _row("POST", "/inbox/filters", "/inbox/filters",
         "303 303 303 303 303 303 303 303 303 303 303", page=True, form={"name": "f", "query": "view=mine"}),
    _row("POST", "/inbox/filters/{filter_id:int}/delete", "/inbox/filters/{filter}/delete",
         "303 403 403 403 403 403 403 403 403 403 303", page=True, form={}, prepare="new_filter",
         note="the grid worker's own filter"),
    _row("POST", "/logout", "/logout",
         "303 303 303 303 303 303 303 303 303 303 303", page=True, form={}, prepare="fresh_login",
         note="ends the visitor's own session (a fresh one, so the other cells keep theirs)"),
    _row("GET", "/track/{code:str}", "/track/{receipt}",
         "200 200 200 200 200 200 200 200 200 200 200", page=True),
    _row("POST", "/track/{code:str}/rating", "/track/{receipt}/rating",
         "403 403 403 403 403 403 403 403 403 403 403", page=True, form={"rating": "satisfied"}),
    # --- assessment (issue 11, item 3): scores, inspection entries, cadre ratings --------------------------
    _row("GET", "/assessment", "/assessment",
         "403 403 403 403 403 403 200 200 200 200 302", page=True, note="rows of the supervisor's scope"),
    _row("GET", "/assessment/inspections", "/assessment/inspections",
         "403 403 403 403 403 403 200 200 200 200 302", page=True),
    _row("POST", "/assessment/inspections", "/assessment/inspections",
         "403 403 403 403 403 403 400 403 400 400 303", page=True,
         form={"grid": "HS01-G1", "duty": "D03", "finding": "", "score": "50"},
         note="another street's grid: 403; in scope, no finding: the form back (400)"),
    _row("GET", "/assessment/cadres", "/assessment/cadres",
         "403 403 403 403 200 403 200 200 200 200 302", page=True,
         note="those who rate cadres: the street's supervisor, the home department, city, admin"),
    _row("POST", "/assessment/cadres", "/assessment/cadres",
         "403 403 403 403 400 403 400 400 400 400 303", page=True,
         form={"username": "pz_zf_hs", "side": "street", "score": "x"},
         note="the department rates no street side, another street not this cadre: the form back (400)"),
    _row("GET", "/api/inspections", "/api/inspections",
         "403 403 403 403 403 403 200 200 200 200 401", note="another street's supervisor lists none of HS's"),
    _row("POST", "/api/inspections", "/api/inspections",
         "403 403 403 403 403 403 400 403 400 400 401",
         json={"grid": "HS01-G1", "duty": "D03", "finding": "x", "score": 120}, note="a score out of range"),
    _row("GET", "/admin/schemes", "/admin/schemes",
         "403 403 403 403 403 403 403 403 403 200 302", page=True),
    _row("POST", "/admin/schemes/upload", "/admin/schemes/upload",
         "403 403 403 403 403 403 403 403 403 400 303", page=True,
         files={"file": ("scheme.json", b"{}", "application/json")}, note="problems: nothing stored"),
    _row("POST", "/admin/schemes/{version:str}/activate", "/admin/schemes/NOPE/activate",
         "403 403 403 403 403 403 403 403 403 303 303", page=True, form={},
         note="unknown version: back with the reason"),
    # --- processes beyond problem events (issue 14): {process} is a proxy service requested on the portal in
    # HS01-G1, its first task open for the grid's workers; {process_key} the requester's key --------------------
    _row("GET", "/processes", "/processes",
         "200 200 200 200 200 200 200 200 200 200 302", page=True, note="each sees their own tasks and scope"),
    _row("GET", "/processes/new/{kind:str}", "/processes/new/proxy_service",
         "200 200 200 200 200 200 200 200 200 200 302", page=True),
    _row("POST", "/processes/new/{kind:str}", "/processes/new/proxy_service",
         "400 400 400 400 400 400 400 400 400 400 303", page=True, form={"name": "", "grid": "HS01-G1"},
         note="no name (or a grid outside one's scope): the form back, nothing started"),
    _row("GET", "/processes/{instance_id:str}", "/processes/{process}",
         "200 404 200 404 404 404 200 404 200 200 302", page=True,
         note="its grid, community, street, the city; others: 404, as an unknown instance"),
    _row("POST", "/processes/{instance_id:str}/act", "/processes/{process}/act",
         "409 404 409 404 404 404 409 404 409 409 303", page=True, form={"action": "claim", "task_id": "nope"},
         note="no such task: the workflow refuses (409) for those who see it"),
    _row("GET", "/p/new/{kind:str}", "/p/new/proxy_service",
         "200 200 200 200 200 200 200 200 200 200 200", page=True, note="public: residents request"),
    _row("POST", "/p/new/{kind:str}", "/p/new/proxy_service",
         "400 400 400 400 400 400 400 400 400 400 400", page=True, form={"name": "", "grid": "HS01-G1"},
         note="public, rate-limited per address; no name: the form back"),
    _row("GET", "/p/{instance_id:str}", "/p/{process}?key={process_key}",
         "200 200 200 200 200 200 200 200 200 200 200", page=True, note="whoever holds the key (404 without)"),
    _row("POST", "/p/{instance_id:str}/act", "/p/{process}/act",
         "409 409 409 409 409 409 409 409 409 409 409", page=True,
         form={"key": "{process_key}", "action": "claim", "task_id": "nope"},
         note="the key's holder acts as the requester: the staff's task is not theirs (409)"),
    _row("GET", "/admin/processes", "/admin/processes",
         "403 403 403 403 403 403 403 403 403 200 302", page=True),
    _row("POST", "/admin/processes/upload", "/admin/processes/upload",
         "403 403 403 403 403 403 403 403 403 400 303", page=True,
         files={"file": ("definition.json", b"{}", "application/json")}, note="problems: nothing stored"),
    _row("POST", "/admin/processes/{kind:str}/{version:str}/activate", "/admin/processes/proxy_service/NOPE/activate",
         "403 403 403 403 403 403 403 403 403 404 303", page=True, form={}, note="unknown version"),
    # --- administration pages (users, units, the responsibility list) -------------------------------------
    _row("GET", "/admin/users", "/admin/users",
         "403 403 403 403 403 403 403 403 403 200 302", page=True),
    _row("POST", "/admin/users", "/admin/users",
         "403 403 403 403 403 403 403 403 403 400 303", page=True, form={"username": ""}),
    _row("GET", "/admin/users/{username:str}", "/admin/users/wg_hs01_g2",
         "403 403 403 403 403 403 403 403 403 200 302", page=True),
    _row("POST", "/admin/users/{username:str}", "/admin/users/wg_hs01_g2",
         "403 403 403 403 403 403 403 403 403 400 303", page=True, form={"role": "nope", "unit": "HS01-G2"}),
    _row("POST", "/admin/users/{username:str}/password", "/admin/users/wg_hs01_g2/password",
         "403 403 403 403 403 403 403 403 403 400 303", page=True, form={"password": "x"}),
    _row("POST", "/admin/users/{username:str}/active", "/admin/users/admin/active",
         "403 403 403 403 403 403 403 403 403 400 303", page=True, form={"active": ""},
         note="an administrator cannot deactivate themselves"),
    _row("POST", "/admin/users/{username:str}/station", "/admin/users/wg_hs01_g2/station",
         "403 403 403 403 403 403 403 403 403 400 303", page=True, form={"street": "NOPE"}),
    _row("GET", "/admin/org", "/admin/org",
         "403 403 403 403 403 403 403 403 403 200 302", page=True),
    _row("POST", "/admin/org/units", "/admin/org/units",
         "403 403 403 403 403 403 403 403 403 400 303", page=True, form={"code": "", "kind": "grid"}),
    _row("GET", "/admin/org/units/{code:str}", "/admin/org/units/HS01-G1",
         "403 403 403 403 403 403 403 403 403 200 302", page=True),
    _row("POST", "/admin/org/units/{code:str}", "/admin/org/units/HS01-G1",
         "403 403 403 403 403 403 403 403 403 400 303", page=True, form={"name_zh": "", "name_en": ""}),
    _row("GET", "/admin/rules", "/admin/rules",
         "403 403 403 403 403 403 403 403 403 200 302", page=True),
    _row("POST", "/admin/rules/upload", "/admin/rules/upload",
         "403 403 403 403 403 403 403 403 403 400 303", page=True,
         files={"file": ("list.json", b"{}", "application/json")}),
    _row("POST", "/admin/rules/{version:str}/activate", "/admin/rules/NOPE/activate",
         "403 403 403 403 403 403 403 403 403 303 303", page=True, form={},
         note="unknown version: back with the reason"),
    _row("GET", "/admin/rules/diff", "/admin/rules/diff?old=2026.1&new=2026.1",
         "403 403 403 403 403 403 403 403 403 200 302", page=True),
    # --- outbound webhooks (administrators only) ------------------------------------------------------------
    _row("GET", "/admin/webhooks", "/admin/webhooks",
         "403 403 403 403 403 403 403 403 403 200 302", page=True),
    _row("POST", "/admin/webhooks", "/admin/webhooks",
         "403 403 403 403 403 403 403 403 403 400 303", page=True,
         form={"integration": "x", "url": "http://169.254.169.254/"}, note="a metadata address: the form back"),
    _row("GET", "/admin/webhooks/{subscription_id:int}", "/admin/webhooks/999",
         "403 403 403 403 403 403 403 403 403 404 302", page=True, note="no such subscription"),
    _row("POST", "/admin/webhooks/{subscription_id:int}/deactivate", "/admin/webhooks/999/deactivate",
         "403 403 403 403 403 403 403 403 403 404 303", page=True, form={}),
    _row("POST", "/admin/webhooks/{subscription_id:int}/deliveries/{delivery_id:int}/replay",
         "/admin/webhooks/999/deliveries/999/replay",
         "403 403 403 403 403 403 403 403 403 404 303", page=True, form={}),
    # --- integrations (issue 12): API keys, Open311 GeoReport v2 -------------------------------------------
    _row("GET", "/admin/keys", "/admin/keys",
         "403 403 403 403 403 403 403 403 403 200 302", page=True),
    _row("POST", "/admin/keys", "/admin/keys",
         "403 403 403 403 403 403 403 403 403 400 303", page=True, form={"name": "", "scope": "report"},
         note="no name: the form back"),
    _row("POST", "/admin/keys/{name:str}/revoke", "/admin/keys/NOPE/revoke",
         "403 403 403 403 403 403 403 403 403 404 303", page=True, form={}, note="no such integration"),
    _row("GET", "/open311/v2/{name:str}", "/open311/v2/services.json",
         "200 200 200 200 200 200 200 200 200 200 200", note="public: the service list"),
    _row("GET", "/open311/v2/{name:str}", "/open311/v2/requests.json",
         "403 403 403 403 403 403 403 403 403 403 403",
         note="a search needs an integration's key with read: a staff login is none"),
    _row("GET", "/open311/v2/services/{name:str}", "/open311/v2/services/SR-01.json",
         "200 200 200 200 200 200 200 200 200 200 200", note="public: a service definition"),
    _row("GET", "/open311/v2/requests/{name:str}", "/open311/v2/requests/{receipt}.json",
         "200 200 200 200 200 200 200 200 200 200 200", note="the receipt code reads the public subset"),
    _row("GET", "/open311/v2/tokens/{name:str}", "/open311/v2/tokens/NOPE.json",
         "404 404 404 404 404 404 404 404 404 404 404", note="tokens are random; an unknown one"),
    _row("POST", "/open311/v2/{name:str}", "/open311/v2/requests.json",
         "403 403 403 403 403 403 403 403 403 403 403",
         note="reporting needs an integration's key with report: a staff login is none"),
    _row("GET", "/metrics", "/metrics", "404 404 404 404 404 404 404 404 404 404 404",
         note="internal (web/metrics.py): from a non-loopback address only WULIAN_METRICS_TOKEN admits; "
              "a login's token is none"),
    _row("GET", "/readyz", "/readyz", "200 200 200 200 200 200 200 200 200 200 200",
         note="public readiness: up or down, nothing about anybody (web/health.py)"),
    _row("GET", "/api/subscriptions", "/api/subscriptions",
         "401 401 401 401 401 401 401 401 401 401 401",
         note="an integration's key with subscribe only (tests/test_api_subscriptions.py): a login is none"),
    _row("POST", "/api/subscriptions", "/api/subscriptions",
         "401 401 401 401 401 401 401 401 401 401 401", json={"url": "https://hooks.example.org/x"},
         note="an integration's key with subscribe only"),
    _row("GET", "/api/subscriptions/{subscription_id:int}/deliveries", "/api/subscriptions/1/deliveries",
         "401 401 401 401 401 401 401 401 401 401 401", note="an integration's key with subscribe only"),
    _row("DELETE", "/api/subscriptions/{subscription_id:int}", "/api/subscriptions/1",
         "401 401 401 401 401 401 401 401 401 401 401", note="an integration's key with subscribe only"),
]

#: Routes that read or act on none of the above, and why they need no row.
EXEMPT: dict[tuple[str, str], str] = {
    ("GET", "/"): "redirect to the inbox or the report form",
    ("GET", "/healthz"): "liveness",
    ("GET", "/login"): "the login form",
    ("POST", "/login"): "login (rate-limited; tests/test_security.py)",
    ("POST", "/api/auth/login"): "login (rate-limited; tests/test_security.py)",
    ("GET", "/lang/{lang:str}"): "language cookie",
    ("GET", "/report"): "the public report form",
    ("POST", "/report"): "the public report (like POST /api/events)",
    ("GET", "/track"): "the tracking form (a redirect)",
    ("GET", "/api/categories"): "public reference data",
    ("GET", "/api/categories/suggest"): "public reference data",
    ("GET", "/api/units"): "public reference data",
    ("GET", "/static/{file_path:path}"): "static files",
}
#: The OpenAPI description and its viewers.
EXEMPT_PREFIXES = ("/schema",)
