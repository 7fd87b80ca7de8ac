"""Structured logs of every process (web, worker, launcher, CLI): one JSON object a line.

Each line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``process`` (``web``,
``worker``, ``launcher``, ``cli``) and ``message``, and what the work it belongs to has bound: the
``event_id``, ``workflow_id`` and ``activity`` of an activity (``wulian/telemetry.py``), the
``route``, ``method`` and ``actor`` (the logged-in user, or ``integration:<name>`` for an API key)
of a web request (``web/metrics.py``, ``web/access.py``, ``web/api_keys.py``), the ``event_id`` of a
command (``web/commands.py``).

Code logs as it always has, through the standard library (``logging.getLogger(__name__)``);
structlog's ``ProcessorFormatter`` on the root logger's one handler renders those records, as
well as anything logged through ``structlog.get_logger()``, so libraries' lines (Temporal, uvicorn,
SQLAlchemy) come out as JSON lines too. ``WULIAN_LOG_FORMAT=console`` gives readable lines instead,
for a developer's terminal.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from wulian.settings import Settings

#: What the current unit of work (a request, an activity) has bound. A dict shared by reference:
#: tasks started within the scope (Litestar resolves dependencies in tasks of their own) copy the
#: context variable, hence the same dict, so an actor bound by one of them is on every later line.
_SCOPE: ContextVar[dict[str, Any] | None] = ContextVar("wulian_log_scope", default=None)

#: Loggers that bring handlers of their own (uvicorn's, Litestar's) and must hand their records to the root's.
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar")


@contextmanager
def log_scope(**values: Any) -> Iterator[dict[str, Any]]:
    """Within the block, every log line of this task (and of tasks it starts) carries ``values``
    and whatever :func:`bind` adds later; values that are None are left out."""
    scope = {key: value for key, value in values.items() if value is not None}
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def bind(**values: Any) -> None:
    """Add ``values`` to the current scope (nothing outside one: no request, no activity)."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.update({key: value for key, value in values.items() if value is not None})


def bound() -> dict[str, Any]:
    """A copy of what the current scope holds."""
    return dict(_SCOPE.get() or {})


def _add_scope(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in (_SCOPE.get() or {}).items():
        event_dict.setdefault(key, value)  # a value given on the call itself wins
    return event_dict


def _add_process(process: str) -> Processor:
    def add(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("process", process)
        return event_dict

    return add


def _drop_duplicates(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # uvicorn passes a coloured copy of its message in ``extra``, the Temporal SDK core's forwarded
    # lines an object whose fields are already in the message: the line needs neither.
    event_dict.pop("color_message", None)
    event_dict.pop("temporal_log", None)
    return event_dict


def _shared(process: str) -> list[Processor]:
    """What every line gets, from structlog or from the standard library alike."""
    return [
        structlog.contextvars.merge_contextvars,
        _add_scope,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _add_process(process),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.stdlib.ExtraAdder(),
        _drop_duplicates,
    ]


def formatter(log_format: str, process: str) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of ``process``'s log handler: JSON lines (``json``) or readable ones (``console``)."""
    renderer: Processor
    if log_format == "console":
        tail: list[Processor] = [structlog.dev.ConsoleRenderer(colors=False)]
    else:
        # Non-ASCII kept as is: Chinese names and reasons stay readable in the file.
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False, default=str)
        tail = [structlog.processors.format_exc_info, structlog.processors.EventRenamer("message"), renderer]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(process),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )


def configure_logging(settings: Settings, process: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record of this process to one handler on ``stream`` (stderr) in
    ``settings.log_format``, at ``settings.log_level``; returns the handler. Called once, by a
    process's entry point (never by code that tests import: pytest keeps its own handlers)."""
    structlog.configure(
        processors=[*_shared(process), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(settings.log_format, process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in _OWN_HANDLERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.captureWarnings(True)  # a warning is a log line too, not a bare line on stderr
    return handler


def line(log_format: str, process: str, message: str, **fields: Any) -> str:
    """One log line written without the logging machinery (the launcher's notes in a child's log
    file), in the same shape as the handler's, without a newline."""
    if log_format == "console":
        extra = " ".join(f"{key}={value}" for key, value in fields.items())
        return f"=== {message} {extra}".rstrip() + " ==="
    record: MutableMapping[str, Any] = {"timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                                        "level": "info", "logger": f"wulian.{process}", "process": process,
                                        **fields, "message": message}
    return json.dumps(record, ensure_ascii=False, default=str)
