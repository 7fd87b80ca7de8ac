"""Why a routing decision was made: a reason code with its parameters, and its English text.

A decision carries ``reason_code`` and ``reason_params`` (which pages translate: catalogue keys
``reason.<code>``) and ``reason``, the English text made from the same template (kept for the API,
the CLI and the timeline note the workflow stores). :func:`parse` reads a stored English text back
into its code and parameters, so that the notes of events routed before codes existed, and timeline
notes, can be shown in the visitor's language too; a text it does not know stays as it is.
"""

from __future__ import annotations

import re
from typing import Any

#: The English text of each reason code (``str.format`` fields are the parameters).
TEMPLATES: dict[str, str] = {
    "category": "{category} {name}: responsibility of the {tier}",
    "cadre": "{category} {name}: responsibility of the {tier}; a cadre of {department} is stationed at street {street}",
    "severity": "{category} at severity '{level}': one tier up to {tier}",
    "escalated": "escalated {steps} time(s): {from_tier} → {tier}",
    "repeat": "{repeat} earlier report(s) in {days} days in this grid: {from_tier} → {tier}",
    "enforcement": "needs law-enforcement power: department {department}",
    "camera": "camera alarm: the grid worker confirms it on site first",
    "returned": "returned {returned} time(s): a supervisor dispatches it",
    "returned_everywhere": "every unit the list names returned it ({units}): a supervisor dispatches it",
    "unknown_category": "no rule places category '{category}'",
    "no_category": "no category given",
    "no_location": "{category} needs a {tier} but the location is unknown",
    # Written by the workflow when a supervisor places a triage case without a note.
    "manual": "placed by a supervisor",
}

#: Parameters that name a tier (pages show them translated).
TIER_PARAMS = ("tier", "from_tier")


def reason(code: str, **params: Any) -> dict[str, Any]:
    """The reason fields of a decision: ``reason_code``, ``reason_params`` and the English ``reason``."""
    clean = {k: v if isinstance(v, int | float) or v is None else str(v) for k, v in params.items()}
    return {"reason_code": code, "reason_params": clean, "reason": TEMPLATES[code].format(**clean)}


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    return re.compile(f"^{regex}$", re.DOTALL)


# The most specific templates first (more fixed text), so "cadre" is tried before "category".
_PATTERNS = sorted(((code, _pattern(t)) for code, t in TEMPLATES.items()),
                   key=lambda item: -len(re.sub(r"\{\w+\}", "", TEMPLATES[item[0]])))
_TIERS = {"grid", "community", "street", "department", "city"}


def parse(text: str | None) -> tuple[str, dict[str, str]] | None:
    """The code and parameters of an English reason text made from :data:`TEMPLATES`, else None."""
    if not text:
        return None
    for code, pattern in _PATTERNS:
        match = pattern.match(text.strip())
        if match and all(match.group(p) in _TIERS for p in TIER_PARAMS if p in match.groupdict()):
            return code, match.groupdict()
    return None
