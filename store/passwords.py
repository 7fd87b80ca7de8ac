"""The password policy: the one check of a password that a person chooses (an administrator creating a
user or resetting a password; any future self-service or CLI path must call it too).

A password is refused when it is too short or too long, on a list of common passwords, made of one
character repeated, a run of consecutive digits or letters (``12345678``, ``98765432``, ``1234567890``,
``abcdefghij``), or equal to or containing the username (case-insensitive).

The common passwords are zxcvbn's list (the 30,000 most frequent passwords of public leak corpora,
shipped inside the ``zxcvbn`` package, MIT licence; nothing is fetched at run time), plus the demo
passwords (a production start refuses users holding them) and a few that are frequent in
Chinese-language leaks but missing from zxcvbn's mostly English and Russian list. The demo seed
writes hashes directly and is not checked: demo users keep ``demo12345`` in demo mode only.

:func:`password_problem` answers with a message-catalogue key (``admin.err.password_*``) and its
values, so the store's callers raise their own errors (``store.admin_common.AdminError``) and the
pages answer in the visitor's language.
"""

from __future__ import annotations

from functools import cache
from typing import Any

#: Shortest and longest passwords accepted.
PASSWORD_MIN = 10
PASSWORD_MAX = 200

#: Published demo passwords (as in ``wulian.settings.DEMO_PASSWORDS``; the store does not import the settings).
_DEMO = ("admin12345", "demo12345")
#: Frequent in Chinese-language leaks (pinyin and the "520"/"1314" love numbers), absent from zxcvbn's list.
_CHINESE = (
    "woaini1314", "woaini520", "woaini5201314", "5201314520", "1314520520", "52013145201314",
    "iloveyou1314", "aini1314520", "qq123456789", "wang123456", "zhang123456", "li123456789",
)


@cache
def common_passwords() -> frozenset[str]:
    """The refused common passwords, lower-cased (loaded on first use: zxcvbn's lists are large)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in (*FREQUENCY_LISTS["passwords"], *_DEMO, *_CHINESE))


def _steps(text: str) -> set[int]:
    return {ord(b) - ord(a) for a, b in zip(text, text[1:], strict=False)}


def is_sequence(text: str) -> bool:
    """Whether ``text`` is a run of consecutive digits (ascending or descending, wrapping 9 → 0, as in
    ``1234567890``) or of consecutive letters (``abcdef``, ``ZYXWV``)."""
    if len(text) < 2:
        return False
    if text.isascii() and text.isdigit():
        return {(int(b) - int(a)) % 10 for a, b in zip(text, text[1:], strict=False)} in ({1}, {9})
    if text.isascii() and text.isalpha() and (text.islower() or text.isupper()):
        return _steps(text) in ({1}, {-1})
    return False


def password_problem(password: str, username: str = "") -> tuple[str, dict[str, Any]] | None:
    """Why ``password`` may not be chosen (by or for ``username``): a catalogue key and its values,
    or None when it is acceptable."""
    if len(password) < PASSWORD_MIN:
        return "admin.err.password_short", {"n": PASSWORD_MIN}
    if len(password) > PASSWORD_MAX:
        return "admin.err.too_long", {"n": PASSWORD_MAX}
    folded = password.casefold()
    if len(set(folded)) == 1:
        return "admin.err.password_one_char", {}
    if is_sequence(password):
        return "admin.err.password_sequence", {}
    name = username.strip().casefold()
    if name and name in folded:
        return "admin.err.password_username", {}
    if password.lower() in common_passwords():
        return "admin.err.password_common", {}
    return None
