"""The Litestar application factory: ``uvicorn web.app:create_app --factory``."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from rules.worktime import CITY_TZ
from store.db import Database
from web import labels
from web.access import LoginRequired, provide_optional_user, provide_user, resolved_user
from web.admin import ADMIN_CONTROLLERS
from web.api import API_CONTROLLERS
from web.api_subscriptions import SubscriptionApi
from web.assessment_pages import ASSESSMENT_CONTROLLERS
from web.commands import CommandError
from web.console_api import CONSOLE_CONTROLLERS
from web.context import AppContext
from web.dashboard import DASHBOARD_CONTROLLERS
from web.errors import error_code, key_of, reason_text, status_text
from web.event_search import SEARCH_CONTROLLERS
from web.guards import GuardedRequest, refuse_nul_in_url
from web.headers import security_headers
from web.health import HealthController, Readiness
from web.i18n import LANGUAGES, language_of, translate
from web.inbox import INBOX_CONTROLLERS
from web.locate import LOCATE_CONTROLLERS
from web.lockouts import LOCKOUT_CONTROLLERS
from web.metrics import MetricsController, RequestMetrics, count_unmatched
from web.open311 import OPEN311_CONTROLLERS
from web.openapi import complete_schema
from web.pages import PAGE_CONTROLLERS
from web.photos import PHOTO_CONTROLLERS
from web.process_pages import PROCESS_CONTROLLERS
from web.reports import REPORT_CONTROLLERS
from web.schema_page import SCHEMA_PATH, schema_plugins
from web.stats import STATS_CONTROLLERS
from web.track_public import TRACK_PUBLIC_CONTROLLERS
from web.unit_users import UNIT_USER_CONTROLLERS
from workflows import policy
from wulian.logs import configure_logging
from wulian.settings import Settings, get_settings

HERE = Path(__file__).parent


def _t(context: Mapping[str, Any], key: str, **values: Any) -> str:
    """Template helper: ``{{ t('inbox.title') }}`` in the visitor's language."""
    request = context.get("request")
    lang = language_of(request.cookies if request is not None else None)
    return translate(lang, key, **values)


def _lang(context: Mapping[str, Any]) -> str:
    request = context.get("request")
    return language_of(request.cookies if request is not None else None)


def _local_time(value: str | datetime | None) -> str:
    """A timestamp in the city's time zone, to the minute (``—`` when absent)."""
    if not value:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M")


def _configure_templates(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters["dt"] = _local_time
    engine.register_template_callable("t", _t)
    engine.register_template_callable("lang", _lang)
    engine.engine.globals["LANGUAGES"] = LANGUAGES
    engine.engine.globals["rules"] = policy  # the limits forms show (maxlength, min, max): workflows.policy
    # Codes shown as words in the visitor's language (web/labels.py): {{ cat_name(code, name_zh) }} ...
    for name, helper in _LABELS.items():
        engine.register_template_callable(name, _in_lang(helper))
    engine.engine.globals["has_key"] = labels.has_key
    engine.engine.globals["FREE_TEXT_FIELDS"] = labels.FREE_TEXT_FIELDS


_LABELS: dict[str, Any] = {
    "label": labels.label, "cat_name": labels.category_name, "rule_label": labels.rule_label,
    "reason_text": labels.reason_text, "deadlines_text": labels.deadlines_text, "actor_text": labels.actor_text,
    "note_text": labels.note_text, "warning_note": labels.warning_note, "list_problem": labels.list_problem,
    "list_field": labels.list_field, "diff_value": labels.diff_value,
}


def _in_lang(helper: Any) -> Any:
    """A template callable that calls ``helper`` with the visitor's language first."""

    def call(context: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        return helper(_lang(context), *args, **kwargs)

    return call


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api") or request.url.path in ("/healthz", "/readyz")


def _error_response(request: Request, status: int, reason: str, headers: dict[str, str] | None = None,
                    key: str | None = None, values: dict[str, Any] | None = None,
                    text: str | None = None) -> Response[Any]:
    """The API answers ``{status_code, code, detail}`` (English); a page is the error page in the
    visitor's language: the meaning of the status and the keyed reason (never English on a Chinese
    page: a reason without a key shows there only as the status's meaning)."""
    if _wants_json(request):
        return Response({"status_code": status, "code": error_code(status, key), "detail": reason},
                        status_code=status, media_type=MediaType.JSON, headers=headers)
    lang = language_of(request.cookies)
    heading = status_text(lang, status)
    shown = text or reason_text(lang, status, key, values or {}, reason)
    return Template("error.html", context={"status": status, "heading": heading, "user": resolved_user(request),
                                           "reason": "" if shown == heading else shown},
                    status_code=status, headers=headers)


def _command_error(request: Request, exc: CommandError) -> Response[Any]:
    # A refusal may carry headers (a photo upload's Retry-After). A page gives the reason in its
    # language, the parameters that are codes by their names (CommandError.text); the API answers the
    # English reason and the refusal's code.
    key, values = key_of(exc)
    text = exc.text(language_of(request.cookies)) if key else None
    return _error_response(request, exc.status, exc.reason, getattr(exc, "headers", None) or None, key, values,
                           text)


def _http_error(request: Request, exc: HTTPException) -> Response[Any]:
    key, values = key_of(exc)
    if isinstance(exc, LoginRequired) and not _wants_json(request):
        # A page without a login (web/access.py guards): to the login form.
        return Redirect("/login", status_code=302 if request.method == "GET" else 303)
    if _wants_json(request):
        body: dict[str, Any] = {"status_code": exc.status_code, "code": error_code(exc.status_code, key),
                                "detail": exc.detail}
        if exc.extra:
            body["extra"] = exc.extra
        return Response(body, status_code=exc.status_code, media_type=MediaType.JSON,
                        headers=exc.headers or None)
    return _error_response(request, exc.status_code, str(exc.detail), exc.headers or None, key, values)


def _internal_error(request: Request, exc: Exception) -> Response[Any]:
    # Never show a stack trace to a user; the log has it.
    request.logger.exception("unhandled error on %s", request.url.path)
    return _error_response(request, 500, translate("en", "error.internal"), key="error.internal")


def _undecodable(request: Request, exc: UnicodeDecodeError) -> Response[Any]:
    """A multipart form whose text field is not UTF-8 (Litestar's parser decodes it and raises): the
    client's fault, a 400. Any other UnicodeDecodeError is a bug of ours and stays a 500."""
    frames = traceback.extract_tb(exc.__traceback__)
    if any(frame.filename.endswith(("litestar/_multipart.py", "multipart/multipart.py")) for frame in frames):
        return _error_response(request, 400, translate("en", "error.not_utf8"), key="error.not_utf8")
    return _internal_error(request, exc)


def create_app(settings: Settings | None = None, ctx: AppContext | None = None) -> Litestar:
    """Build the app. Tests pass their own context (store, Temporal client)."""
    settings = settings or get_settings()
    context = ctx or AppContext(settings=settings, db=Database(settings.db_url))

    async def _startup() -> None:
        await context.db.upgrade()

    async def _shutdown() -> None:
        await context.db.dispose()

    def _provide_ctx() -> AppContext:
        return context

    app = Litestar(
        route_handlers=[
            HealthController,
            MetricsController,
            *API_CONTROLLERS,
            *CONSOLE_CONTROLLERS,
            *PHOTO_CONTROLLERS,
            *LOCATE_CONTROLLERS,
            *TRACK_PUBLIC_CONTROLLERS,
            *PAGE_CONTROLLERS,
            *INBOX_CONTROLLERS,
            *ADMIN_CONTROLLERS,
            *LOCKOUT_CONTROLLERS,
            *UNIT_USER_CONTROLLERS,
            *PROCESS_CONTROLLERS,
            *SEARCH_CONTROLLERS,
            *STATS_CONTROLLERS,
            *ASSESSMENT_CONTROLLERS,
            *DASHBOARD_CONTROLLERS,
            *REPORT_CONTROLLERS,
            *OPEN311_CONTROLLERS,
            SubscriptionApi,
            create_static_files_router(path="/static", directories=[HERE / "static"]),
        ],
        # Guards (web/access.py) find the context on the app's state; handlers take it as ``ctx``, the
        # logged-in user as ``user`` (admitted by the route's guard) or ``viewer`` (maybe nobody).
        state=State({"ctx": context, "readiness": Readiness(context)}),
        dependencies={"ctx": Provide(_provide_ctx, sync_to_thread=False), "user": Provide(provide_user),
                      "viewer": Provide(provide_optional_user)},
        # No input ends in a 500: JSON nesting and NUL characters are refused before decoding (web/guards.py).
        request_class=GuardedRequest,
        before_request=refuse_nul_in_url,
        # Requests counted and timed by route template, their log lines scoped (web/metrics.py).
        middleware=[RequestMetrics()],
        on_startup=[_startup],
        on_shutdown=[_shutdown],
        template_config=TemplateConfig(
            directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_configure_templates
        ),
        csrf_config=CSRFConfig(
            secret=settings.secret(),
            cookie_httponly=False,
            # Open311 takes form posts from other systems, authenticated by their API key, never a cookie.
            exclude=["^/api/", "^/healthz$", "^/readyz$", "^/metrics$", f"^{SCHEMA_PATH}", "^/open311/"],
        ),
        openapi_config=OpenAPIConfig(title="Wulian API", version="0.1.0", path=SCHEMA_PATH,
                                     render_plugins=schema_plugins(), use_handler_docstrings=True),
        exception_handlers={
            CommandError: _command_error,
            HTTPException: _http_error,
            UnicodeDecodeError: _undecodable,
            Exception: _internal_error,
        },
        # Every answer, errors and static files too; answers no route matched are counted here.
        before_send=[security_headers(settings), count_unmatched],
        debug=False,
    )
    complete_schema(app.openapi_schema)  # what every route answers besides its success (web/openapi.py)
    return app


def serve() -> Litestar:
    """The web process's app: ``uvicorn web.app:serve --factory`` (the launcher's command). Logs
    of the process, uvicorn's and Litestar's included, become JSON lines (``wulian/logs.py``)."""
    settings = get_settings()
    app = create_app(settings)
    configure_logging(settings, "web")  # after the app: Litestar configures its logger when built
    return app
