"""What the OpenAPI description says each route answers, completed in one place.

Litestar describes a route's success answer from its handler's return type and adds a 400 for input
validation. What else a route may answer is the same everywhere and is declared here, so that the
description is exact (schemathesis checks every answer against it, tests/test_schemathesis.py):

- JSON API routes (``/api/...``, ``/healthz``, ``/readyz``): the refusals of ``web/app.py``'s error handlers
  (400, 401, 403, 404, 409, 413, 429 with ``Retry-After``, 503), each with the error body
  ``{"status_code", "detail", "extra"?}``; ``POST /api/events`` also 202 (accepted, not yet routed),
  422 (an ``Idempotency-Key`` used for another body) and ``Idempotent-Replayed`` on a repeated answer.
- Pages: HTML (``text/html``), never JSON: the page, the redirects (302 after a GET, 303 after a
  form), and the same refusals as an HTML error page.
- Files: the CSV exports as ``text/csv``, the XLSX exports as the spreadsheet type, photos as JPEG,
  PNG or WebP.
- The event search's query parameters (read by one parser, ``store.event_search.parse_search``), and
  the dashboard's (``web.stats.parse_period``).
"""

from __future__ import annotations

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
)

from web.dashboard import DASHBOARD_PATHS
from web.dashboard import PARAMETERS as DASHBOARD_PARAMETERS
from web.event_search import PARAMETERS as SEARCH_PARAMETERS
from web.event_search import SEARCH_PATHS

#: Refusals every route may answer (the reasons are in web/app.py and web/commands.py).
REFUSALS = {
    400: "Bad input: the reason names the field",
    401: "No valid token (API) or session",
    403: "Outside your unit's scope, not your role, or a CSRF token missing",
    404: "No such resource",
    409: "The action conflicts with the case's state (the reason says why)",
    413: "The body is too large",
    429: "Too many requests: try again after Retry-After seconds",
    503: "The workflow engine or the store is unavailable for a moment",
}
ERROR_SCHEMA = "Error"
_ERROR = Schema(
    type=OpenAPIType.OBJECT,
    required=["status_code", "detail"],
    properties={
        "status_code": Schema(type=OpenAPIType.INTEGER),
        "code": Schema(type=OpenAPIType.STRING,
                       description="what was refused, for programs: e.g. cohandling_open, event_scope, not_found"),
        "detail": Schema(type=OpenAPIType.STRING, description="the reason in English"),
        "extra": Schema(),
    },
    description="A refusal: the HTTP status, a machine-readable code and the reason",
)
_HTML = {"text/html": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))}
_RETRY_AFTER: dict[str, OpenAPIHeader | Reference] = {
    "Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), required=False,
                                 description="seconds until a new attempt may succeed"),
}
_REPLAYED: dict[str, OpenAPIHeader | Reference] = {
    "Idempotent-Replayed": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING, enum=["true"]), required=False,
                                         description="the answer given before to this Idempotency-Key"),
}
_FILES = {
    ".csv": {"text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))},
    ".xlsx": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
              OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))},
    "/photos/": {t: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=None))
                 for t in ("image/jpeg", "image/png", "image/webp")},
}


def is_api(path: str) -> bool:
    """Whether ``path`` answers JSON (errors included) rather than HTML pages (as ``web/app.py``)."""
    return path.startswith("/api") or path in ("/healthz", "/readyz")


def _operations(schema: OpenAPI) -> list[tuple[str, str, Operation]]:
    found = []
    for path, item in (schema.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(item, method, None)
            if operation is not None:
                found.append((path, method, operation))
    return found


def _file_content(path: str) -> dict[str, OpenAPIMediaType] | None:
    for marker, content in _FILES.items():
        if path.endswith(marker) or (marker.startswith("/") and marker in path):
            return content
    return None


def complete_schema(schema: OpenAPI) -> OpenAPI:
    """Declare on every operation of ``schema`` what it may answer besides its success (in place)."""
    if schema.components.schemas is None:
        schema.components.schemas = {}
    schema.components.schemas[ERROR_SCHEMA] = _ERROR
    error_json = {"application/json": OpenAPIMediaType(schema=Reference(ref=f"#/components/schemas/{ERROR_SCHEMA}"))}
    for path, method, operation in _operations(schema):
        if path.startswith("/schema"):
            continue
        responses = operation.responses = dict(operation.responses or {})
        api = is_api(path)
        files = _file_content(path)
        for status, response in list(responses.items()):
            if isinstance(response, OpenAPIResponse) and status.startswith("2") and response.content is not None:
                if files is not None:
                    response.content = files
                elif not api:
                    response.content = _HTML
        if not api:
            responses.setdefault("302", OpenAPIResponse(description="To another page (e.g. /login)"))
            responses.setdefault("303", OpenAPIResponse(description="After a form: back to a page with a message"))
        if path == "/readyz":
            responses.setdefault("503", OpenAPIResponse(
                description="Not ready: the store or Temporal does not answer (the reason in the body)",
                content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))}))
        if path == "/api/events" and method == "post":
            responses.setdefault("200", OpenAPIResponse(
                description="The same source and external id were reported before: the event's id only "
                            "(duplicate); or a camera alarm joined its camera's open event: its id and "
                            "occurrences (joined)",
                content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))}))
            responses.setdefault("202", OpenAPIResponse(
                description="Accepted but not routed within the wait: the receipt code and key, state intake",
                content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))}))
            responses.setdefault("422", OpenAPIResponse(
                description="The Idempotency-Key was used for another request body within 24 hours",
                content=error_json))
            for status in ("200", "201", "202"):  # a repeated Idempotency-Key answers as the first time
                answer = responses.get(status)
                if isinstance(answer, OpenAPIResponse):
                    answer.headers = {**(answer.headers or {}), **_REPLAYED}
        if path in SEARCH_PATHS and method == "get":  # read from the query string by one parser
            operation.parameters = [
                Parameter(name=name, param_in="query", required=False, description=text,
                          schema=Schema(type=OpenAPIType.STRING))
                for name, text in SEARCH_PARAMETERS.items()
            ]
        if path in DASHBOARD_PATHS and method == "get":  # read by web.stats.parse_period
            operation.parameters = [
                Parameter(name=name, param_in="query", required=False, description=text,
                          schema=Schema(type=OpenAPIType.STRING))
                for name, text in DASHBOARD_PARAMETERS.items()
            ]
        for code, description in REFUSALS.items():
            key = str(code)
            if key in responses and code != 400:
                continue  # declared by the route itself (e.g. /healthz's 503)
            responses[key] = OpenAPIResponse(
                description=description, content=error_json if api else _HTML,
                headers=dict(_RETRY_AFTER) if code in (429, 503) else None,
            )
    return schema
