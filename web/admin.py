"""Administration pages: the responsibility list (versions, upload with check and dry run,
activation, diff). Administrators only; every change is audited with its actor."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from rules.diff import diff_lists
from rules.responsibility_list import Problem
from store import rule_lists
from web.access import admins
from web.admin_keys import ADMIN_KEY_CONTROLLERS
from web.admin_org import ADMIN_ORG_CONTROLLERS
from web.admin_webhooks import ADMIN_WEBHOOK_CONTROLLERS
from web.auth import CurrentUser
from web.context import AppContext
from web.i18n import language_of, translate
from wulian.rule_admin import MAX_LIST_BYTES, activate, check_content, dry_run
from wulian.rule_registry import parse_list

#: The refusals the overview shows (``?error=<key>``).
_ERRORS = ("admin.rules.err.choose_file", "admin.rules.err.unknown_version")


class AdminRulesPages(Controller):
    """The responsibility list, for administrators."""

    path = "/admin/rules"
    guards = [admins]  # every route: administrators only (web/access.py)

    @get("/")
    async def overview(self, ctx: AppContext, user: CurrentUser, request: Request, msg: str | None = None,
                       error: str | None = None) -> Response[Any]:
        """Active version, all versions, upload form, diff form."""
        engine = await ctx.engine()  # first: stores the shipped list as version one if none is stored
        versions = await rule_lists.list_versions(ctx.db)
        active = next((v for v in versions if v.active), None)
        return Template("admin_rules.html", context={
            "user": user, "versions": versions, "active": active, "lst": engine.list, "msg": msg,
            # Only this page's own refusals (a text from the query string is never shown).
            "error": translate(language_of(request.cookies), error) if error in _ERRORS else None,
        })

    @post("/upload", status_code=200)
    async def upload(
        self, ctx: AppContext, user: CurrentUser, request: Request,
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response[Any]:
        """Check an uploaded list; when valid store it (inactive) and show what would route differently."""
        upload = data.get("file")
        if not isinstance(upload, UploadFile):
            return Redirect("/admin/rules?error=admin.rules.err.choose_file", status_code=303)
        content = await upload.read(MAX_LIST_BYTES + 1)
        result = await check_content(ctx.db, content)
        context: dict[str, Any] = {"user": user, "filename": upload.filename, "problems": result.problems,
                                   "changes": [], "checked": 0, "stored": None, "diff": None}
        if result.parsed is not None:
            try:
                context["stored"] = await activate(ctx.db, result, user.username, now=False)
            except ValueError as exc:
                version = result.parsed.version
                context["problems"] = [Problem(f"version: {exc}", str(exc), "version_exists", {"version": version},
                                               field="version")]
                return Template("admin_rules_check.html", context=context, status_code=400)
            context["checked"], context["changes"] = await dry_run(ctx.db, result.parsed)
            active = await rule_lists.active_version(ctx.db)
            if active is not None:
                context["diff"] = diff_lists(parse_list(active.content), result.parsed)
        status = 200 if result.parsed is not None else 400
        return Template("admin_rules_check.html", context=context, status_code=status)

    @post("/{version:str}/activate", status_code=303)
    async def activate_version(self, ctx: AppContext, user: CurrentUser, request: Request, version: str) -> Redirect:
        """Activate a stored version (new events route with it; events in flight keep theirs)."""
        try:
            await rule_lists.activate_stored(ctx.db, version, user.username)
        except LookupError:
            return Redirect("/admin/rules?error=admin.rules.err.unknown_version", status_code=303)
        ctx.engines.refresh()
        return Redirect("/admin/rules?msg=msg.activated", status_code=303)

    @get("/diff")
    async def diff(self, ctx: AppContext, user: CurrentUser, request: Request, old: str, new: str) -> Response[Any]:
        """The changes between two stored versions."""
        rows = [await rule_lists.get_version(ctx.db, v) for v in (old, new)]
        if rows[0] is None or rows[1] is None:
            return Redirect("/admin/rules?error=admin.rules.err.unknown_version", status_code=303)
        diff = diff_lists(parse_list(rows[0].content), parse_list(rows[1].content))
        return Template("admin_rules_diff.html", context={"user": user, "diff": diff})


ADMIN_CONTROLLERS = [AdminRulesPages, *ADMIN_ORG_CONTROLLERS, *ADMIN_KEY_CONTROLLERS, *ADMIN_WEBHOOK_CONTROLLERS]
