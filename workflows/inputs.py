"""What a valid report is: the one definition shared by every entrance.

The JSON API (``web.schemas.EventIn``), the report page, and the workflow itself (a report started
directly with the Temporal client, the documented integration path) all ask :func:`report_problems`,
so a report refused by one entrance is refused by all of them. Pure standard library: it runs inside
the workflow sandbox.

A problem names its field and a code (``too_long``, ``blank``, ...) with the limit, so the web can
say it in the user's language (``input.<code>`` in the catalogues) and the workflow can fail with a
readable English message.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import phonenumbers

from workflows.types import SOURCES, EventReport, Location, Reporter

MAX_DESCRIPTION = 2000
MAX_ADDRESS = 300
MAX_CATEGORY = 32
MAX_GRID = 32
MAX_REPORTER_NAME = 50
MAX_PHONE = 20
MAX_EXTERNAL_ID = 128
MAX_CAMERA_ID = 64
MIN_SEVERITY, MAX_SEVERITY = 1, 6
#: A free-text comment, reason or result of an action (ratings, requests, completions).
MAX_COMMENT = 2000

CODE_PATTERN = r"^[A-Za-z0-9\-]*$"
PHONE_PATTERN = r"^[0-9+\- ()]*$"
EXTERNAL_ID_PATTERN = r"^[\w.:\-]+$"
CAMERA_ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"
#: Receipt codes: 10 digits of Crockford's base 32 (no I, L, O, U), drawn at random.
RECEIPT_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{10}$"
#: A tracking key's hash: sha256, hex.
KEY_HASH_PATTERN = r"^([0-9a-f]{64})?$"
NONCE_PATTERN = r"^[A-Za-z0-9_\-]{0,64}$"
#: An integration's name (API keys): letters, digits, ``_ . -``; empty when the report came without a key.
INTEGRATION_PATTERN = r"^[A-Za-z0-9_.\-]{0,64}$"
MAX_INTEGRATION = 64
#: A media link of a report: http or https, no spaces or control characters.
MEDIA_URL_PATTERN = r"^(https?://[^\s<>\"]+)?$"
MAX_MEDIA_URL = 500

_CODE = re.compile(CODE_PATTERN)
_PHONE = re.compile(PHONE_PATTERN)
_EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN)
_CAMERA = re.compile(CAMERA_ID_PATTERN)
_RECEIPT = re.compile(RECEIPT_PATTERN)
_KEY_HASH = re.compile(KEY_HASH_PATTERN)
_NONCE = re.compile(NONCE_PATTERN)
_INTEGRATION = re.compile(INTEGRATION_PATTERN)
_MEDIA_URL = re.compile(MEDIA_URL_PATTERN, re.IGNORECASE)
# C0 controls other than tab, newline and carriage return, DEL, and lone surrogates (which no
# database can store): refused in every text.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class Problem:
    """One reason an input is refused: its field (dotted path), a code and the limit it broke."""

    field: str
    code: str  # required | blank | too_long | forbidden_char | pattern | range | pair | choice | type | unknown | phone
    #           | incomplete (a checklist of a process form)
    limit: str = ""

    @property
    def message(self) -> str:
        """The problem in English (the workflow's error, logs); the web translates ``input.<code>``."""
        texts = {
            "required": "is required",
            "blank": "must not be blank (only spaces or invisible characters)",
            "too_long": f"is longer than {self.limit} characters",
            "forbidden_char": "contains a control character (such as NUL) that is not allowed",
            "pattern": "has characters that are not allowed",
            "range": f"must be between {self.limit}",
            "pair": "lat and lon must be given together",
            "choice": f"must be one of {self.limit}",
            "type": f"must be {self.limit}",
            "unknown": "is not a known field",
            "phone": "is not a mainland China mobile or landline number",
            "incomplete": f"has items not ticked: {self.limit}",
        }
        return f"{self.field}: {texts.get(self.code, self.code)}"


class InvalidInput(ValueError):
    """Raised by :func:`checked_report`: the problems of a report, as one readable message."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("invalid report: " + "; ".join(p.message for p in problems))
        self.problems = problems


def is_blank(text: str) -> bool:
    """Whether ``text`` holds nothing visible: only whitespace and invisible format characters
    (zero-width space, joiners, direction marks, BOM, soft hyphen)."""
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in text)


def text_problem(field: str, value: object, *, max_len: int, required: bool = False) -> Problem | None:
    """The problem of one free-text value, if any: type, forbidden characters, length, blankness."""
    if not isinstance(value, str):
        return Problem(field, "type", "text")
    if _FORBIDDEN.search(value):
        return Problem(field, "forbidden_char")
    if len(value) > max_len:
        return Problem(field, "too_long", str(max_len))
    if required and not value:
        return Problem(field, "required")
    if required and is_blank(value):
        return Problem(field, "blank")
    return None


def _pattern(field: str, value: str, pattern: re.Pattern[str], max_len: int) -> Problem | None:
    found = text_problem(field, value, max_len=max_len)
    if found is not None:
        return found
    return None if pattern.match(value) else Problem(field, "pattern")


#: Number types a reporter may leave: mobiles and landlines (not short codes, premium or toll-free).
_PHONE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


def phone_problem(field: str, value: object) -> Problem | None:
    """The problem of a phone number, if any: empty is fine (no phone left); otherwise a mainland China
    mobile (``13800000000``, ``+86 138 0000 0000``) or landline with its area code (``0570-1234567``),
    checked with Google's libphonenumber data (``phonenumbers``, pure: it runs in the sandbox too)."""
    if value == "":
        return None
    found = _pattern(field, value, _PHONE, MAX_PHONE) if isinstance(value, str) else Problem(field, "type", "text")
    if found is not None:
        return found
    assert isinstance(value, str)
    try:
        number = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        return Problem(field, "phone")
    if (number.country_code != 86 or not phonenumbers.is_valid_number(number)
            or phonenumbers.number_type(number) not in _PHONE_TYPES):
        return Problem(field, "phone")
    return None


def _coordinate(field: str, value: object, bound: int) -> Problem | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return Problem(field, "type", "a number")
    return None if -bound <= value <= bound else Problem(field, "range", f"-{bound} and {bound}")


def report_problems(report: EventReport) -> list[Problem]:
    """Every problem of ``report`` (empty: valid). The same rules at every entrance."""
    found: list[Problem | None] = [
        _pattern("category", report.category, _CODE, MAX_CATEGORY),
        text_problem("description", report.description, max_len=MAX_DESCRIPTION, required=True),
    ]
    loc = report.location
    if not isinstance(loc, Location):
        found.append(Problem("location", "type", "an object"))
    else:
        if loc.grid is not None:
            found.append(_pattern("location.grid", loc.grid, _CODE, MAX_GRID))
        found += [_coordinate("location.lat", loc.lat, 90), _coordinate("location.lon", loc.lon, 180)]
        if (loc.lat is None) != (loc.lon is None):
            found.append(Problem("location", "pair"))
        if loc.address is not None:
            found.append(text_problem("location.address", loc.address, max_len=MAX_ADDRESS))
    who = report.reporter
    if not isinstance(who, Reporter):
        found.append(Problem("reporter", "type", "an object"))
    else:
        found += [text_problem("reporter.name", who.name, max_len=MAX_REPORTER_NAME),
                  phone_problem("reporter.phone", who.phone)]
    if report.source not in SOURCES:
        found.append(Problem("source", "choice", ", ".join(SOURCES)))
    if report.external_id is not None:
        found.append(_pattern("external_id", report.external_id, _EXTERNAL_ID, MAX_EXTERNAL_ID))
    severity = report.severity
    if isinstance(severity, bool) or not isinstance(severity, int):
        found.append(Problem("severity", "type", "a whole number"))
    elif not MIN_SEVERITY <= severity <= MAX_SEVERITY:
        found.append(Problem("severity", "range", f"{MIN_SEVERITY} and {MAX_SEVERITY}"))
    if not isinstance(report.needs_enforcement, bool):
        found.append(Problem("needs_enforcement", "type", "true or false"))
    if report.receipt_code and not (isinstance(report.receipt_code, str) and _RECEIPT.match(report.receipt_code)):
        found.append(Problem("receipt_code", "pattern"))
    found.append(_pattern("tracking_key_hash", report.tracking_key_hash, _KEY_HASH, 64))
    found.append(_pattern("tracking_nonce", report.tracking_nonce, _NONCE, 64))
    found.append(_pattern("integration", report.integration, _INTEGRATION, MAX_INTEGRATION))
    found.append(_pattern("media_url", report.media_url, _MEDIA_URL, MAX_MEDIA_URL))
    camera = getattr(report, "camera_id", None)
    if camera is not None:
        found.append(_pattern("camera_id", camera, _CAMERA, MAX_CAMERA_ID))
        if report.source != "camera":
            found.append(Problem("camera_id", "choice", "camera (the source of a camera alarm)"))
    return [p for p in found if p is not None]


def camera_of(report: EventReport) -> str | None:
    """The camera of a camera alarm (``source`` ``camera``): its ``camera_id``, else the part of its
    ``external_id`` before the first ``:`` (``CAM-0042:...``); None for any other report."""
    if report.source != "camera":
        return None
    if report.camera_id:
        return report.camera_id
    if report.external_id and ":" in report.external_id:
        prefix = report.external_id.split(":", 1)[0]
        return prefix if prefix and _CAMERA.match(prefix) else None
    return None


def normalised(report: EventReport) -> EventReport:
    """``report`` with surrounding whitespace removed from its texts (in place; returned for chaining)."""
    report.category = report.category.strip() if isinstance(report.category, str) else report.category
    if isinstance(report.description, str):
        report.description = report.description.strip()
    loc, who = report.location, report.reporter
    if isinstance(loc, Location):
        loc.grid = (loc.grid.strip() or None) if isinstance(loc.grid, str) else loc.grid
        loc.address = (loc.address.strip() or None) if isinstance(loc.address, str) else loc.address
    if isinstance(who, Reporter):
        who.name = who.name.strip() if isinstance(who.name, str) else who.name
        who.phone = who.phone.strip() if isinstance(who.phone, str) else who.phone
    return report


def report_from_mapping(raw: object) -> tuple[EventReport | None, list[Problem]]:
    """A report from a JSON object whose types did not fit :class:`EventReport` (the workflow's input
    converter fell back to a plain mapping): the report, or the problems that say what is wrong."""
    if not isinstance(raw, Mapping):
        return None, [Problem("report", "type", "a JSON object")]
    problems: list[Problem] = []
    known = {f.name for f in fields(EventReport)}
    problems += [Problem(str(key), "unknown") for key in raw if key not in known]
    values: dict[str, Any] = {k: v for k, v in raw.items() if k in known}
    for name, cls in (("location", Location), ("reporter", Reporter)):
        part = values.get(name, {})
        if part is None:
            part = {}
        if not isinstance(part, Mapping):
            problems.append(Problem(name, "type", "an object"))
            values.pop(name, None)
            continue
        inner = {f.name for f in fields(cls)}
        problems += [Problem(f"{name}.{key}", "unknown") for key in part if key not in inner]
        values[name] = cls(**{k: v for k, v in part.items() if k in inner})
    if problems:
        return None, problems
    report = EventReport(**values)
    for name in ("category", "description", "source", "tracking_key_hash", "tracking_nonce", "receipt_code",
                 "integration", "media_url"):
        if not isinstance(getattr(report, name), str):
            problems.append(Problem(name, "type", "text"))
    for name, part in (("location", report.location), ("reporter", report.reporter)):
        for f in fields(part):
            value = getattr(part, f.name)
            if f.name in ("grid", "address", "name", "phone") and value is not None and not isinstance(value, str):
                problems.append(Problem(f"{name}.{f.name}", "type", "text"))
    if report.external_id is not None and not isinstance(report.external_id, str):
        problems.append(Problem("external_id", "type", "text"))
    if report.camera_id is not None and not isinstance(report.camera_id, str):
        problems.append(Problem("camera_id", "type", "text"))
    return (None, problems) if problems else (report, [])


def checked_report(raw: EventReport | Mapping[str, Any]) -> EventReport:
    """The report, normalised, or :class:`InvalidInput` with every problem (the workflow's gate)."""
    if isinstance(raw, EventReport):
        report: EventReport | None = raw
        problems: list[Problem] = []
    else:
        report, problems = report_from_mapping(raw)
    if report is not None:
        problems = report_problems(normalised(report))
    if problems or report is None:
        raise InvalidInput(problems)
    return report
