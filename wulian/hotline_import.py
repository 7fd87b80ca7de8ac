"""Importing a 12345 hotline export (``wulian import hotline FILE``): each row becomes a report.

The file (CSV with a header row, or JSON lines; format in docs/hotline_import.md) holds one ticket per
row: ticket number, time, category (a code of the responsibility list or its text), address, content,
caller and phone. Each row is:

1. read and mapped to an :class:`~workflows.types.EventReport` with ``source="hotline"`` and
   ``external_id`` = the ticket number; the category is the list's code when the row gives one (or
   the exact Chinese name of a category), else the suggestion engine's best category when its score
   reaches ``min_score`` and leads the runner-up, else none (the list's catch-all sends it to triage);
2. checked by the one definition of a valid report (:mod:`workflows.inputs`, through
   :meth:`wulian.client.WulianClient.checked`): a row with problems is rejected with every reason;
3. started through the typed client, a bounded number at once. The event id is derived from source
   and ticket, so a ticket imported again (a repeat in the file, or a second run) is the same event:
   counted as ``already``, never a second event.

A row is one workflow start, an atomic call: after Ctrl-C the import stops taking rows, lets the
starts in flight finish and reports where it stopped; each row is started or not, and a re-run picks
up the rest (the started ones come back as ``already``). Rejected rows go to a CSV report (row,
ticket, reasons in Chinese and English), written as they are found.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO

from rules.responsibility_list import ResponsibilityList
from rules.suggest import CategorySuggester
from web.exports import cell
from web.i18n import translate
from workflows.inputs import MAX_DESCRIPTION, Problem, is_blank
from workflows.types import EventReport, Location, Reporter
from wulian.client import InvalidReport, StartedReport, WulianClient

#: The columns of a hotline row, by their English names, with the Chinese headers 12345 exports use.
COLUMNS: dict[str, tuple[str, ...]] = {
    "ticket": ("ticket", "工单编号", "工单号"),
    "time": ("time", "受理时间", "来电时间"),
    "category": ("category", "诉求分类", "问题分类"),
    "address": ("address", "诉求地址", "地址"),
    "content": ("content", "诉求内容", "内容"),
    "caller": ("caller", "来电人", "联系人"),
    "phone": ("phone", "联系电话", "来电号码"),
}
_ALIASES = {alias: name for name, aliases in COLUMNS.items() for alias in aliases}

#: A suggestion is taken when its score reaches this (a keyword of three characters found in the text
#: scores 4.5, a category's two-character name 5) and leads the runner-up by ``MIN_LEAD``.
MIN_SCORE = 4.5
MIN_LEAD = 1.0
#: Hotline times without a zone are Beijing time.
BEIJING = timezone(timedelta(hours=8))
#: Rows started at once (each start is one call to Temporal).
DEFAULT_CONCURRENCY = 16

#: A report field's problem is named by the hotline column it came from.
_FIELD_COLUMN = {"description": "content", "location.address": "address", "reporter.name": "caller",
                 "reporter.phone": "phone", "external_id": "ticket", "category": "category"}
_CODE_LIKE = re.compile(r"^[A-Za-z]{1,4}-\d{1,3}$")
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M")


@dataclass(frozen=True)
class Reason:
    """Why a row is refused: a catalogue key (``hotline.reject.*`` or ``input.*``) with its values."""

    key: str
    values: dict[str, str] = field(default_factory=dict)

    def text(self, lang: str) -> str:
        """The reason in ``lang``; field names are the hotline's column names in that language."""
        values = dict(self.values)
        if "field" in values:
            values["field"] = translate(lang, f"hotline.column.{values['field']}")
        return translate(lang, self.key, **values)


@dataclass
class Row:
    """One row of the file: its number (the data row, 1 = the first after a CSV header) and values."""

    number: int
    values: dict[str, str]
    problem: Reason | None = None  # the row could not even be read (bad JSON, wrong column count)


@dataclass
class Mapped:
    """A row as a report, with how its category was found (code | name | suggested | triage)."""

    report: EventReport
    how: str


@dataclass
class ImportSummary:
    """What an import did; ``interrupted`` when Ctrl-C stopped it (re-run to continue)."""

    rows: int = 0
    started: int = 0
    already: int = 0
    rejected: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    #: The first reason of each kind counted in ``reasons`` (for the summary's examples).
    examples: dict[str, Reason] = field(default_factory=dict)
    #: Rows whose start failed (Temporal unreachable): neither started nor rejected; a re-run retries them.
    failed: int = 0
    last_error: str = ""
    interrupted: bool = False
    seconds: float = 0.0
    event_ids: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Rows per second (read, checked and started or rejected)."""
        return self.rows / self.seconds if self.seconds else 0.0


# ---------------------------------------------------------------- reading
def read_rows(path: Path, encoding: str = "utf-8-sig") -> Iterator[Row]:
    """The rows of a CSV (by its header) or JSON-lines file (``.jsonl``, ``.ndjson``, ``.json``)."""
    with path.open(encoding=encoding, newline="") as handle:
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            yield from _json_rows(handle)
        else:
            yield from _csv_rows(handle)


def _columns(names: list[str]) -> list[str | None]:
    return [_ALIASES.get(name.strip().lower() if name.strip().isascii() else name.strip()) for name in names]


def _csv_rows(handle: IO[str]) -> Iterator[Row]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    columns = _columns(header)
    if "ticket" not in columns or "content" not in columns:
        raise ValueError(f"the header names no ticket or content column: {header}")
    for number, cells in enumerate(reader, start=1):
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(cells) != len(header):
            yield Row(number, {}, Reason("hotline.reject.columns", {"found": str(len(cells)),
                                                                      "expected": str(len(header))}))
            continue
        yield Row(number, {c: v for c, v in zip(columns, cells, strict=True) if c})


def _json_rows(handle: IO[str]) -> Iterator[Row]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            yield Row(number, {}, Reason("hotline.reject.json"))
            continue
        if not isinstance(raw, dict):
            yield Row(number, {}, Reason("hotline.reject.json"))
            continue
        values: dict[str, str] = {}
        for key, value in raw.items():
            name = _ALIASES.get(key)
            if name is not None and value is not None:
                values[name] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        yield Row(number, values)


# ---------------------------------------------------------------- mapping
def parse_time(text: str) -> datetime | None:
    """A hotline time (ISO 8601, or ``YYYY-MM-DD HH:MM[:SS]`` in Beijing time), None when not one."""
    text = text.strip()
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=BEIJING)
        except ValueError:
            pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


class RowMapper:
    """Turns rows into reports with the categories of one list version."""

    def __init__(self, responsibility_list: ResponsibilityList, *, min_score: float = MIN_SCORE) -> None:
        self.codes = {c.code for c in responsibility_list.categories}
        self.names = {c.name_zh: c.code for c in responsibility_list.categories}
        self.suggester = CategorySuggester(responsibility_list)
        self.min_score = min_score

    def category(self, given: str, content: str) -> tuple[str, str]:
        """The category code for a row and how it was found; ``""`` (triage) when nothing is sure."""
        given = given.strip()
        if given.upper() in self.codes:
            return given.upper(), "code"
        if given in self.names:
            return self.names[given], "name"
        text = content if _CODE_LIKE.match(given) or not given else f"{given} {content}"
        best = self.suggester.suggest(text, limit=2)
        if best and best[0].score >= self.min_score and (len(best) == 1 or best[0].score - best[1].score >= MIN_LEAD):
            return best[0].code, "suggested"
        return "", "triage"

    def map(self, row: Row) -> Mapped | list[Reason]:
        """The row's report (not yet checked), or the reasons it cannot be one."""
        if row.problem is not None:
            return [row.problem]
        v = {name: row.values.get(name, "") for name in COLUMNS}
        reasons: list[Reason] = []
        if not v["ticket"].strip():
            reasons.append(Reason("input.required", {"field": "ticket"}))
        when = parse_time(v["time"]) if v["time"].strip() else None
        if not v["time"].strip():
            reasons.append(Reason("input.required", {"field": "time"}))
        elif when is None:
            reasons.append(Reason("hotline.reject.time", {"value": v["time"][:40]}))
        if reasons:
            return reasons
        assert when is not None
        caller, phone = v["caller"].strip(), v["phone"].strip()
        if not phone and re.fullmatch(r"[0-9+\- ()]{7,20}", caller):  # the caller column holds the number
            caller, phone = "", caller
        content = v["content"].strip()
        code, how = self.category(v["category"], content)
        ticket = v["ticket"].strip()
        note = f"\n——12345 热线工单 {ticket}，受理时间 {when.strftime('%Y-%m-%d %H:%M')}"
        # The ticket and its time close the description, for the handler; never making a blank or
        # over-long content valid (the one definition judges the content as the caller left it).
        fits = content and not is_blank(content) and len(content) + len(note) <= MAX_DESCRIPTION
        description = content + note if fits else content
        report = EventReport(
            category=code, description=description, source="hotline", external_id=ticket,
            location=Location(address=v["address"].strip() or None),
            reporter=Reporter(name=caller, phone=phone),
        )
        return Mapped(report, how)


def problem_reasons(problems: list[Problem]) -> list[Reason]:
    """A report's problems as reasons, each field named by its hotline column."""
    reasons = []
    for problem in problems:
        column = _FIELD_COLUMN.get(problem.field)
        if column is None:
            reasons.append(Reason("hotline.reject.other", {"problem": problem.message}))
        else:
            reasons.append(Reason(f"input.{problem.code}", {"field": column, "limit": problem.limit}))
    return reasons


# ---------------------------------------------------------------- the rejected rows' report
class RejectedReport:
    """The CSV of rejected rows (row, ticket, reasons in Chinese and in English), written as found."""

    HEADER = ("row", "ticket", "reason_zh", "reason_en")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(self.HEADER)

    def add(self, row: Row, reasons: list[Reason]) -> None:
        """One rejected row, flushed at once (an interrupted import keeps what it found)."""
        # The ticket is the source file's text: a spreadsheet must not run it as a formula (=HYPERLINK...).
        self._writer.writerow((row.number, cell(row.values.get("ticket", "")[:128]),
                               "；".join(r.text("zh-CN") for r in reasons), "; ".join(r.text("en") for r in reasons)))
        self._handle.flush()

    def close(self) -> None:
        """Close the file."""
        self._handle.close()


# ---------------------------------------------------------------- the import
async def import_rows(
    rows: Iterator[Row], mapper: RowMapper, client: WulianClient, rejected: RejectedReport, *,
    concurrency: int = DEFAULT_CONCURRENCY, stop: asyncio.Event | None = None,
    progress: Callable[[ImportSummary], None] | None = None,
) -> ImportSummary:
    """Import ``rows``: map, check and start each (at most ``concurrency`` starts at once).

    When ``stop`` is set (Ctrl-C), no further row is taken; the starts in flight finish (each is one
    atomic call, so every row is started or not) and the summary says ``interrupted``."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    summary = ImportSummary()
    stop = stop or asyncio.Event()
    queue: asyncio.Queue[tuple[Row, Mapped] | None] = asyncio.Queue(maxsize=concurrency * 2)

    def done() -> None:
        summary.rows += 1
        if progress is not None:
            progress(summary)

    async def starter() -> None:
        while (item := await queue.get()) is not None:
            row, mapped = item
            try:
                started: StartedReport = await client.start_report(mapped.report)
            except InvalidReport as exc:  # mapped.report was checked already; kept for safety
                _reject(row, problem_reasons(exc.problems))
            except Exception as exc:  # Temporal unreachable or refusing: not the row's fault; re-run
                summary.failed += 1
                summary.last_error = f"{type(exc).__name__}: {exc}"[:300]
            else:
                if started.duplicate:
                    summary.already += 1
                else:
                    summary.started += 1
                    summary.categories[mapped.how] += 1
                summary.event_ids.append(started.event_id)
            done()

    def _reject(row: Row, reasons: list[Reason]) -> None:
        rejected.add(row, reasons)
        summary.rejected += 1
        for reason in reasons:
            kind = reason.key + (f":{reason.values['field']}" if "field" in reason.values else "")
            summary.reasons[kind] += 1
            summary.examples.setdefault(kind, reason)

    starters = [asyncio.create_task(starter()) for _ in range(concurrency)]
    try:
        for row in rows:
            if stop.is_set():
                summary.interrupted = True
                break
            mapped = mapper.map(row)
            if isinstance(mapped, list):
                _reject(row, mapped)
                done()
                continue
            try:
                mapped.report = client.checked(mapped.report)
            except InvalidReport as exc:
                _reject(row, problem_reasons(exc.problems))
                done()
                continue
            await queue.put((row, mapped))
    finally:
        # The starts in flight finish (a row is started or not), then the starters end.
        for _ in starters:
            await queue.put(None)
        await asyncio.gather(*starters)
        summary.seconds = loop.time() - began
    return summary


# ---------------------------------------------------------------- the command
class Unreachable(Exception):
    """Temporal could not be reached: nothing was imported."""


async def active_list() -> ResponsibilityList:
    """The responsibility list new events route with (the store's active version)."""
    from store import rule_lists
    from store.db import Database
    from wulian.rule_registry import ensure_active, parse_list
    from wulian.settings import get_settings

    db = Database(get_settings().db_url)
    try:
        await db.upgrade()
        await ensure_active(db)
        row = await rule_lists.active_version(db)
        assert row is not None
        return parse_list(row.content)
    finally:
        await db.dispose()


def summary_lines(summary: ImportSummary, lang: str, rejected_path: Path) -> list[str]:
    """The summary the command prints, in ``lang``."""
    def t(key: str, **values: object) -> str:
        return translate(lang, key, **values)

    how = summary.categories
    lines = [t("hotline.summary.rows", rows=summary.rows, seconds=f"{summary.seconds:.1f}", rate=f"{summary.rate:.0f}"),
             t("hotline.summary.started", n=summary.started, code=how["code"] + how["name"],
               suggested=how["suggested"], triage=how["triage"]),
             t("hotline.summary.already", n=summary.already),
             t("hotline.summary.rejected", n=summary.rejected, path=str(rejected_path))]
    for key, n in summary.reasons.most_common():
        example = summary.examples[key]
        first = "  " + t("hotline.summary.example") if {"value", "found"} & set(example.values) else ""
        lines.append(f"  {n:6d}  {example.text(lang)}{first}")
    if summary.failed:
        lines.append(t("hotline.summary.failed", n=summary.failed, error=summary.last_error))
    if summary.interrupted:
        lines.append(t("hotline.summary.interrupted"))
    return lines


def run_cli(file: Path, *, rejected: Path | None, concurrency: int, min_score: float, encoding: str, lang: str,
            address: str, task_queue: str) -> int:
    """``wulian import hotline``: the exit status (0 all imported, 1 rows rejected or failed, 130 Ctrl-C)."""
    import signal

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    rejected_path = rejected or file.with_name(file.name + ".rejected.csv")
    try:
        total = sum(1 for _ in read_rows(file, encoding))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        console.print(translate(lang, "hotline.unreadable", file=str(file), error=str(exc)), markup=False)
        return 2

    async def _run() -> ImportSummary:
        mapper = RowMapper(await active_list(), min_score=min_score)
        try:
            client = await WulianClient.connect(address or None, task_queue=task_queue or None)
        except RuntimeError as exc:  # temporalio: "Failed client connect"
            raise Unreachable(str(exc)) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        def first_stop() -> None:
            # The first Ctrl-C stops taking rows; the starts in flight finish (a row is started or not).
            # A second one interrupts at once (asyncio's own handler): a start cut short is still
            # either made or not, and the re-run settles it.
            stop.set()
            loop.remove_signal_handler(signal.SIGINT)
            console.print(translate(lang, "hotline.stopping"), markup=False)

        loop.add_signal_handler(signal.SIGINT, first_stop)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        report = RejectedReport(rejected_path)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=False) as bar:
            task = bar.add_task(translate(lang, "hotline.progress"), total=total)
            try:
                return await import_rows(read_rows(file, encoding), mapper, client, report, concurrency=concurrency,
                                         stop=stop, progress=lambda s: bar.update(task, completed=s.rows))
            finally:
                report.close()
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)

    try:
        summary = asyncio.run(_run())
    except Unreachable as exc:
        console.print(translate(lang, "hotline.unreachable", error=str(exc)[:300]), markup=False)
        return 2
    except KeyboardInterrupt:  # before the first row (connecting) or a second Ctrl-C
        print(translate(lang, "hotline.summary.interrupted"), flush=True)  # noqa: T201
        return 130
    for line in summary_lines(summary, lang, rejected_path):
        print(line, flush=True)  # noqa: T201 - the command's answer, on stdout
    if summary.interrupted:
        return 130
    return 1 if summary.rejected or summary.failed else 0
