"""Spreadsheet exports (CSV and XLSX, from the same cells), safe to open in Excel or WPS.

Every export goes through this module, so three rules hold for all of them:

- **No formula injection** (OWASP "CSV Injection"): a text cell that a spreadsheet would run as a
  formula — one starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, also after
  leading spaces — gets a ``'`` in front, so it shows as the text it is. A reporter called
  ``=1+2`` or a description ``=HYPERLINK(...)`` comes out as ``'=1+2``. Numbers are left alone (a
  negative number is no formula). An XLSX writer must pass its strings through :func:`cell` as well
  (openpyxl, for one, stores any string starting with ``=`` as a formula); :func:`xlsx_stream` does,
  and writes every text with ``write_string``, never as a formula.
- **A UTF-8 byte order mark** starts every CSV file: without it, Excel on a Chinese Windows reads
  the file as GBK and shows Chinese text garbled.
- **Local time**: timestamps are written in the city's time zone (``rules.worktime.CITY_TZ``,
  Asia/Shanghai), to the second, as ``YYYY-MM-DD HH:MM:SS`` (which spreadsheets read as a date and
  time); the header says which zone.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import xlsxwriter
from litestar import Response
from litestar.response import Stream

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


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]], preface: Iterable[Sequence[Any]] = ()) -> str:
    """A CSV file: the byte order mark, the ``preface`` lines (what the file is, if anything), ``header``,
    then ``rows`` with every value made a safe cell."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    for line in preface:
        writer.writerow([cell(v) for v in line])
    writer.writerow([cell(h) for h in header])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue()


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]],
                 preface: Iterable[Sequence[Any]] = ()) -> Response[str]:
    """A CSV download named ``filename`` (only letters, digits, ``.``, ``-`` and ``_`` are kept in it)."""
    safe_name = "".join(c for c in filename if c.isascii() and (c.isalnum() or c in ".-_")) or "export.csv"
    return Response(csv_text(header, rows, preface), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{safe_name}"'})


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Bytes of the finished XLSX file sent per chunk.
_CHUNK = 64 * 1024


def _attachment(filename: str, default: str) -> dict[str, str]:
    safe_name = "".join(c for c in filename if c.isascii() and (c.isalnum() or c in ".-_")) or default
    return {"Content-Disposition": f'attachment; filename="{safe_name}"'}


def csv_stream(filename: str, header: Sequence[str], rows: AsyncIterable[Sequence[Any]]) -> Stream:
    """A CSV download written as ``rows`` come (memory bounded by a chunk of 64 KiB): the byte order mark,
    ``header``, then every row, each value a safe :func:`cell`."""

    async def lines() -> AsyncIterator[bytes]:
        out = io.StringIO()
        writer = csv.writer(out)
        out.write(BOM)
        writer.writerow([cell(h) for h in header])
        async for row in rows:
            writer.writerow([cell(v) for v in row])
            if out.tell() >= _CHUNK:  # a chunk of lines at a time, not one message per row
                yield out.getvalue().encode("utf-8")
                out.seek(0)
                out.truncate()
        yield out.getvalue().encode("utf-8")

    return Stream(lines(), media_type="text/csv", headers=_attachment(filename, "export.csv"))


def _xlsx_writer(path: str, header: Sequence[str]) -> tuple[Any, Any]:
    # constant_memory: each row goes to a temporary file once written, so 50,000 rows cost no more
    # memory than one; strings are written inline (no shared-strings table held in memory).
    book = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False,
                                      "strings_to_urls": False, "strings_to_numbers": False})
    sheet = book.add_worksheet()
    bold = book.add_format({"bold": True})
    for column, title in enumerate(header):
        sheet.write_string(0, column, str(cell(title)), bold)
    return book, sheet


def _xlsx_rows(sheet: Any, first: int, rows: list[Sequence[Any]]) -> None:
    for offset, row in enumerate(rows):
        for column, value in enumerate(row):
            safe = cell(value)
            if isinstance(safe, bool):
                sheet.write_boolean(first + offset, column, safe)
            elif isinstance(safe, int | float):
                sheet.write_number(first + offset, column, safe)
            else:
                sheet.write_string(first + offset, column, str(safe))


async def xlsx_stream(filename: str, header: Sequence[str], rows: AsyncIterable[Sequence[Any]],
                      batch: int = 1000) -> Stream:
    """An XLSX download of ``header`` and ``rows`` (one sheet), every value a safe :func:`cell`,
    texts written as strings. Built in a temporary file in constant-memory mode (written in a
    thread, a batch of rows at a time, so the event loop is not held), then sent in chunks and
    deleted."""
    handle, path = tempfile.mkstemp(suffix=".xlsx", prefix="wulian-export-")
    os.close(handle)
    try:
        book, sheet = _xlsx_writer(path, header)
        written, pending = 1, []
        async for row in rows:
            pending.append(row)
            if len(pending) >= batch:
                await asyncio.to_thread(_xlsx_rows, sheet, written, pending)
                written, pending = written + len(pending), []
        await asyncio.to_thread(_xlsx_rows, sheet, written, pending)
        await asyncio.to_thread(book.close)
    except BaseException:
        os.unlink(path)
        raise

    async def chunks() -> AsyncIterator[bytes]:
        try:
            with open(path, "rb") as file:  # noqa: ASYNC230  (local file, 64 KiB at a time)
                while chunk := file.read(_CHUNK):
                    yield chunk
        finally:
            os.unlink(path)

    return Stream(chunks(), media_type=XLSX_MEDIA_TYPE, headers=_attachment(filename, "export.xlsx"))


@dataclass(frozen=True)
class Sheet:
    """One sheet of a small workbook: its title, a preface (what the table is), the header and the rows."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    preface: Sequence[Sequence[Any]] = ()


#: What Excel refuses in a sheet's title, and its longest title.
_SHEET_TITLE_BANNED = set("[]:*?/\\")
_SHEET_TITLE_MAX = 31


def _sheet_title(title: str, taken: set[str]) -> str:
    base = "".join(c for c in title if c not in _SHEET_TITLE_BANNED).strip("' ")[:_SHEET_TITLE_MAX] or "Sheet"
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{base[:_SHEET_TITLE_MAX - len(str(n)) - 1]} {n}"
    taken.add(name.lower())
    return name


def _write_book(path: str, sheets: Sequence[Sheet]) -> None:
    book = xlsxwriter.Workbook(path, {"strings_to_formulas": False, "strings_to_urls": False,
                                      "strings_to_numbers": False})
    bold = book.add_format({"bold": True})
    taken: set[str] = set()
    for item in sheets:
        sheet = book.add_worksheet(_sheet_title(item.title, taken))
        _xlsx_rows(sheet, 0, list(item.preface))
        first = len(item.preface) + (1 if item.preface else 0)  # an empty row after the preface
        for column, title in enumerate(item.header):
            sheet.write_string(first, column, str(cell(title)), bold)
        _xlsx_rows(sheet, first + 1, list(item.rows))
    book.close()


async def xlsx_book(filename: str, sheets: Sequence[Sheet]) -> Response[bytes]:
    """A small XLSX download of several sheets (a report's tables), every value a safe :func:`cell`,
    texts written as strings; built in memory (a thread writes it), for tables of a few thousand rows."""
    handle, path = tempfile.mkstemp(suffix=".xlsx", prefix="wulian-book-")
    os.close(handle)
    try:
        await asyncio.to_thread(_write_book, path, sheets)
        with open(path, "rb") as file:  # noqa: ASYNC230  (a small local file)
            content = file.read()
    finally:
        os.unlink(path)
    return Response(content, media_type=XLSX_MEDIA_TYPE, headers=_attachment(filename, "export.xlsx"))
