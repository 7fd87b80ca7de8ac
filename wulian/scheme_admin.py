"""Administering assessment schemes: check an upload, store it, activate it (audited). Used by the
CLI (``wulian schemes``) and the admin pages (``/admin/schemes``) alike."""

from __future__ import annotations

from dataclasses import dataclass, field

from assessment.schemes import Problem, Scheme, parse_text
from store import models
from store import schemes as scheme_store
from store.db import Database

#: At most this many bytes are accepted for an uploaded scheme file.
MAX_SCHEME_BYTES = 1_000_000


@dataclass
class CheckResult:
    """A checked upload: the scheme when valid, else every problem with its place."""

    content: str
    parsed: Scheme | None
    problems: list[Problem] = field(default_factory=list)


def check_content(content: str | bytes) -> CheckResult:
    """Validate an uploaded scheme (JSON text)."""
    if isinstance(content, bytes):
        if len(content) > MAX_SCHEME_BYTES:
            return CheckResult("", None, [Problem("file", f"larger than {MAX_SCHEME_BYTES} bytes", "too_large",
                                                  {"limit": str(MAX_SCHEME_BYTES)})])
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            return CheckResult("", None, [Problem("file", "not UTF-8 text", "not_utf8")])
    parsed, problems = parse_text(content)
    return CheckResult(content, parsed, problems)


async def store_checked(db: Database, result: CheckResult, actor: str, *, now: bool) -> models.SchemeVersion:
    """Store a valid scheme and (when ``now``) activate it; a scheme with problems is never stored
    (ValueError), nor a second content under a stored version (ValueError)."""
    if result.parsed is None:
        raise ValueError("a scheme with problems is never activated")
    await scheme_store.ensure_default(db)  # the shipped scheme is version one of the history
    return await scheme_store.save(db, result.parsed, result.content, actor, activate=now)
