"""The difference between two versions of the responsibility list, for administrators."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules.responsibility_list import ResponsibilityList


@dataclass
class ListDiff:
    """Categories added, removed and changed (field by field), and changed policies."""

    old_version: str
    new_version: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    policies: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether the two versions route the same categories the same way."""
        return not (self.added or self.removed or self.changed or self.policies)

    def lines(self) -> list[str]:
        """A readable summary, one change a line."""
        out = [f"{self.old_version} → {self.new_version}"]
        out += [f"+ {code}" for code in self.added]
        out += [f"- {code}" for code in self.removed]
        for code, fields in self.changed.items():
            for name, (old, new) in fields.items():
                out.append(f"~ {code}.{name}: {old!r} → {new!r}")
        for name, (old, new) in self.policies.items():
            out.append(f"~ policies.{name}: {old!r} → {new!r}")
        return out


def diff_lists(old: ResponsibilityList, new: ResponsibilityList) -> ListDiff:
    """What changed from ``old`` to ``new``."""
    result = ListDiff(old.version, new.version)
    before, after = old.by_code(), new.by_code()
    result.added = sorted(set(after) - set(before))
    result.removed = sorted(set(before) - set(after))
    for code in sorted(set(before) & set(after)):
        a, b = before[code].model_dump(), after[code].model_dump()
        fields = {name: (a[name], b[name]) for name in a if a[name] != b.get(name)}
        if fields:
            result.changed[code] = fields
    pa, pb = old.policies.model_dump(), new.policies.model_dump()
    result.policies = {name: (pa[name], pb[name]) for name in pa if pa[name] != pb[name]}
    return result
