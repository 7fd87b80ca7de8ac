"""An uploaded document's bytes as text: the size and encoding check of the administrators'
uploads of the responsibility list and of process definitions (the schemes keep their own, with
their own problem type)."""

from __future__ import annotations

from rules.responsibility_list import Problem


def uploaded_text(content: str | bytes, limit: int) -> tuple[str | None, list[Problem]]:
    """``content`` as text, or None and its problem: larger than ``limit`` bytes, or not UTF-8."""
    if isinstance(content, str):
        return content, []
    if len(content) > limit:
        return None, [Problem("file", f"larger than {limit} bytes", "too_large", {"limit": str(limit)})]
    try:
        return content.decode("utf-8"), []
    except UnicodeDecodeError:
        return None, [Problem("file", "not UTF-8 text", "not_utf8")]
