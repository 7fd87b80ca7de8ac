"""Spreadsheet exports (CSV; XLSX writers use the same cells), safe to open in Excel or WPS.

Every export goes through this module, so three rules hold for all of them:

- **No formula injection** (OWASP "CSV Injection"): a text cell that a spreadsheet would run as a
  formula — one starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, also after
  leading spaces — gets a ``'`` in front, so it shows as the text it is. A reporter called
  ``=1+2`` or a description ``=HYPERLINK(...)`` comes out as ``'=1+2``. Numbers are left alone (a
  negative number is no formula). An XLSX writer must pass its strings through :func:`cell` as well
  (openpyxl, for one, stores any string starting with ``=`` as a formula).
- **A UTF-8 byte order mark** starts every CSV file: without it, Excel on a Chinese Windows reads
  the file as GBK and shows Chinese text garbled.
- **Local time**: timestamps are written in the city's time zone (``rules.worktime.CITY_TZ``,
  Asia/Shanghai), to the second, as ``YYYY-MM-DD HH:MM:SS`` (which spreadsheets read as a date and
  time); the header says which zone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from litestar import Response

from rules.worktime import CITY_TZ

#: What makes a spreadsheet read a cell as a formula (OWASP): =, +, -, @, tab, carriage return.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Excel opens a UTF-8 CSV correctly only when it starts with this.
BOM = "\ufeff"
#: The zone of the timestamps, as written in headers.
TIME_ZONE_NAME = "Asia/Shanghai"


def cell(value: Any) -> Any:
    """``value`` as a spreadsheet cell: ``None`` becomes empty, a datetime local time (:func:`local_time`),
    a text that would run as a formula gets a leading ``'``; numbers and other texts are unchanged."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return local_time(value)
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS) or value.lstrip(" ").startswith(FORMULA_STARTS):
        return "'" + value
    return value


def local_time(moment: datetime | None) -> str:
    """A timestamp in the city's time zone to the second (naive values are UTC, as the store keeps them)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M:%S")


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV file: the byte order mark, ``header``, then ``rows`` with every value made a safe cell."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow([cell(h) for h in header])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue()


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response[str]:
    """A CSV download named ``filename`` (only letters, digits, ``.``, ``-`` and ``_`` are kept in it)."""
    safe_name = "".join(c for c in filename if c.isascii() and (c.isalnum() or c in ".-_")) or "export.csv"
    return Response(csv_text(header, rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{safe_name}"'})
