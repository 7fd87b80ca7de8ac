"""Pages of the processes beyond problem events (issue 14): start an instance of any active
definition, the process tasks of the user's unit (with a process filter), an instance's page with
the actions its definition offers this user, the requester's page (reached with the access key the
start gave them), and the administration of the definitions (``/admin/processes``).

A resident requests a kind whose definition says ``portal`` at ``/p/new/<kind>`` (rate-limited per
client address) and follows it at ``/p/<id>?key=``. A refused action is said on the page itself
(409, in the visitor's language), never carried in the query string; the query string carries only
message keys the page knows. Photos of a task's form are checked and stored by :mod:`web.photos`
and attached to ``process:<instance id>``, seen by those who may see the instance.

What may be done is the definition's (:mod:`processes.instance`'s moves, asked on a copy before
offering); what is valid is its forms' (:mod:`processes.forms`); the workflow checks both again in
its update's validator. The pages only ask.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, TooManyRequestsException
from litestar.params import Body
from litestar.response import Redirect, Template
from markupsafe import Markup
from sqlmodel import col, or_, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from processes.definition import ProcessDefinition
from processes.instance import (
    Instance,
    Person,
    ProcessTask,
    Refused,
    Requester,
    SignUp,
    may_close,
    may_take,
)
from store import models, process_versions, users
from store import photos as photo_store
from store.db import Database
from store.process_queries import task_counts, task_rows
from web.access import admins, signed_in
from web.auth import CurrentUser
from web.client_address import client_ip
from web.context import AppContext
from web.errors import refusal
from web.i18n import language_of, translate
from web.labels import has_key
from web.photos import form_uploads, save_staff_photos
from web.process_forms import PREFIX, ProcessText, posted_values, problem_texts, with_codes
from web.request_limits import Limited, hit, process_start_limit
from workflows.process_instance import ProcessAction, ProcessInstanceWorkflow, apply_action
from wulian.process_admin import MAX_DEFINITION_BYTES, catalogues_of, check_content, diff_lines, dry_run, store_checked
from wulian.process_starts import InvalidProcessStart, holds_access, start_process

#: The actions a page may post (``ProcessAction.action``).
PAGE_ACTIONS = ("claim", "withdraw", "complete", "check_in", "check_out", "cancel")


async def person_of(ctx: AppContext, user: CurrentUser) -> Person:
    """The user as the definition's takers see them: unit, role, party membership, the units above."""
    org = await ctx.org()
    row = await users.get_user(ctx.db, user.username)
    return Person(user.username, unit=user.unit, role=user.role, party_member=bool(row and row.party_member),
                  units_above=(user.unit, *org.ancestors(user.unit)))


def requester_person() -> Person:
    """The requester, acting through their page (the access key)."""
    return Person("requester", role="requester")


def instance_of(row: models.ProcessInstanceRow) -> Instance:
    """The projected instance (``row.data``) as the moves take it."""
    from temporalio.converter import DataConverter

    payload = DataConverter.default.payload_converter.to_payloads([row.data])[0]
    result: Instance = DataConverter.default.payload_converter.from_payloads([payload], [Instance])[0]
    return result


@dataclass
class Offer:
    """What a user may do on an instance's open task: claim it, sign up or withdraw, complete it (with
    these outcomes and this form), check volunteers in and out, cancel the instance."""

    task: ProcessTask | None
    claim: bool = False
    withdraw: bool = False
    complete: list[str] = field(default_factory=list)
    check: list[SignUp] = field(default_factory=list)
    cancel: bool = False


def _allowed(d: ProcessDefinition, inst: Instance, action: ProcessAction) -> bool:
    try:  # the move itself decides, on a copy (the workflow's validator does the same)
        apply_action(d, copy.deepcopy(inst), action, datetime.now(UTC).isoformat(), {})
    except Refused as exc:
        return exc.code in ("invalid_form", "invalid_input")  # allowed, once the form is filled in
    return True


def offers(d: ProcessDefinition, inst: Instance, who: Person) -> Offer:
    """The actions the definition allows ``who`` now (each checked by the move it would make)."""
    task = inst.open_task()
    offer = Offer(task)
    if task is None or inst.ended_at:
        return offer
    spec = d.state(task.state).task
    assert spec is not None
    if may_close(d, inst, task, who):
        offer.complete = [o for o in spec.outcomes
                          if _allowed(d, inst, ProcessAction("complete", who, task.task_id, o, {}))]
    if may_take(d, inst, task, who):
        mine = next((s for s in task.sign_ups if s.username == who.username), None)
        if spec.claim == "many":
            offer.claim, offer.withdraw = mine is None, mine is not None
        else:  # a task they may complete at once (their own: the move claims it) asks for no claim
            offer.claim = task.status == "open" and who.role != "requester" and spec.taker is not None \
                and spec.taker.place != "requester" and not offer.complete
        earlier = [s for t in inst.tasks for s in t.sign_ups if not s.waiting and not s.checked_out]
        offer.check = earlier if spec.claim == "one" and who.role != "requester" else []
    offer.cancel = _allowed(d, inst, ProcessAction("cancel", who))
    return offer


async def visible_instance(ctx: AppContext, user: CurrentUser, instance_id: str
                           ) -> tuple[models.ProcessInstanceRow, ProcessDefinition, Instance]:
    """The instance, when the user may see it (its place within their scope, or one of its tasks
    theirs or their unit's); 404 otherwise, the same as an unknown one."""
    async with ctx.db.session() as session:
        row = await session.get(models.ProcessInstanceRow, instance_id[:200])
    if row is None:
        raise refusal(NotFoundException, "process.err.missing")
    inst = instance_of(row)
    above = (await person_of(ctx, user)).units_above
    mine = any(t.unit in user.scope or t.person == user.username or t.unit in above
               for t in inst.tasks) or row.started_by == user.username
    if not (user.sees(row.grid, row.community, row.street) or mine or user.is_supervisor and not row.street):
        raise refusal(NotFoundException, "process.err.missing")
    stored = await process_versions.get_version(ctx.db, row.kind, row.version)
    if stored is None:
        raise refusal(NotFoundException, "process.err.missing")
    return row, process_versions.parsed(stored), inst


def process_texts(defs: dict[str, ProcessDefinition], lang: str) -> dict[str, ProcessText]:
    """The words of each definition of ``defs`` (the active ones, by kind), for the lists of tasks
    of several kinds."""
    return {k: ProcessText(lang, d, catalogues_of(d)) for k, d in defs.items()}


async def inbox_processes(ctx: AppContext, user: CurrentUser, lang: str, limit: int = 5) -> dict[str, Any]:
    """The process tasks' part of the shared inbox: the soonest due, and the count of each kind, each a
    link to /processes filtered by it."""
    person = await person_of(ctx, user)
    counts = await task_counts(ctx.db, person)
    if not counts:
        return {"process_rows": [], "process_counts": {}, "texts": {}}
    return {"process_rows": await task_rows(ctx.db, person, None, limit), "process_counts": counts,
            "texts": process_texts(await process_versions.active_definitions(ctx.db), lang)}


async def act_on(ctx: AppContext, instance_id: str, action: ProcessAction) -> None:
    """Send ``action`` to the instance's workflow (its validator checks it again)."""
    client = await ctx.temporal()
    handle = client.get_workflow_handle_for(ProcessInstanceWorkflow.run, instance_id)
    await handle.execute_update(ProcessInstanceWorkflow.act, action)


#: How long a start waits for the instance's first projection before redirecting to its page.
FIRST_PROJECTION_SECONDS = 10.0


async def first_projection(db: Database, instance_id: str, seconds: float = FIRST_PROJECTION_SECONDS) -> bool:
    """Wait until the new instance's workflow has projected it (its page would say 404 before), at
    most ``seconds``; whether it has. The start itself is durable in Temporal either way."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        async with db.session() as session:
            if await session.get(models.ProcessInstanceRow, instance_id) is not None:
                return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)


def refused_text(lang: str, exc: BaseException) -> str:
    """Why the workflow refused an action, in ``lang`` (its code, never its English message)."""
    cause = getattr(exc, "cause", None)
    code = getattr(cause, "type", None) or "failed"
    key = f"process.refused.{code}"
    text = translate(lang, key)
    return text if text != key else translate(lang, "process.refused.failed")


def _lang(request: Request) -> str:
    return language_of(request.cookies)


async def _form_of(request: Request) -> FormMultiDict:
    return await request.form()


def _strings(form: FormMultiDict) -> dict[str, list[str]]:
    return {k: [v for v in form.getall(k, []) if isinstance(v, str)] for k in form.keys()}


#: The message keys a page shows from its query string (anything else there is ignored).
PAGE_MESSAGES = ("process.msg.started", "process.msg.done")


def _known(msg: str | None) -> str | None:
    return msg if msg in PAGE_MESSAGES else None


def _grids(org: Any, scope: Any = None) -> list[Any]:
    return sorted((u for u in org.units.values() if u.kind == "grid" and (scope is None or u.code in scope)),
                  key=lambda u: u.code)


async def _requester(ctx: AppContext, posted: dict[str, list[str]], scope: Any, lang: str
                     ) -> tuple[Requester | None, dict[str, str], str | None]:
    """The requester a start form names (name, phone, grid within ``scope``), or why not."""
    org = await ctx.org()
    first = lambda name, limit: (posted.get(name) or [""])[-1].strip()[:limit]  # noqa: E731
    given = {"name": first("name", 50), "phone": first("phone", 20), "grid": first("grid", 32)}
    grid = given["grid"]
    if grid not in org.units or org.units[grid].kind != "grid" or (scope is not None and grid not in scope):
        return None, given, translate(lang, "process.err.grid")
    if not given["name"]:
        return None, given, translate(lang, "process.err.name")
    ancestors = org.ancestors(grid)
    community = next((a for a in ancestors if org.units[a].kind == "community"), "")
    street = next((a for a in ancestors if org.units[a].kind == "street"), "")
    phone = given["phone"] or first(PREFIX + "phone", 20)
    return Requester(given["name"], phone, grid=grid, community=community, street=street), given, None


def _page_context(lang: str, row: models.ProcessInstanceRow, d: ProcessDefinition, inst: Instance, offer: Offer,
                  **extra: Any) -> dict[str, Any]:
    catalogues = catalogues_of(d)
    return {"row": row, "d": d, "inst": inst, "offer": offer, "catalogues": catalogues,
            "pt": ProcessText(lang, d, catalogues), "specs": {s.name: s for s in d.states}, **extra}


class ProcessPages(Controller):
    """Processes for staff: start, list, act."""

    path = "/processes"
    guards = [signed_in]

    @get("/")
    async def overview(self, ctx: AppContext, user: CurrentUser, request: Request, kind: str | None = None,
                       msg: str | None = None) -> Response[Any]:
        """The kinds the user may start, the process tasks they may take or hold (``kind`` filters),
        and the recent instances of their scope."""
        defs = await process_versions.active_definitions(ctx.db)
        chosen = kind if kind in defs else None
        person = await person_of(ctx, user)
        rows = await task_rows(ctx.db, person, chosen)
        async with ctx.db.session() as session:
            query = select(models.ProcessInstanceRow).order_by(col(models.ProcessInstanceRow.created_at).desc())
            if not user.is_supervisor or user.stationed_street:
                query = query.where(or_(col(models.ProcessInstanceRow.community).in_(list(user.scope)),
                                        col(models.ProcessInstanceRow.grid).in_(list(user.scope)),
                                        col(models.ProcessInstanceRow.started_by) == user.username))
            if chosen:
                query = query.where(models.ProcessInstanceRow.kind == chosen)
            recent = list((await session.exec(query.limit(50))).all())
        lang = _lang(request)
        texts = process_texts(defs, lang)
        return Template("processes.html", context={
            "user": user, "defs": defs, "texts": texts, "kind": chosen, "rows": rows, "recent": recent,
            "now": datetime.now(UTC), "msg": _known(msg)})

    @get("/new/{kind:str}")
    async def new(self, ctx: AppContext, user: CurrentUser, request: Request, kind: str) -> Response[Any]:
        """The start form of ``kind``'s active definition."""
        d = await _definition(ctx, kind)
        return await self._form(ctx, user, request, d, {}, [], 200)

    async def _form(self, ctx: AppContext, user: CurrentUser, request: Request, d: ProcessDefinition,
                    values: dict[str, Any], errors: list[str], status: int,
                    requester: dict[str, str] | None = None) -> Response[Any]:
        org = await ctx.org()
        teams = sorted((u for u in org.units.values() if u.kind == "community" and u.code in user.scope),
                       key=lambda u: u.code)
        catalogues = catalogues_of(d)
        return Template("process_new.html", status_code=status, context={
            "user": user, "d": d, "values": values, "errors": errors, "grids": _grids(org, user.scope),
            "teams": teams, "pt": ProcessText(_lang(request), d, catalogues), "requester": requester or {},
            "action": f"/processes/new/{d.kind}"})

    @post("/new/{kind:str}", status_code=303)
    async def start(self, ctx: AppContext, user: CurrentUser, request: Request, kind: str) -> Response[Any]:
        """Start an instance for a resident of the user's scope (or for a team, as its activity)."""
        d = await _definition(ctx, kind)
        posted = _strings(await _form_of(request))
        values = posted_values(d.input, posted)
        lang = _lang(request)
        requester, given, problem = await _requester(ctx, posted, user.scope, lang)
        if requester is None:
            return await self._form(ctx, user, request, d, values, [problem or ""], 400, given)
        try:
            started = await start_process(await ctx.temporal(), ctx.settings.temporal_task_queue, d, requester,
                                          values, user.username)
        except InvalidProcessStart as exc:
            return await self._form(ctx, user, request, d, values, problem_texts(lang, d.input, exc.problems), 400,
                                    given)
        except RPCError:
            return await self._form(ctx, user, request, d, values,
                                    [translate(lang, "process.refused.unavailable")], 503, given)
        await first_projection(ctx.db, started.instance_id)
        return Redirect(f"/processes/{started.instance_id}?msg=process.msg.started&key={started.access_key}",
                        status_code=303)

    @get("/{instance_id:str}")
    async def page(self, ctx: AppContext, user: CurrentUser, request: Request, instance_id: str,
                   msg: str | None = None, key: str | None = None) -> Response[Any]:
        """The instance: where it stands, its tasks and timeline, what this user may do now."""
        row, d, inst = await visible_instance(ctx, user, instance_id)
        # The requester's key is shown once, right after the start (never again: only its hash is kept).
        shown_key = key if key and msg == "process.msg.started" and holds_access(row.access_hash, key) else None
        return await self._page(ctx, user, request, row, d, inst, msg=_known(msg), key=shown_key)

    async def _page(self, ctx: AppContext, user: CurrentUser, request: Request, row: models.ProcessInstanceRow,
                    d: ProcessDefinition, inst: Instance, status: int = 200, **extra: Any) -> Response[Any]:
        offer = offers(d, inst, await person_of(ctx, user))
        lang, org = _lang(request), await ctx.org()
        team = org.units.get(str(inst.values.get("team") or ""))  # a volunteer team is a unit: by its name
        team_name = (team.name_en if lang == "en" else team.name_zh) if team else ""
        return Template("process.html", status_code=status, context=_page_context(
            lang, row, d, inst, offer, user=user, base=f"/processes/{row.instance_id}",
            credits=inst.credits, team_name=team_name, **extra))

    @post("/{instance_id:str}/act", status_code=303)
    async def act(self, ctx: AppContext, user: CurrentUser, request: Request, instance_id: str) -> Response[Any]:
        """One action of the user on the instance; a refused one is said on the page (409)."""
        row, d, inst = await visible_instance(ctx, user, instance_id)
        base = f"/processes/{row.instance_id}"
        result = await _act(ctx, request, d, inst, await person_of(ctx, user), user)
        if isinstance(result, str):
            return await self._page(ctx, user, request, row, d, inst, status=409, error=result)
        return Redirect(f"{base}?msg=process.msg.done", status_code=303)


async def _definition(ctx: AppContext, kind: str) -> ProcessDefinition:
    d = await process_versions.active_definition(ctx.db, kind[:40])
    if d is None:
        raise refusal(NotFoundException, "process.err.kind")
    return d


async def _act(ctx: AppContext, request: Request, d: ProcessDefinition, inst: Instance, who: Person,
               user: CurrentUser | None) -> None | str:
    """Send the posted action to the instance; None when done, else why not in the visitor's language."""
    form = await _form_of(request)
    posted = _strings(form)
    first = lambda name, limit: (posted.get(name) or [""])[-1].strip()[:limit]  # noqa: E731
    action = first("action", 20)
    lang = _lang(request)
    if action not in PAGE_ACTIONS:
        return translate(lang, "process.refused.not_now")
    task = inst.open_task()
    task_id = first("task_id", 220) or (task.task_id if task else "")
    spec = d.state(inst.task(task_id).state).task if task_id and any(t.task_id == task_id for t in inst.tasks) else None
    values = posted_values(spec.form, posted) if spec is not None and action == "complete" else {}
    photos: list[str] = []
    if spec is not None and action == "complete" and user is not None:
        for field_spec in spec.form:  # a photo field: the file checked and stored first, its id the value
            uploads = form_uploads(form, PREFIX + field_spec.name)
            if field_spec.type == "photo" and uploads:
                values[field_spec.name] = (await save_staff_photos(ctx, request, user, uploads, 1))[0]
                photos.append(values[field_spec.name])
    try:
        await act_on(ctx, inst.instance_id, ProcessAction(action, who, task_id, first("outcome", 40), values,
                                                          first("volunteer", 64)))
    except WorkflowUpdateFailedError as exc:
        cause = getattr(exc, "cause", None)
        text = refused_text(lang, exc)
        if getattr(cause, "type", None) == "invalid_form" and spec is not None:
            # The workflow's message lists the problems; the page says them from the same check.
            from processes.forms import form_problems, offered_values

            problems = form_problems(spec.form, values, offered_values(spec.form, d.input, inst.values,
                                                                       catalogues_of(d)))
            text = "；".join(problem_texts(lang, spec.form, problems)) or text
        return text
    except RPCError:
        return translate(lang, "process.refused.unavailable")
    if photos:
        await photo_store.attach(ctx.db, photos, f"process:{inst.instance_id}", task_id)
    return None


class RequesterProcessPages(Controller):
    """The resident's pages: request a kind the definition opens to the portal, and follow an instance
    with the access key its start gave (confirm, rate)."""

    path = "/p"

    @get("/new/{kind:str}")
    async def new(self, ctx: AppContext, request: Request, kind: str) -> Response[Any]:
        """The portal's start form of ``kind`` (only a definition marked ``portal``)."""
        d = await _portal_definition(ctx, kind)
        return await self._form(ctx, request, d, {}, [], 200)

    async def _form(self, ctx: AppContext, request: Request, d: ProcessDefinition, values: dict[str, Any],
                    errors: list[str], status: int, requester: dict[str, str] | None = None) -> Response[Any]:
        catalogues = catalogues_of(d)
        return Template("process_new.html", status_code=status, context={
            "user": None, "d": d, "values": values, "errors": errors, "grids": _grids(await ctx.org()),
            "teams": [], "pt": ProcessText(_lang(request), d, catalogues), "requester": requester or {},
            "action": f"/p/new/{d.kind}", "portal": True})

    @post("/new/{kind:str}", status_code=303)
    async def start(self, ctx: AppContext, request: Request, kind: str) -> Response[Any]:
        """A resident's request: rate-limited per client address, checked by the one start."""
        d = await _portal_definition(ctx, kind)
        try:
            await hit(ctx.db, process_start_limit(ctx.settings), client_ip(request, ctx.settings))
        except Limited as exc:
            raise refusal(TooManyRequestsException, "process.err.too_many",
                          headers={"Retry-After": str(exc.retry_after)}) from None
        posted = _strings(await _form_of(request))
        values = posted_values(d.input, posted)
        lang = _lang(request)
        requester, given, problem = await _requester(ctx, posted, None, lang)
        if requester is None:
            return await self._form(ctx, request, d, values, [problem or ""], 400, given)
        try:
            started = await start_process(await ctx.temporal(), ctx.settings.temporal_task_queue, d, requester,
                                          values, "requester")
        except InvalidProcessStart as exc:
            return await self._form(ctx, request, d, values, problem_texts(lang, d.input, exc.problems), 400, given)
        except RPCError:
            return await self._form(ctx, request, d, values, [translate(lang, "process.refused.unavailable")], 503,
                                    given)
        await first_projection(ctx.db, started.instance_id)
        return Redirect(f"/p/{started.instance_id}?key={started.access_key}&msg=process.msg.started",
                        status_code=303)

    @get("/{instance_id:str}")
    async def page(self, ctx: AppContext, request: Request, instance_id: str, key: str = "",
                   msg: str | None = None) -> Response[Any]:
        """Where the request stands, and the requester's own task (confirm, rate) when it is open."""
        row, d, inst = await _held(ctx, instance_id, key)
        return self._page(request, row, d, inst, key, msg=_known(msg))

    def _page(self, request: Request, row: models.ProcessInstanceRow, d: ProcessDefinition, inst: Instance,
              key: str, status: int = 200, **extra: Any) -> Response[Any]:
        offer = offers(d, inst, requester_person())
        return Template("process.html", status_code=status, context=_page_context(
            _lang(request), row, d, inst, offer, user=None, key=None, credits=[], base=f"/p/{row.instance_id}",
            access_key=key, requester_view=True, **extra))

    @post("/{instance_id:str}/act", status_code=303)
    async def act(self, ctx: AppContext, request: Request, instance_id: str) -> Response[Any]:
        """The requester's action (only their own tasks: the moves refuse anything else)."""
        posted = _strings(await _form_of(request))
        key = (posted.get("key") or [""])[-1][:64]
        row, d, inst = await _held(ctx, instance_id, key)
        result = await _act(ctx, request, d, inst, requester_person(), None)
        if isinstance(result, str):
            return self._page(request, row, d, inst, key, status=409, error=result)
        return Redirect(f"/p/{row.instance_id}?key={_q(key)}&msg=process.msg.done", status_code=303)


async def _portal_definition(ctx: AppContext, kind: str) -> ProcessDefinition:
    d = await _definition(ctx, kind)
    if not d.portal:  # a kind staff start for others (a volunteer activity) is not requested on the portal
        raise refusal(NotFoundException, "process.err.kind")
    return d


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text[:500], safe="")


async def _held(ctx: AppContext, instance_id: str, key: str
                ) -> tuple[models.ProcessInstanceRow, ProcessDefinition, Instance]:
    async with ctx.db.session() as session:
        row = await session.get(models.ProcessInstanceRow, instance_id[:200])
    if row is None or not holds_access(row.access_hash, key[:64]):  # the same answer: nothing is told
        raise refusal(NotFoundException, "process.err.missing")
    stored = await process_versions.get_version(ctx.db, row.kind, row.version)
    if stored is None:
        raise refusal(NotFoundException, "process.err.missing")
    return row, process_versions.parsed(stored), instance_of(row)


# ------------------------------------------------------------------ administration


def definition_problem(lang: str, problem: Any) -> dict[str, Any]:
    """A problem of a checked definition for the page: where (the line, or the field's dotted path in
    the file) and what, in ``lang`` (``processcheck.<code>``, else the list check's or pydantic's words)."""
    if problem.line is not None:
        where = translate(lang, "listcheck.where.line", line=problem.line, column=problem.column or 0)
    elif problem.field:
        where = problem.field
    else:
        where = translate(lang, "listcheck.where.file")
    key = next((k for k in (f"processcheck.{problem.code}", f"listcheck.{problem.code}", f"invalid.{problem.code}")
                if problem.code and has_key(k)), None)
    what: Markup | str | None = None
    try:  # the file's own words (states, tasks, allowed values) shown as code
        what = with_codes(lang, key, **problem.params) if key else None
    except (KeyError, IndexError):
        pass
    if what is None:
        what = problem.message if lang == "en" else translate(lang, "invalid.invalid")
    return {"where": where, "what": what}


class AdminProcessPages(Controller):
    """Process definitions, for administrators: versions by kind, upload with check, dry run and
    diff, activation. Every change audited with its actor."""

    path = "/admin/processes"
    guards = [admins]

    @get("/")
    async def overview(self, ctx: AppContext, user: CurrentUser, request: Request,
                       msg: str | None = None) -> Response[Any]:
        """Each kind's versions (the active one marked) and the upload form."""
        await process_versions.ensure_shipped(ctx.db)
        versions = sorted(await process_versions.list_versions(ctx.db), key=lambda r: (r.kind, r.uploaded_at))
        return Template("admin_processes.html", context={
            "user": user, "versions": versions, "msg": msg if msg == "admin.processes.activated" else None})

    @post("/upload", status_code=200)
    async def upload(self, ctx: AppContext, user: CurrentUser, request: Request,
                     data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
                     ) -> Response[Any]:
        """Check an uploaded definition; when valid and its dry run ends, store it (inactive) and show
        the dry run and what changed against its kind's active version."""
        upload = data.get("file")
        if not isinstance(upload, UploadFile):
            return Redirect("/admin/processes", status_code=303)
        result = check_content(await upload.read(MAX_DEFINITION_BYTES + 1))
        lang = _lang(request)
        context: dict[str, Any] = {"user": user, "filename": upload.filename, "run": None, "diff": None,
                                   "stored": None, "refused": None,
                                   "problems": [definition_problem(lang, p) for p in result.problems]}
        if result.parsed is not None:
            context["run"] = run = dry_run(result.parsed)
            if run.final is not None:
                active = await process_versions.PROCESSES.active(ctx.db, result.parsed.kind)
                try:
                    context["stored"] = await store_checked(ctx.db, result, user.username, now=False)
                except ValueError:
                    context["refused"] = with_codes(lang, "admin.processes.exists", kind=result.parsed.kind,
                                                    version=result.parsed.version)
                if active is not None and active.version != result.parsed.version:
                    context["diff"] = diff_lines(process_versions.parsed(active), result.parsed)
        ok = context["stored"] is not None
        if result.parsed is not None:
            context["pt"] = ProcessText(lang, result.parsed, catalogues_of(result.parsed))
        return Template("admin_processes_check.html", context=context, status_code=200 if ok else 400)

    @post("/{kind:str}/{version:str}/activate", status_code=303)
    async def activate(self, ctx: AppContext, user: CurrentUser, request: Request, kind: str,
                       version: str) -> Redirect:
        """Activate a stored version (new instances start on it; running ones keep theirs)."""
        try:
            await process_versions.activate_stored(ctx.db, kind[:40], version[:40], user.username)
        except LookupError:
            raise refusal(NotFoundException, "process.err.kind") from None
        return Redirect("/admin/processes?msg=admin.processes.activated", status_code=303)


PROCESS_CONTROLLERS = [ProcessPages, RequesterProcessPages, AdminProcessPages]
