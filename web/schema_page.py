"""What ``/schema`` serves: the OpenAPI document as JSON and YAML, and a page listing the operations.

Litestar's own documentation UIs (Redoc, Swagger, RapiDoc, Elements, Scalar) load their scripts
and styles from a CDN and start with inline scripts: nothing may be downloaded at run time here and
the Content-Security-Policy (``web/headers.py``) refuses inline scripts. So ``/schema`` is a page of
ours, rendered on the server in the site's layout: every operation (method, path, summary) with
links to ``/schema/openapi.json`` and ``/schema/openapi.yaml``, which tools (schemathesis, code
generators, a Swagger UI run elsewhere) read. Other paths under ``/schema`` answer 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.enums import MediaType
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, YamlRenderPlugin

if TYPE_CHECKING:
    from litestar.connection import Request

SCHEMA_PATH = "/schema"
_METHODS = ("get", "post", "put", "patch", "delete")


def operations(schema: dict[str, Any]) -> list[dict[str, str]]:
    """The operations of an OpenAPI document, by path then method."""
    found = []
    for path, item in sorted(schema.get("paths", {}).items()):
        for method in _METHODS:
            operation = item.get(method)
            if operation is not None:
                # The handler's docstring (its first paragraph) says more than the generated summary.
                description = " ".join((operation.get("description") or "").strip().split("\n\n")[0].split())
                found.append({"method": method.upper(), "path": path,
                              "summary": description or operation.get("summary") or ""})
    return found


class SchemaIndexPlugin(OpenAPIRenderPlugin):
    """``/schema``: the operations as an HTML page in the site's layout (no script at all)."""

    def __init__(self) -> None:
        super().__init__(path="/", media_type=MediaType.HTML, favicon="", style="")

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        """The page, from ``templates/schema.html``."""
        template = request.app.template_engine.get_template("schema.html")  # type: ignore[union-attr]
        return template.render(
            request=request, ops=operations(openapi_schema),
            title=openapi_schema.get("info", {}).get("title", ""),
            version=openapi_schema.get("info", {}).get("version", ""),
            json_url=f"{SCHEMA_PATH}/openapi.json", yaml_url=f"{SCHEMA_PATH}/openapi.yaml",
        ).encode()


def schema_plugins() -> list[OpenAPIRenderPlugin]:
    """The render plugins of the OpenAPI config: the page, the JSON and the YAML document."""
    return [SchemaIndexPlugin(), JsonRenderPlugin(), YamlRenderPlugin()]
