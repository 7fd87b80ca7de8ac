"""Open311 GeoReport v2 answers as JSON or XML (the path's suffix), UTF-8, from one plain structure.

Every answer is built once as Python data (lists of dicts of strings, numbers, booleans, None, and
nested lists) and rendered here, so the XML carries the same fields as the JSON:

- a list of items becomes ``<root><item>…</item>…</root>`` with the spec's element names
  (``services/service``, ``service_requests/request``, ``errors/error``, ...);
- a nested list of dicts (``attributes``, ``values``, ``endpoints``) becomes ``<attributes><attribute>``…;
  a nested list of strings (``formats``) ``<formats><format>``…;
- ``True``/``False`` are ``true``/``false``, ``None`` an empty element, numbers their decimal text.

The XML is written with ElementTree (escaping done by it, never by string concatenation).
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.etree import ElementTree as ET  # noqa: S405 - only builds XML, never parses untrusted input

from litestar import Response

#: The suffixes answered, and their media types (Litestar adds ``; charset=utf-8`` to a ``text/`` type).
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml"}

#: The element name of one entry of a nested list, by the list's name.
_ITEM_NAMES = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format",
               "service_requests": "request", "services": "service", "errors": "error"}


def split_format(name: str) -> tuple[str, str | None]:
    """``"services.json"`` → ``("services", "json")``; an unknown or missing suffix gives None."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix not in FORMATS:
        return name, None
    return stem, suffix


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    # The only characters a stored text can hold that XML 1.0 cannot (the one definition of a valid
    # text refuses controls and surrogates already): one of them would make the whole answer unreadable.
    return _NOT_XML.sub("\ufffd", str(value))


_NOT_XML = re.compile("[\ufffe\uffff]")


def _fill(element: ET.Element, name: str, value: Any) -> None:
    child = ET.SubElement(element, name)
    if isinstance(value, list):
        item_name = _ITEM_NAMES.get(name, "item")
        for entry in value:
            if isinstance(entry, dict):
                _fill_dict(ET.SubElement(child, item_name), entry)
            else:
                ET.SubElement(child, item_name).text = _text(entry)
    elif isinstance(value, dict):
        _fill_dict(child, value)
    else:
        child.text = _text(value)


def _fill_dict(element: ET.Element, data: dict[str, Any]) -> None:
    for key, value in data.items():
        _fill(element, key, value)


def to_xml(root: str, data: list[dict[str, Any]] | dict[str, Any]) -> bytes:
    """``data`` as an XML document whose root is ``root`` (a list: one ``_ITEM_NAMES[root]`` per entry)."""
    element = ET.Element(root)
    if isinstance(data, list):
        item_name = _ITEM_NAMES.get(root, "item")
        for entry in data:
            _fill_dict(ET.SubElement(element, item_name), entry)
    else:
        _fill_dict(element, data)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="utf-8", xml_declaration=False)


def render(fmt: str, root: str, data: list[dict[str, Any]] | dict[str, Any], status: int = 200,
           headers: dict[str, str] | None = None) -> Response[bytes]:
    """The answer in ``fmt`` (``json`` or ``xml``); ``root`` names the XML document's root element."""
    if fmt == "xml":
        body = to_xml(root, data)
    else:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type=FORMATS.get(fmt, FORMATS["json"]), headers=headers)


def errors(fmt: str, status: int, description: str, headers: dict[str, str] | None = None) -> Response[bytes]:
    """The spec's error answer: a list of ``{code, description}`` (``<errors><error>``)."""
    return render(fmt, "errors", [{"code": status, "description": description}], status, headers)
